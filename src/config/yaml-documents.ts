/**
 * YAML text, files and directories → raw documents (plain values plus a way
 * back to line and column), before any schema. Syntax errors, empty files and
 * oversized files become ConfigIssues like any other validation problem, so
 * a user sees all of them at once; only files that cannot be read at all
 * throw (TM_ERR_CONFIG_READ), because then there is nothing to validate.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import { join } from 'node:path';
import { Composer, isMap, isPair, isScalar, isSeq, LineCounter, Parser, visit } from 'yaml';
import type { CST, Document, Node as YamlNode } from 'yaml';
import { TracemeshError } from '../lib/errors.js';
import type { ConfigIssue, SourcePosition } from './issues.js';

/** A config file larger than this is refused unread: the YAML tree costs many times the text. */
export const MAX_CONFIG_FILE_BYTES = 4 * 1024 * 1024;
/** yaml's own default, stated: aliases beyond this count are an expansion attack, not a config. */
const MAX_ALIAS_COUNT = 100;
/**
 * Collections inside collections. Our kinds need fewer than 10; yaml builds
 * documents recursively, and a few thousand levels (a few KiB of `[`)
 * overflow the stack, which has been seen to take the process down.
 */
export const MAX_NESTING_DEPTH = 64;

/** Whether a position should point at a mapping key (unknown field) or at its value. */
export type PositionTarget = 'key' | 'value';

export interface DocumentPositions {
  /**
   * Where `path` (as in a schema issue: keys and list indexes) is written. When
   * the path goes further than the document does (a missing field), the
   * nearest enclosing node that exists.
   */
  locate(path: readonly PropertyKey[], target: PositionTarget): SourcePosition | undefined;
}

export interface RawDocument {
  readonly file: string;
  /** 0-based index in the file's YAML stream, empty documents included. */
  readonly index: number;
  /** The document as plain JavaScript values (mappings → objects, sequences → arrays). */
  readonly value: unknown;
  readonly positions: DocumentPositions;
}

/** Documents that parsed, and the issues of those that did not (and of empty files). */
export interface YamlSources {
  readonly documents: RawDocument[];
  readonly issues: ConfigIssue[];
}

class NodePositions implements DocumentPositions {
  constructor(
    private readonly doc: Document,
    private readonly lines: LineCounter,
  ) {}

  locate(path: readonly PropertyKey[], target: PositionTarget): SourcePosition | undefined {
    let node: unknown = this.doc.contents;
    let keyNode: unknown = undefined;
    for (const segment of path) {
      let next: unknown = undefined;
      let nextKey: unknown = undefined;
      if (isMap(node)) {
        for (const pair of node.items) {
          if (isPair(pair) && isScalar(pair.key) && String(pair.key.value) === String(segment)) {
            next = pair.value;
            nextKey = pair.key;
            break;
          }
        }
      } else if (isSeq(node) && typeof segment === 'number') {
        next = node.items[segment];
      }
      // Missing (or written through a merge key `<<`): stop at the nearest node we have.
      if (next === undefined) return this.positionOf(keyNode ?? node);
      // `key:` with no value has an empty value node (after the colon); the key is the better place.
      node = isEmptyValue(next) ? nextKey : next;
      keyNode = nextKey;
    }
    return this.positionOf(target === 'key' && keyNode !== undefined ? keyNode : node);
  }

  private positionOf(node: unknown): SourcePosition | undefined {
    const range = (node as YamlNode | null | undefined)?.range;
    if (range === undefined || range === null) return undefined;
    return positionAt(this.lines, range[0]);
  }
}

function isEmptyValue(node: unknown): boolean {
  if (node === null) return true;
  if (!isScalar(node) || node.value !== null) return false;
  const range = node.range;
  return range === undefined || range === null || range[0] === range[1];
}

function isEmptyDocument(doc: Document): boolean {
  const contents = doc.contents;
  return contents === null || (isScalar(contents) && contents.value === null);
}

function documentIssue(file: string, index: number, message: string, at: SourcePosition | undefined): ConfigIssue {
  return { file, document: index, kind: '', name: '', path: '', message, ...(at !== undefined ? { line: at.line, column: at.column } : {}) };
}

function positionAt(lines: LineCounter, offset: number): SourcePosition {
  const { line, col } = lines.linePos(offset);
  return { line, column: col };
}

/**
 * A `__proto__` key: toJS would assign it, which sets the object's prototype
 * (or is ignored), so the field would vanish or leak into every lookup.
 */
