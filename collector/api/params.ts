import { TracemeshError, isTracemeshError } from '../../src/lib/errors.js';
import { parseDurationNanos } from '../../src/lib/duration.js';

/**
 * The one place where query API parameters are checked. Every handler gets a
 * typed, validated object from a `parse*Params` function below; anything
 * malformed, out of range, repeated or unknown becomes a BadParamError (400)
 * whose message starts with the parameter's name.
 */

/** The parsed query string: every key with all its values, in order (see parseQueryString). */
export type RawQuery = Readonly<Record<string, readonly string[]>>;

export class BadParamError extends TracemeshError {
  readonly parameter: string;

  constructor(parameter: string, problem: string) {
    super('TM_ERR_API_BAD_PARAM', `${parameter}: ${problem}`);
    this.name = 'BadParamError';
    this.parameter = parameter;
  }
}

const NANOS_PER_MS = 1_000_000n;
const NANOS_PER_MINUTE = 60_000_000_000n;
const NANOS_PER_DAY = 86_400_000_000_000n;

const MIN_SINCE_NANOS = 1n;
export const MAX_SINCE_NANOS = 30n * NANOS_PER_DAY;
export const DEFAULT_SINCE = '15m';
export const DEFAULT_LIMIT = 20;
export const MAX_LIMIT = 1000;
export const DEFAULT_STEP = '60s';
export const MAX_RED_POINTS = 1440;
/** Span durations filtered on: anything past a year is a typo, and keeps the value inside UInt64. */
const MAX_SPAN_DURATION_NANOS = 365n * NANOS_PER_DAY;
const MAX_STEP_NANOS = MAX_SINCE_NANOS;
/** Names (services, operations, attribute keys) and attribute values. */
const MAX_NAME_LENGTH = 256;
const MAX_ATTR_VALUE_LENGTH = 1024;
const MAX_ATTR_FILTERS = 16;
export const ATTR_PREFIX = 'attr.';

const TRACE_ID_RE = /^[0-9a-fA-F]{1,32}$/;
const INT_RE = /^\d{1,9}$/;

/**
 * A query-string parser for fastify: every key maps to an array of its values,
 * so a repeated parameter can be told apart from a single one. The object has
 * no prototype: keys like `__proto__` are plain data.
 */
export function parseQueryString(text: string): Record<string, string[]> {
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const [key, value] of new URLSearchParams(text)) {
    const values = out[key];
    if (values === undefined) out[key] = [value];
    else values.push(value);
  }
  return out;
}

/** Takes the raw query for one request, hands out each allowed parameter once, and rejects the rest. */
class QueryReader {
  readonly #query: RawQuery;

