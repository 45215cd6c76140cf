/**
 * Schema parts for HTTP things that several kinds name: header names and
 * values, methods, paths, status codes, regular expressions and the string
 * matches built from them (Istio's StringMatch: exact, prefix or regex).
 */
import * as z from 'zod';
import { AT_KEY, describeValue, exactlyOneOf, flag, integer, mapOf, oneOf, strictFields, text, textMatching, whenMapping } from './schema-parts.js';
import type { NamedMatch, PresenceMatch, StringMatch } from './types.js';

// RFC 9110 token characters: what a header name may be made of.
const TOKEN = /^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$/;
const HEADER_NAME_WORDS = "an HTTP header name (letters, digits and !#$%&'*+-.^_`|~)";

export function isHeaderName(value: string): boolean {
  return TOKEN.test(value);
}

/** `X User` → `x-user`. */
function headerNameLike(value: string): string | undefined {
  const candidate = value.trim().replace(/\s+/g, '-');
  return isHeaderName(candidate) ? candidate : undefined;
}

/** A header name as written; models keep it lowercase (header names are case-insensitive). */
export function headerName() {
  return textMatching(HEADER_NAME_WORDS, isHeaderName, headerNameLike);
}

/** A mapping keyed by header names. */
export function headerMap<Value extends z.ZodType>(value: Value, what: string) {
  return mapOf(value, what, HEADER_NAME_WORDS, isHeaderName);
}

/** No line breaks or NUL: they would split or end the header on the wire. */
export function headerValue() {
  return textMatching('a header value (a string without line breaks)', (value) => !/[\r\n\0]/.test(value));
}

export const HTTP_METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'CONNECT', 'OPTIONS', 'TRACE', 'PATCH'] as const;

/** An uppercase method; `get` gets "did you mean GET?". */
export function httpMethod() {
  return oneOf(HTTP_METHODS);
}

export function isHttpPath(value: string): boolean {
  return value.startsWith('/') && !/[\s\0]/.test(value);
}

/** `/api/v1`: starts with `/`, no spaces or line breaks. */
export function httpPath() {
  return textMatching('a path starting with / (without spaces)', isHttpPath, (value) => (isHttpPath(`/${value}`) ? `/${value}` : undefined));
}

/** An HTTP status code in min..max. */
export function httpStatus(min: number, max: number) {
  return integer(min, max, `an HTTP status code ${min}..${max}`);
}

const MAX_REGEX_LENGTH = 1000;

/**
 * The source of a JavaScript regular expression that compiles; the error
 * says why it does not (`Unterminated group`). Kept as source: the proxy
 * compiles it anchored, as `^(?:source)$`.
 */
export function regexSource() {
  return text('a regular expression').superRefine((value, ctx) => {
    if (value.length > MAX_REGEX_LENGTH) {
      ctx.addIssue({ code: 'custom', message: `expected a regular expression of at most ${MAX_REGEX_LENGTH} characters, got ${value.length}`, input: value });
      return;
    }
    try {
      new RegExp(value);
    } catch (err) {
      const reason = err instanceof Error ? err.message : String(err);
      ctx.addIssue({ code: 'custom', message: `expected a regular expression, got ${describeValue(value)}: ${reason}`, input: value });
    }
  });
}

const MATCH_KINDS = ['exact', 'prefix', 'regex'] as const;
const PRESENCE_KINDS = [...MATCH_KINDS, 'present'] as const;

/** `{ exact: x } | { prefix: x } | { regex: x }`; `value` checks exact and prefix values. */
export function stringMatch(value: z.ZodType<string>, what: string) {
  return strictFields({ exact: value.optional(), prefix: value.optional(), regex: regexSource().optional() }, what).superRefine(
    exactlyOneOf(MATCH_KINDS),
    whenMapping,
  );
}

/** As stringMatch, or `{ present: true }` (the header is there) and `{ present: false }` (it is not). */
export function presenceMatch(what: string) {
  const value = text('a string');
  return strictFields({ exact: value.optional(), prefix: value.optional(), regex: regexSource().optional(), present: flag().optional() }, what).superRefine(
    exactlyOneOf(PRESENCE_KINDS),
    whenMapping,
  );
}

interface ParsedStringMatch {
  readonly exact?: string | undefined;
  readonly prefix?: string | undefined;
  readonly regex?: string | undefined;
}

interface ParsedPresenceMatch extends ParsedStringMatch {
  readonly present?: boolean | undefined;
}

/** The model of a valid stringMatch() (exactly one field is set). */
export function toStringMatch(parsed: ParsedStringMatch): StringMatch {
  if (parsed.exact !== undefined) return { kind: 'exact', value: parsed.exact };
  if (parsed.prefix !== undefined) return { kind: 'prefix', value: parsed.prefix };
  return { kind: 'regex', value: parsed.regex as string };
}

export function toPresenceMatch(parsed: ParsedPresenceMatch): PresenceMatch {
  if (parsed.present !== undefined) return parsed.present ? { kind: 'present' } : { kind: 'absent' };
  return toStringMatch(parsed);
}

/** `{ name: match }` → a list in the order written; `lowercase` for header names. */
export function toNamedMatches(parsed: Readonly<Record<string, ParsedPresenceMatch>> | undefined, lowercase: boolean): NamedMatch[] {
  if (parsed === undefined) return [];
  return Object.entries(parsed).map(([name, match]) => ({ name: lowercase ? name.toLowerCase() : name, match: toPresenceMatch(match) }));
}

/**
 * Header names differ only in case (`X-User` and `x-user`): the same header,
 * written twice. Use on a mapping keyed by header names, with whenMapping.
 */
export function uniqueHeaderNames(entries: unknown, ctx: z.RefinementCtx): void {
  if (typeof entries !== 'object' || entries === null) return;
  const seen = new Map<string, string>();
  for (const key of Object.keys(entries)) {
    const lower = key.toLowerCase();
    const earlier = seen.get(lower);
    if (earlier === undefined) seen.set(lower, key);
    else ctx.addIssue({ code: 'custom', path: [key], message: `header ${key} is already written as ${earlier} (header names are case-insensitive)`, params: AT_KEY, input: key });
  }
}