function findProtoKey(doc: Document): YamlNode | undefined {
  let found: YamlNode | undefined;
  visit(doc, {
    Pair(_key, pair) {
      if (isScalar(pair.key) && pair.key.value === '__proto__') {
        found = pair.key;
        return visit.BREAK;
      }
      return undefined;
    },
  });
  return found;
}

/** One parsed document → a RawDocument, or the issues that stop it from being one. */
function toRawDocument(doc: Document, index: number, file: string, lines: LineCounter, issues: ConfigIssue[]): RawDocument | undefined {
  // Warnings (an unknown `!tag`, for instance) are errors here: a value that
  // silently means something else is worse than a refused file.
  if (doc.errors.length > 0 || doc.warnings.length > 0) {
    for (const error of doc.errors) issues.push(documentIssue(file, index, `YAML syntax error: ${error.message}`, positionAt(lines, error.pos[0])));
    for (const warning of doc.warnings) issues.push(documentIssue(file, index, `YAML error: ${warning.message}`, positionAt(lines, warning.pos[0])));
    // The value of a document with syntax errors is a guess; validating it
    // would bury the real problem under follow-on errors.
    return undefined;
  }
  const protoKey = findProtoKey(doc);
  if (protoKey !== undefined) {
    const at = protoKey.range ? positionAt(lines, protoKey.range[0]) : undefined;
    issues.push(documentIssue(file, index, 'a field may not be named __proto__', at));
    return undefined;
  }
  let value: unknown;
  try {
    value = doc.toJS({ maxAliasCount: MAX_ALIAS_COUNT });
  } catch (err) {
    // Excessive or unresolved aliases.
    const at = doc.contents?.range ? positionAt(lines, doc.contents.range[0]) : undefined;
    issues.push(documentIssue(file, index, `YAML error: ${err instanceof Error ? err.message : String(err)}`, at));
    return undefined;
  }
  return { file, index, value, positions: new NodePositions(doc, lines) };
}

function isCollectionToken(token: CST.Token): token is CST.BlockMap | CST.BlockSequence | CST.FlowCollection {
  return token.type === 'block-map' || token.type === 'block-seq' || token.type === 'flow-collection';
}

/** Offset of the first collection nested deeper than the limit, found without recursion. */
function tooDeepAt(document: CST.Document): number | undefined {
  const pending: Array<{ token: CST.Token; depth: number }> = [];
  if (document.value !== undefined) pending.push({ token: document.value, depth: 0 });
  for (let next = pending.pop(); next !== undefined; next = pending.pop()) {
    if (!isCollectionToken(next.token)) continue;
    const depth = next.depth + 1;
    if (depth > MAX_NESTING_DEPTH) return next.token.offset;
    for (const item of next.token.items) {
      if (item.key !== undefined && item.key !== null) pending.push({ token: item.key, depth });
      if (item.value !== undefined) pending.push({ token: item.value, depth });
    }
  }
  return undefined;
}

/**
 * parseAllDocuments in its two steps, so that nesting is measured on the
 * parser's tokens (built with an explicit stack) before the composer
 * (recursive) sees them. Undefined, with issues, when a document is too deep.
 */
function composeDocuments(text: string, file: string, lines: LineCounter, issues: ConfigIssue[]): Document[] | undefined {
  try {
    const tokens = Array.from(new Parser(lines.addNewLine).parse(text));
    let index = -1;
    let tooDeep = false;
    for (const token of tokens) {
      if (token.type !== 'document') continue;
      index++;
      const offset = tooDeepAt(token);
      if (offset === undefined) continue;
      issues.push(documentIssue(file, index, `nests collections more than ${MAX_NESTING_DEPTH} levels deep`, positionAt(lines, offset)));
      tooDeep = true;
    }
    if (tooDeep) return undefined;
    // yaml 1.2 core schema (so `yes` stays a string); merge keys because
    // Kubernetes users write `<<: *defaults`.
    return Array.from(new Composer({ merge: true, uniqueKeys: true }).compose(tokens));
  } catch (err) {
    // yaml reports its own failures as document errors; this is for the unforeseen.
    issues.push(fileIssue(file, `cannot be parsed as YAML: ${err instanceof Error ? err.message : String(err)}`));
    return undefined;
  }
}

/**
 * Splits a multi-document YAML text. `file` names the source in issues (a
 * path, or `<stdin>`). Never throws: every problem is an issue.
 */
