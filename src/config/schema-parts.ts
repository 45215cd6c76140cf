/**
 * The zod building blocks every kind's schema is made of, each with its own
 * message in one form: "expected <what>, got <what was found>". Kinds use
 * these instead of bare zod types so that no issue reaches a user in zod's
 * generic wording, and so unknown fields are errors with a did-you-mean.
 */
import { isIP } from 'node:net';
import * as z from 'zod';
import { parseDurationMs } from '../lib/duration.js';
import { didYouMean } from './did-you-mean.js';
import type { ServiceRef } from './types.js';

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

/** As expecting(), for numbers: `port: "9080"` is a string in YAML. */
export function expectingNumber(what: string): (issue: IssueInput) => string {
  const plain = expecting(what);
  return (issue) => {
    const input = issue.input;
    if (typeof input === 'string' && /^\s*\d+(?:\.\d+)?\s*$/.test(input)) return `${plain(issue)} (write it without quotes)`;
    if (typeof input === 'string' && /^\s*\d+(?:\.\d+)?\s*%\s*$/.test(input)) return `${plain(issue)} (write the number without %)`;
    return plain(issue);
  };
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value) && !(value instanceof Date);
}

/** Zod's payload as the `when` option sees it. */
interface Payload {
  readonly value: unknown;
  /** Issues so far, with paths relative to the value. */
  readonly issues: readonly { readonly path?: readonly PropertyKey[] | undefined }[];
}

/** Run a check even when sibling fields have issues, as long as the value is a mapping. */
export const whenMapping = { when: (payload: Payload): boolean => isPlainObject(payload.value) };
/** Same, for lists. */
export const whenList = { when: (payload: Payload): boolean => Array.isArray(payload.value) };

function startsWith(path: readonly PropertyKey[], prefix: readonly PropertyKey[]): boolean {
  return prefix.every((segment, index) => path[index] === segment);
}

/**
 * Run a check on a mapping only when the fields it compares are valid. A
 * field that failed keeps its input (`timeout: 5` stays 5), which a check
 * must not mistake for a parsed value (5 milliseconds).
 */
export function whenValid(...fields: ReadonlyArray<readonly PropertyKey[]>) {
  return {
    when: (payload: Payload): boolean =>
      isPlainObject(payload.value) && !payload.issues.some((issue) => fields.some((field) => startsWith(issue.path ?? [], field))),
  };
}

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
  return integer(1, 65535, PORT_WORDS);
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

/** An integer in min..max; `what` replaces the default wording "an integer min..max". */
export function integer(min: number, max: number, what = `an integer ${min}..${max}`) {
  const error = expectingNumber(what);
  // A custom check rather than z.int(): zod treats a fraction as fatal for the
  // whole mapping, which would hide its other problems (unknown fields).
  return z.number({ error }).superRefine((value, ctx) => {
    if (Number.isInteger(value) && value >= min && value <= max) return;
    ctx.addIssue({ code: 'custom', message: error({ input: value }), input: value });
  });
}

/** A share of requests: a number 0..100 (fractions allowed: 0.5 is one in two hundred). */
export function percent(what = 'a percentage 0..100') {
  const error = expectingNumber(what);
  return z.number({ error }).min(0, { error }).max(100, { error });
}

/** `true` or `false`. */
export function flag(what = 'true or false') {
  return z.boolean({ error: expecting(what) });
}

const DURATION_WORDS = 'written as a whole number and a unit (ms, s, m, h) like 250ms or 2s';

function durationMs(value: string): number | undefined {
  try {
    return parseDurationMs(value, 'duration');
  } catch {
    return undefined;
  }
}

/**
 * A duration written `250ms`, `2s`, `1m` (src/lib/duration.ts), between `min`
 * and `max` (written the same way), as milliseconds.
 */
export function duration(min: string, max: string) {
  const minMs = durationMs(min) as number;
  const maxMs = durationMs(max) as number;
  const words = `a duration from ${min} to ${max}, ${DURATION_WORDS}`;
  const plain = expecting(words);
  const error = (issue: { readonly input?: unknown }): string => {
    // `timeout: 5`: the unit is what is missing.
    if (typeof issue.input === 'number') return `${plain(issue)} (add a unit: ${issue.input}s or ${issue.input}ms)`;
    return plain(issue);
  };
  return z
    .string({ error })
    .superRefine((value, ctx) => {
      const ms = durationMs(value);
      if (ms !== undefined && ms >= minMs && ms <= maxMs) return;
      ctx.addIssue({ code: 'custom', message: `expected ${words}, got ${describeValue(value)}`, input: value });
    })
    .transform((value) => durationMs(value) as number);
}

/**
 * Reports the second and later items whose `key(item)` was seen before.
 * Runs even when some items are invalid (their key is undefined and they are
 * skipped), so a duplicate is reported together with every other problem.
 * Use with `whenList`.
 */
