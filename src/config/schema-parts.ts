/**
 * The zod building blocks every kind's schema is made of, each with its own
 * message in one form: "expected <what>, got <what was found>". Kinds use
 * these instead of bare zod types so that no issue reaches a user in zod's
 * generic wording, and so unknown fields are errors with a did-you-mean.
 */
import { isIP } from 'node:net';
import * as z from 'zod';
import { didYouMean } from './did-you-mean.js';

/** How a found value reads in a message: `"abc"`, `70000`, `true`, `a list`, `a mapping`. */
export function describeValue(value: unknown): string {
  if (value === undefined) return 'nothing';
  if (value === null) return 'an empty value (null)';
  if (typeof value === 'string') {
    const shown = value.length > 60 ? `${value.slice(0, 57)}...` : value;
    return JSON.stringify(shown);
  }
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') return String(value);
  if (Array.isArray(value)) return value.length === 0 ? 'an empty list' : 'a list';
  if (value instanceof Date) return `a timestamp (${value.toISOString()})`;
  if (typeof value === 'object') return 'a mapping';
  return typeof value;
}

interface IssueInput {
  readonly input?: unknown;
}

/** The zod error function for "expected <what>"; a missing field says so. */
export function expecting(what: string): (issue: IssueInput) => string {
  return (issue) => (issue.input === undefined ? `missing; expected ${what}` : `expected ${what}, got ${describeValue(issue.input)}`);
}

/** As expecting(), for strings: YAML reads `version: 1` as a number, so say how to write it. */
function expectingString(what: string): (issue: IssueInput) => string {
  const plain = expecting(what);
  return (issue) => {
    const input = issue.input;
    if (typeof input === 'number' || typeof input === 'boolean') return `${plain(issue)} (quote it to make it a string: "${String(input)}")`;
    return plain(issue);
  };
}

/** As expecting(), for integers: `port: "9080"` is a string in YAML. */
function expectingInteger(what: string): (issue: IssueInput) => string {
  const plain = expecting(what);
  return (issue) => {
    const input = issue.input;
    if (typeof input === 'string' && /^\s*\d+\s*$/.test(input)) return `${plain(issue)} (write it without quotes)`;
    return plain(issue);
  };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Zod's payload as the `when` option sees it; only `value` is used. */
interface Payload {
  readonly value: unknown;
}

/** Run a check even when sibling fields have issues, as long as the value is a mapping. */
const whenMapping = { when: (payload: Payload): boolean => isPlainObject(payload.value) };
/** Same, for lists. */
export const whenList = { when: (payload: Payload): boolean => Array.isArray(payload.value) };

/** Issue params that make the position point at the mapping key rather than its value. */
export const AT_KEY = { at: 'key' } as const;

/**
 * A mapping with exactly these fields. Unknown fields are errors naming the
 * closest known field; `what` describes the mapping for "expected <what>, got a list".
 */
export function strictFields<Shape extends z.ZodRawShape>(shape: Shape, what: string) {
  const known = Object.keys(shape);
  // looseObject plus our own check instead of strictObject: zod reports all
  // unknown keys as one issue at the parent; we want one per key, at the key,
  // with a suggestion.
  return z.looseObject(shape, { error: expecting(what) }).superRefine((value, ctx) => {
    for (const key of Object.keys(value)) {
      if (known.includes(key)) continue;
      ctx.addIssue({ code: 'custom', path: [key], message: `unknown field${didYouMean(key, known)}`, params: AT_KEY, input: value[key] });
    }
  }, whenMapping);
}

/** Any string, with the quote hint for numbers and booleans. */
export function text(what: string) {
  return z.string({ error: expectingString(what) });
}

/** A string accepted by `valid`; the message says what was expected and, when there is one, a suggestion. */
export function textMatching(what: string, valid: (value: string) => boolean, suggest?: (value: string) => string | undefined) {
  return text(what).superRefine((value, ctx) => {
    if (valid(value)) return;
    const suggestion = suggest?.(value);
    const hint = suggestion !== undefined && suggestion !== value ? `; did you mean ${suggestion}?` : '';
    ctx.addIssue({ code: 'custom', message: `expected ${what}, got ${describeValue(value)}${hint}`, input: value });
  });
}

const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const DNS_LABEL_WORDS = "a DNS-1123 label (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit)";

export function isDnsLabel(value: string): boolean {
  return DNS_LABEL.test(value);
}

/** `Reviews_v2` → `reviews-v2`, when that is a valid label. */
function dnsLabelLike(value: string): string | undefined {
  const candidate = value
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, '-')
    .replace(/^-+|-+$/g, '')
    .slice(0, 63)
    .replace(/-+$/, '');
  return isDnsLabel(candidate) ? candidate : undefined;
}