  constructor(query: unknown, allowed: readonly string[], allowAttr: boolean) {
    this.#query = toRawQuery(query);
    for (const key of Object.keys(this.#query)) {
      const values = this.#query[key] ?? [];
      if (!allowed.includes(key) && !(allowAttr && key.startsWith(ATTR_PREFIX))) {
        const hint = allowed.length === 0 ? 'this endpoint takes no parameters' : `allowed: ${allowed.join(', ')}${allowAttr ? `, ${ATTR_PREFIX}KEY` : ''}`;
        throw new BadParamError(key, `unknown parameter (${hint})`);
      }
      if (values.length > 1) throw new BadParamError(key, 'given more than once');
    }
  }

  /** The text of `name`, or undefined when absent. Empty text is an error: an absent value is left out. */
  text(name: string): string | undefined {
    const value = this.#query[name]?.[0];
    if (value === undefined) return undefined;
    if (value.length === 0) throw new BadParamError(name, 'is empty (leave the parameter out instead)');
    return value;
  }

  /** `attr.KEY=VALUE` filters, in the order given. */
  attributes(): AttributeFilter[] {
    const filters: AttributeFilter[] = [];
    for (const key of Object.keys(this.#query)) {
      if (!key.startsWith(ATTR_PREFIX)) continue;
      const attrKey = key.slice(ATTR_PREFIX.length);
      if (attrKey.length === 0) throw new BadParamError(key, `needs an attribute key (${ATTR_PREFIX}KEY=VALUE)`);
      if (attrKey.length > MAX_NAME_LENGTH) throw new BadParamError(key, `attribute key is longer than ${MAX_NAME_LENGTH} characters`);
      const value = this.#query[key]?.[0] ?? '';
      if (value.length > MAX_ATTR_VALUE_LENGTH) throw new BadParamError(key, `value is longer than ${MAX_ATTR_VALUE_LENGTH} characters`);
      filters.push({ key: attrKey, value });
      if (filters.length > MAX_ATTR_FILTERS) throw new BadParamError(key, `too many attribute filters (at most ${MAX_ATTR_FILTERS})`);
    }
    return filters;
  }
}

function toRawQuery(query: unknown): RawQuery {
  if (query === null || typeof query !== 'object') return {};
  const out: Record<string, string[]> = Object.create(null) as Record<string, string[]>;
  for (const [key, value] of Object.entries(query as Record<string, unknown>)) {
    if (typeof value === 'string') out[key] = [value];
    else if (Array.isArray(value)) out[key] = value.map((item) => String(item));
  }
  return out;
}

function quoted(text: string): string {
  const shown = text.length > 64 ? `${text.slice(0, 64)}...` : text;
  return `'${shown}'`;
}

/** `15m`-style text formatted back from nanoseconds, for range messages. */
function durationText(nanos: bigint): string {
  if (nanos === 0n) return '0s';
  if (nanos % NANOS_PER_DAY === 0n) return `${nanos / NANOS_PER_DAY}d`;
  if (nanos % 3_600_000_000_000n === 0n) return `${nanos / 3_600_000_000_000n}h`;
  if (nanos % NANOS_PER_MINUTE === 0n) return `${nanos / NANOS_PER_MINUTE}m`;
  if (nanos % 1_000_000_000n === 0n) return `${nanos / 1_000_000_000n}s`;
  if (nanos % NANOS_PER_MS === 0n) return `${nanos / NANOS_PER_MS}ms`;
  return `${nanos}ns`;
}

function duration(name: string, text: string, min: bigint, max: bigint): bigint {
  let nanos: bigint;
  try {
    nanos = parseDurationNanos(text, name);
  } catch (err) {
    if (isTracemeshError(err, 'TM_ERR_CLI_BAD_VALUE')) {
      throw new BadParamError(name, err.message.slice(name.length + 2));
    }
    throw err;
  }
  if (nanos < min || nanos > max) {
    throw new BadParamError(name, `${quoted(text)} is out of range (${durationText(min)}-${durationText(max)})`);
  }
  return nanos;
}

function integer(name: string, text: string, min: number, max: number): number {
  if (!INT_RE.test(text)) throw new BadParamError(name, `${quoted(text)} is not a whole number`);
  const value = Number(text);
  if (value < min || value > max) throw new BadParamError(name, `${quoted(text)} is out of range (${min}-${max})`);
  return value;
}

function name(paramName: string, text: string | undefined): string | undefined {
  if (text !== undefined && text.length > MAX_NAME_LENGTH) {
    throw new BadParamError(paramName, `is longer than ${MAX_NAME_LENGTH} characters`);
  }
  return text;
}

function oneOf<T extends string>(paramName: string, text: string, values: readonly T[]): T {
  const found = values.find((value) => value === text);
  if (found === undefined) throw new BadParamError(paramName, `${quoted(text)} is not one of ${values.join(', ')}`);
  return found;
}

function since(reader: QueryReader, fallback: string): bigint {
  return duration('since', reader.text('since') ?? fallback, MIN_SINCE_NANOS, MAX_SINCE_NANOS);
}

export interface AttributeFilter {
  key: string;
  value: string;
}

/** Normalises a trace id: 1-32 hex digits, case-insensitive, left-padded with zeros to 32. */
export function parseTraceId(text: string): string {
  if (!TRACE_ID_RE.test(text)) throw new BadParamError('traceId', `${quoted(text)} is not a trace id (1-32 hex digits)`);
  return text.toLowerCase().padStart(32, '0');
}

/** Endpoints without parameters (`/ready`, `/api/v1/traces/{traceId}`) still reject unknown ones. */
export function parseNoParams(query: unknown): void {
  new QueryReader(query, [], false);
}

export type StatusFilter = 'error' | 'ok' | 'unset';

export interface TraceSearchParams {
  service: string | undefined;
  operation: string | undefined;
  minDurationNanos: bigint | undefined;
  maxDurationNanos: bigint | undefined;
  status: StatusFilter | undefined;
  sinceNanos: bigint;
  limit: number;
  attributes: AttributeFilter[];
}

const SEARCH_PARAMS = ['service', 'operation', 'minDuration', 'maxDuration', 'status', 'since', 'limit'] as const;
const STATUSES: readonly StatusFilter[] = ['error', 'ok', 'unset'];

export function parseTraceSearchParams(query: unknown): TraceSearchParams {
  const reader = new QueryReader(query, SEARCH_PARAMS, true);
  const minText = reader.text('minDuration');
  const maxText = reader.text('maxDuration');
  const minDurationNanos = minText === undefined ? undefined : duration('minDuration', minText, 0n, MAX_SPAN_DURATION_NANOS);
  const maxDurationNanos = maxText === undefined ? undefined : duration('maxDuration', maxText, 0n, MAX_SPAN_DURATION_NANOS);
  if (minDurationNanos !== undefined && maxDurationNanos !== undefined && maxDurationNanos < minDurationNanos) {
    throw new BadParamError('maxDuration', `${quoted(maxText ?? '')} is less than minDuration ${quoted(minText ?? '')}`);
  }
  const statusText = reader.text('status');
  const limitText = reader.text('limit');
  return {
    service: name('service', reader.text('service')),
    operation: name('operation', reader.text('operation')),
    minDurationNanos,
    maxDurationNanos,
    status: statusText === undefined ? undefined : oneOf('status', statusText, STATUSES),
    sinceNanos: since(reader, DEFAULT_SINCE),
    limit: limitText === undefined ? DEFAULT_LIMIT : integer('limit', limitText, 1, MAX_LIMIT),
    attributes: reader.attributes(),
  };
}

export interface ServicesParams {
  /** Undefined: everything retained. */
  sinceNanos: bigint | undefined;
}

export function parseServicesParams(query: unknown): ServicesParams {
  const reader = new QueryReader(query, ['since'], false);
  const text = reader.text('since');
  return { sinceNanos: text === undefined ? undefined : duration('since', text, MIN_SINCE_NANOS, MAX_SINCE_NANOS) };
}

export interface GraphParams {
  sinceNanos: bigint;
}

export function parseGraphParams(query: unknown): GraphParams {
  const reader = new QueryReader(query, ['since'], false);
  return { sinceNanos: since(reader, DEFAULT_SINCE) };
}

export type RedKind = 'server' | 'client' | 'all';

export interface RedParams {
  service: string;
  operation: string | undefined;
  kind: RedKind;
  sinceNanos: bigint;
  stepNanos: bigint;
  /** How many step buckets the window spans, 1..MAX_RED_POINTS. */
  points: number;
}

const RED_KINDS: readonly RedKind[] = ['server', 'client', 'all'];

export function parseRedParams(query: unknown): RedParams {
  const reader = new QueryReader(query, ['service', 'operation', 'kind', 'since', 'step'], false);
  const service = name('service', reader.text('service'));
  if (service === undefined) throw new BadParamError('service', 'is required');
  const sinceNanos = since(reader, DEFAULT_SINCE);
  const stepText = reader.text('step') ?? DEFAULT_STEP;
  const stepNanos = duration('step', stepText, NANOS_PER_MINUTE, MAX_STEP_NANOS);
  if (stepNanos % NANOS_PER_MINUTE !== 0n) {
    throw new BadParamError('step', `${quoted(stepText)} is not a whole number of minutes`);
  }
  const points = Number((sinceNanos + stepNanos - 1n) / stepNanos);
  if (points > MAX_RED_POINTS) {
    throw new BadParamError('step', `${quoted(stepText)} gives ${points} points over since=${durationText(sinceNanos)} (at most ${MAX_RED_POINTS}; use a larger step)`);
  }
  const kindText = reader.text('kind');
  return {
    service,
    operation: name('operation', reader.text('operation')),
    kind: kindText === undefined ? 'server' : oneOf('kind', kindText, RED_KINDS),
    sinceNanos,
    stepNanos,
    points,
  };
}