export function uniqueItems(list: string, key: (item: unknown) => string | undefined, describe: (key: string) => string, field?: string) {
  return (items: readonly unknown[], ctx: z.RefinementCtx): void => {
    const first = new Map<string, number>();
    for (let index = 0; index < items.length; index++) {
      const item = items[index];
      const itemKey = key(item);
      if (itemKey === undefined) continue;
      const earlier = first.get(itemKey);
      if (earlier === undefined) {
        first.set(itemKey, index);
        continue;
      }
      ctx.addIssue({
        code: 'custom',
        path: field === undefined ? [index] : [index, field],
        message: `${describe(itemKey)} is already used by ${list}[${earlier}]`,
        input: item,
      });
    }
  };
}

/** `item.field` when item is a mapping. */
export function fieldOf(item: unknown, field: string): unknown {
  return isPlainObject(item) ? item[field] : undefined;
}

/** A string value as a key for uniqueItems. */
export function stringKey(value: unknown): string | undefined {
  return typeof value === 'string' ? value : undefined;
}

/** Refinements on a mapping (use with `whenMapping`): the fields written in it, in `fields` order. */
function fieldsSet(value: unknown, fields: readonly string[]): string[] {
  return isPlainObject(value) ? fields.filter((field) => value[field] !== undefined) : [];
}

/** Exactly one of `fields` (`path: { prefix: /api }`); a second one is reported at its key. */
export function exactlyOneOf(fields: readonly string[]) {
  const words = fields.join(', ');
  return (value: unknown, ctx: z.RefinementCtx): void => {
    const set = fieldsSet(value, fields);
    if (set.length === 0) {
      ctx.addIssue({ code: 'custom', message: `expected exactly one of ${words}, got none of them`, input: value });
    }
    for (const extra of set.slice(1)) {
      ctx.addIssue({ code: 'custom', path: [extra], message: `cannot be used together with ${set[0]}: write exactly one of ${words}`, params: AT_KEY, input: value });
    }
  };
}

/** At least one of `fields`, for mappings whose every field is optional but that must say something. */
export function atLeastOneOf(fields: readonly string[]) {
  return (value: unknown, ctx: z.RefinementCtx): void => {
    if (fieldsSet(value, fields).length > 0) return;
    ctx.addIssue({ code: 'custom', message: `expected at least one of ${fields.join(', ')}, got none of them`, input: value });
  };
}

/** A list of `item`; `what` names it for "expected <what>, got a mapping". */
export function listOf<Item extends z.ZodType>(item: Item, what: string) {
  return z.array(item, { error: expecting(what) });
}

/** A non-empty list of `item`. */
export function nonEmptyListOf<Item extends z.ZodType>(item: Item, what: string) {
  return z.array(item, { error: expecting(what) }).min(1, { error: `expected ${what}, got an empty list` });
}

/** A mapping from names to `value`; the names are checked by `validKey` (reported at the key). */
export function mapOf<Value extends z.ZodType>(value: Value, what: string, keyWords: string, validKey: (key: string) => boolean) {
  return z.record(z.string(), value, { error: expecting(what) }).superRefine((entries, ctx) => {
    for (const key of Object.keys(entries)) {
      if (validKey(key)) continue;
      ctx.addIssue({ code: 'custom', path: [key], message: `expected ${keyWords}, got ${describeValue(key)}`, params: AT_KEY, input: key });
    }
  }, whenMapping);
}

const SERVICE_REF_WORDS = 'a service name (a DNS-1123 label, e.g. reviews), optionally with its namespace after a dot (reviews.shop)';

/** What serviceRef() parses to; resolveServiceRef() fills in the document's namespace. */
export interface ParsedServiceRef {
  readonly name: string;
  readonly namespace: string | undefined;
}

function isServiceRef(value: string): boolean {
  const parts = value.split('.');
  return parts.length <= 2 && parts.every(isDnsLabel);
}

/** `reviews.shop.svc.cluster.local` → `reviews.shop`; `Reviews` → `reviews`. */
function serviceRefLike(value: string): string | undefined {
  const parts = value.toLowerCase().split('.');
  const candidate = parts.length > 2 && parts[2] === 'svc' ? `${parts[0]}.${parts[1]}` : parts.length === 1 ? dnsLabelLike(value) : undefined;
  return candidate !== undefined && isServiceRef(candidate) ? candidate : undefined;
}

/** A service a document names: `reviews` (in the document's namespace) or `reviews.shop`. */
export function serviceRef() {
  return textMatching(SERVICE_REF_WORDS, isServiceRef, serviceRefLike).transform((value): ParsedServiceRef => {
    const dot = value.indexOf('.');
    return dot === -1 ? { name: value, namespace: undefined } : { name: value.slice(0, dot), namespace: value.slice(dot + 1) };
  });
}

/** The reference with the document's namespace filled in when it names none. */
export function resolveServiceRef(parsed: ParsedServiceRef, namespace: string): ServiceRef {
  return { name: parsed.name, namespace: parsed.namespace ?? namespace };
}