/** Names of services, namespaces and ports (Kubernetes' rule, so the same names work there). */
export function dnsLabel() {
  return textMatching(DNS_LABEL_WORDS, isDnsLabel, dnsLabelLike);
}

const PORT_WORDS = 'an integer 1..65535';

export function portNumber() {
  const error = expectingInteger(PORT_WORDS);
  return z.int({ error }).min(1, { error }).max(65535, { error });
}

/** One of a fixed set of words, with a did-you-mean for `HTTP` or `gprc`. */
export function oneOf<const Values extends readonly [string, ...string[]]>(values: Values) {
  const words = `one of ${values.join(', ')}`;
  return z.enum(values, {
    error: (issue) => {
      const input = issue.input;
      const hint = typeof input === 'string' ? didYouMean(input, values) : '';
      return `${expecting(words)(issue)}${hint}`;
    },
  });
}

export function isIpAddress(value: string): boolean {
  return isIP(value) !== 0;
}

/** IPv6 written with brackets, as in a URL: the address alone is wanted. */
function unbracketed(value: string): string | undefined {
  return value.startsWith('[') && value.endsWith(']') ? value.slice(1, -1) : undefined;
}

export function ipAddress() {
  return textMatching('an IPv4 or IPv6 address', isIpAddress, unbracketed);
}

const HOSTNAME_LABEL = /^[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;

/** RFC 1123 host name: dot-separated labels, at most 253 characters. */
export function isHostname(value: string): boolean {
  if (value.length === 0 || value.length > 253) return false;
  for (const label of value.split('.')) if (!HOSTNAME_LABEL.test(label)) return false;
  return true;
}

/** What an endpoint may name: an address, or a host name resolved when connecting. */
export function hostOrIp() {
  return textMatching('an IPv4 or IPv6 address or a host name', (value) => isIpAddress(value) || isHostname(value), unbracketed);
}

// Kubernetes label syntax, so that labels copied from a Deployment are valid here.
const LABEL_NAME = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;
const LABEL_KEY_WORDS =
  "a label key (1 to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, optionally after a DNS prefix and '/')";
const LABEL_VALUE_WORDS = "a label value (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit)";

function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash === -1) return LABEL_NAME.test(key);
  const prefix = key.slice(0, slash);
  return prefix.length <= 253 && isHostname(prefix) && prefix === prefix.toLowerCase() && LABEL_NAME.test(key.slice(slash + 1));
}

function isLabelValue(value: string): boolean {
  return value === '' || LABEL_NAME.test(value);
}

/** `labels: { version: v1 }`: string keys and values in Kubernetes label syntax. */
export function labelMap() {
  return z
    .record(z.string(), textMatching(LABEL_VALUE_WORDS, isLabelValue), { error: expecting('a mapping of label names to values') })
    .superRefine((labels, ctx) => {
      for (const key of Object.keys(labels)) {
        if (isLabelKey(key)) continue;
        ctx.addIssue({ code: 'custom', path: [key], message: `expected ${LABEL_KEY_WORDS}, got ${describeValue(key)}`, params: AT_KEY, input: key });
      }
    }, whenMapping);
}
