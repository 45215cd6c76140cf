/**
 * Zod's issues → our DocumentIssue (a path inside one document, a message,
 * and whether the position is the key or the value). The building blocks in
 * schema-parts.ts word their own messages; the error map here is the
 * fallback so that nothing reaches a user in zod's default wording.
 */
import type * as z from 'zod';
import { describeValue } from './schema-parts.js';
import type { PositionTarget } from './yaml-documents.js';

/** One problem inside a document; validate.ts adds file, document, line and column. */
export interface DocumentIssue {
  readonly path: readonly PropertyKey[];
  readonly message: string;
  readonly at: PositionTarget;
}

const TYPE_WORDS: Readonly<Record<string, string>> = {
  string: 'a string',
  number: 'a number',
  int: 'an integer',
  boolean: 'true or false',
  array: 'a list',
  object: 'a mapping',
  record: 'a mapping',
};

/** Per-parse error map: used only where a schema did not word its own message. */
export const fallbackErrorMap: z.core.$ZodErrorMap = (issue) => {
  const found = describeValue(issue.input);
  switch (issue.code) {
    case 'invalid_type': {
      const expected = TYPE_WORDS[issue.expected] ?? issue.expected;
      return issue.input === undefined ? `missing; expected ${expected}` : `expected ${expected}, got ${found}`;
    }
    case 'invalid_value':
      return `expected ${issue.values.length === 1 ? String(issue.values[0]) : `one of ${issue.values.map(String).join(', ')}`}, got ${found}`;
    case 'too_small':
      return `expected at least ${String(issue.minimum)}${issue.origin === 'array' ? ' items' : ''}, got ${found}`;
    case 'too_big':
      return `expected at most ${String(issue.maximum)}${issue.origin === 'array' ? ' items' : ''}, got ${found}`;
    case 'unrecognized_keys':
      return `unknown field${issue.keys.length === 1 ? '' : 's'} ${issue.keys.join(', ')}`;
    default:
      return `invalid value ${found}`;
  }
};

function isPositionTarget(value: unknown): value is PositionTarget {
  return value === 'key' || value === 'value';
}

/** `prefix` places a sub-document's issues (a kind's `spec`) in the whole document. */
export function fromZodIssues(issues: readonly z.core.$ZodIssue[], prefix: readonly PropertyKey[]): DocumentIssue[] {
  const out: DocumentIssue[] = [];
  for (const issue of issues) {
    const at = issue.code === 'custom' && isPositionTarget(issue.params?.['at']) ? issue.params['at'] : 'value';
    out.push({ path: [...prefix, ...issue.path], message: issue.message, at });
  }
  return out;
}