export function parseYamlDocuments(text: string, file: string): YamlSources {
  const documents: RawDocument[] = [];
  const issues: ConfigIssue[] = [];
  if (text.length > MAX_CONFIG_FILE_BYTES) {
    issues.push(fileIssue(file, `is ${text.length} characters long; a config text may be at most ${MAX_CONFIG_FILE_BYTES} characters`));
    return { documents, issues };
  }
  const lines = new LineCounter();
  const docs = composeDocuments(text, file, lines, issues);
  if (docs === undefined) return { documents, issues };
  let nonEmpty = 0;
  for (let index = 0; index < docs.length; index++) {
    const doc = docs[index] as Document;
    if (doc.errors.length === 0 && doc.warnings.length === 0 && isEmptyDocument(doc)) continue;
    nonEmpty++;
    const raw = toRawDocument(doc, index, file, lines, issues);
    if (raw !== undefined) documents.push(raw);
  }
  if (nonEmpty === 0) {
    issues.push(fileIssue(file, 'contains no YAML documents (expected at least one with apiVersion, kind, metadata and spec)'));
  }
  return { documents, issues };
}

function fileIssue(file: string, message: string): ConfigIssue {
  return { file, document: null, kind: '', name: '', path: '', message };
}

/** `no such file or directory (ENOENT)` out of Node's `ENOENT: no such file or directory, open '/x'`. */
function osReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const code = (err as NodeJS.ErrnoException).code;
  const match = /^[A-Z0-9_]+: (.*?)(?:, \w+ '.*')?$/s.exec(err.message);
  if (code !== undefined && match !== null) return `${match[1]} (${code})`;
  return err.message;
}

const YAML_FILE = /\.ya?ml$/i;

interface ReadFailure {
  readonly path: string;
  readonly error: unknown;
}

/** The files a path stands for: itself, or a directory's *.yaml and *.yml files in name order. */
async function expandPath(path: string, failures: ReadFailure[], issues: ConfigIssue[]): Promise<string[]> {
  let info;
  try {
    info = await stat(path);
  } catch (error) {
    failures.push({ path, error });
    return [];
  }
  if (!info.isDirectory()) return [path];
  let names: string[];
  try {
    names = await readdir(path);
  } catch (error) {
    failures.push({ path, error });
    return [];
  }
  // Dot files are skipped: editors' lock files, and Kubernetes ConfigMap
  // mounts, whose `..data` entries would otherwise be read twice.
  const candidates = names.filter((name) => YAML_FILE.test(name) && !name.startsWith('.')).sort(byCodeUnits);
  const files: string[] = [];
  const failuresBefore = failures.length;
  for (const name of candidates) {
    const file = join(path, name);
    try {
      // stat, not the dirent: a mounted ConfigMap's files are symlinks.
      if ((await stat(file)).isFile()) files.push(file);
    } catch (error) {
      failures.push({ path: file, error });
    }
  }
  if (files.length === 0 && failures.length === failuresBefore) {
    issues.push(fileIssue(path, 'is a directory with no *.yaml or *.yml files'));
  }
  return files;
}

function byCodeUnits(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

async function readOneFile(file: string, failures: ReadFailure[], sources: YamlSources): Promise<void> {
  let text: string;
  try {
    const info = await stat(file);
    if (info.size > MAX_CONFIG_FILE_BYTES) {
      sources.issues.push(fileIssue(file, `is ${info.size} bytes; a config file may be at most ${MAX_CONFIG_FILE_BYTES} bytes`));
      return;
    }
    text = await readFile(file, 'utf8');
  } catch (error) {
    failures.push({ path: file, error });
    return;
  }
  const parsed = parseYamlDocuments(text, file);
  for (const doc of parsed.documents) sources.documents.push(doc);
  for (const issue of parsed.issues) sources.issues.push(issue);
}

/**
 * Reads files and directories (non-recursive; *.yaml and *.yml in name
 * order) in the order given. Throws TM_ERR_CONFIG_READ naming every path that
 * could not be read and why; everything else is an issue in the result.
 */
export async function readYamlSources(paths: readonly string[]): Promise<YamlSources> {
  const failures: ReadFailure[] = [];
  const sources: YamlSources = { documents: [], issues: [] };
  for (const path of paths) {
    for (const file of await expandPath(path, failures, sources.issues)) {
      await readOneFile(file, failures, sources);
    }
  }
  if (failures.length > 0) {
    const lines = failures.map((failure) => `cannot read config ${failure.path}: ${osReason(failure.error)}`);
    throw new TracemeshError('TM_ERR_CONFIG_READ', lines.join('\n'), { cause: failures[0]?.error });
  }
  return sources;
}
