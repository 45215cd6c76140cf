/**
 * What a configuration problem looks like, structured (for the control
 * plane's API and tests) and as one line of text (for people): where it is
 * (file, document, field path, line and column) and what was expected versus
 * what was found.
 */
import { TracemeshError } from '../lib/errors.js';

export interface SourcePosition {
  /** 1-based. */
  readonly line: number;
  /** 1-based. */
  readonly column: number;
}

export interface ConfigIssue {
  readonly file: string;
  /**
   * 0-based index of the document in its file's YAML stream (empty documents
   * count, so it matches the `---` separators); null when the issue is about
   * the file as a whole (empty, too large, a directory without YAML files).
   */
  readonly document: number | null;
  /** The document's `kind` when it has one (string), else ''. */
  readonly kind: string;
  /** The document's `metadata.name` when it has one (string), else ''. */
  readonly name: string;
  /** Field path like `spec.ports[1].protocol`; '' for the document or file itself. */
  readonly path: string;
  /** What was expected and what was found. */
  readonly message: string;
  readonly line?: number;
  readonly column?: number;
}

/**
 * `FILE: document N (Service reviews): spec.ports[0].port: expected an integer
 * 1..65535, got "abc" (line 7, column 15)`; the parts that are unknown are left out.
 */
export function formatConfigIssue(issue: ConfigIssue): string {
  let text = `${issue.file}: `;
  if (issue.document !== null) {
    text += `document ${issue.document}`;
    if (issue.kind !== '') text += issue.name !== '' ? ` (${issue.kind} ${issue.name})` : ` (${issue.kind})`;
    text += ': ';
  }
  if (issue.path !== '') text += `${issue.path}: `;
  text += issue.message;
  if (issue.line !== undefined) {
    text += issue.column !== undefined ? ` (line ${issue.line}, column ${issue.column})` : ` (line ${issue.line})`;
  }
  return text;
}

/** One issue per line, for the CLI and for error messages. */
export function formatConfigIssues(issues: readonly ConfigIssue[]): string {
  return issues.map(formatConfigIssue).join('\n');
}

/**
 * TM_ERR_CONFIG_INVALID with every issue in the message (one per line) and in
 * `issues`, so callers that serve JSON do not parse the message.
 */
export class ConfigValidationError extends TracemeshError {
  readonly issues: readonly ConfigIssue[];

  constructor(issues: readonly ConfigIssue[]) {
    const count = issues.length === 1 ? '1 problem' : `${issues.length} problems`;
    super('TM_ERR_CONFIG_INVALID', `invalid mesh configuration (${count}):\n${formatConfigIssues(issues)}`);
    this.name = 'ConfigValidationError';
    this.issues = issues;
  }
}

/** `spec.ports[1].protocol`; keys that are not plain words are quoted: `labels["app.kubernetes.io/name"]`. */
export function formatFieldPath(path: readonly PropertyKey[]): string {
  let text = '';
  for (const segment of path) {
    if (typeof segment === 'number') text += `[${segment}]`;
    else if (typeof segment === 'string' && PLAIN_KEY.test(segment)) text += text === '' ? segment : `.${segment}`;
    else text += `[${JSON.stringify(String(segment))}]`;
  }
  return text;
}

const PLAIN_KEY = /^[A-Za-z_][A-Za-z0-9_-]*$/;
