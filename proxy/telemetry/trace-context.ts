/**
 * W3C trace context (traceparent/tracestate) and B3 (single `b3` header and
 * multi `x-b3-*` headers) extraction, id generation, and traceparent
 * formatting. Hot path: no regexes, ids come from a pooled random buffer.
 */
import { randomFillSync } from 'node:crypto';

export interface TraceContext {
  traceId: string;
  spanId: string;
  sampled: boolean;
  traceState: string;
}

/** A header lookup by lowercase name; the protocol paths adapt their header storage to it. */
export type HeaderLookup = (lowercaseName: string) => string | undefined;

const ZERO_TRACE_ID = '00000000000000000000000000000000';
const ZERO_SPAN_ID = '0000000000000000';

// One randomFillSync per 4 KiB instead of one per id.
const POOL_SIZE = 4096;
const pool = Buffer.allocUnsafe(POOL_SIZE);
let poolOffset = POOL_SIZE;

function randomHex(bytes: number): string {
  if (poolOffset + bytes > POOL_SIZE) {
    randomFillSync(pool);
    poolOffset = 0;
  }
  const out = pool.toString('hex', poolOffset, poolOffset + bytes);
  poolOffset += bytes;
  return out;
}

export function newTraceId(): string {
  let id = randomHex(16);
  while (id === ZERO_TRACE_ID) id = randomHex(16);
  return id;
}

export function newSpanId(): string {
  let id = randomHex(8);
  while (id === ZERO_SPAN_ID) id = randomHex(8);
  return id;
}

function isLowerHex(s: string, start: number, end: number): boolean {
  for (let i = start; i < end; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102))) return false;
  }
  return true;
}

function isHexAnyCase(s: string): boolean {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (!((c >= 48 && c <= 57) || (c >= 97 && c <= 102) || (c >= 65 && c <= 70))) return false;
  }
  return true;
}

/**
 * Parses `traceparent` per W3C Trace Context level 1: version 00 exactly 55
 * characters; a future version may be longer and is read by its first four
 * fields. Returns undefined for anything invalid (all-zero ids, version ff).
 */
export function parseTraceparent(value: string, traceState = ''): TraceContext | undefined {
  const v = value.trim();
  if (v.length < 55) return undefined;
  if (v.charCodeAt(2) !== 45 || v.charCodeAt(35) !== 45 || v.charCodeAt(52) !== 45) return undefined; // '-'
  if (!isLowerHex(v, 0, 2) || !isLowerHex(v, 3, 35) || !isLowerHex(v, 36, 52) || !isLowerHex(v, 53, 55)) return undefined;
  const version = v.slice(0, 2);
  if (version === 'ff') return undefined;
  if (version === '00' && v.length !== 55) return undefined;
  if (version !== '00' && v.length > 55 && v.charCodeAt(55) !== 45) return undefined;
  const traceId = v.slice(3, 35);
  const spanId = v.slice(36, 52);
  if (traceId === ZERO_TRACE_ID || spanId === ZERO_SPAN_ID) return undefined;
  const flags = parseInt(v.slice(53, 55), 16);
  return { traceId, spanId, sampled: (flags & 1) === 1, traceState };
}

export function formatTraceparent(traceId: string, spanId: string, sampled: boolean): string {
  return sampled ? `00-${traceId}-${spanId}-01` : `00-${traceId}-${spanId}-00`;
}

function b3TraceId(raw: string): string | undefined {
  const id = raw.toLowerCase();
  if (!isHexAnyCase(id)) return undefined;
  if (id.length === 16) return '0000000000000000' + id; // 64-bit B3 ids are left-padded
  if (id.length === 32 && id !== ZERO_TRACE_ID) return id;
  return undefined;
}

function b3SpanId(raw: string): string | undefined {
  const id = raw.toLowerCase();
  return id.length === 16 && isHexAnyCase(id) && id !== ZERO_SPAN_ID ? id : undefined;
}

function b3Sampled(flag: string | undefined, debug: string | undefined): boolean {
  if (debug === '1' || flag === 'd') return true;
  if (flag === undefined) return true; // deferred: the proxy records, as Envoy does
  return flag === '1' || flag === 'true';
}

/** `b3: {TraceId}-{SpanId}-{SamplingState}-{ParentSpanId}`; a lone sampling state carries no ids. */
export function parseB3Single(value: string): TraceContext | undefined {
  const parts = value.trim().split('-');
  if (parts.length < 2) return undefined;
  const traceId = b3TraceId(parts[0] ?? '');
  const spanId = b3SpanId(parts[1] ?? '');
  if (traceId === undefined || spanId === undefined) return undefined;
  return { traceId, spanId, sampled: b3Sampled(parts[2], undefined), traceState: '' };
}

/**
 * The incoming context: `traceparent` (+ `tracestate`) first, then `b3`, then
 * `x-b3-traceid`/`x-b3-spanid`/`x-b3-sampled`/`x-b3-flags`. Undefined when
 * none is present and valid: the proxy then starts a new trace.
 */
export function extractTraceContext(get: HeaderLookup): TraceContext | undefined {
  const traceparent = get('traceparent');
  if (traceparent !== undefined) {
    const ctx = parseTraceparent(traceparent, get('tracestate') ?? '');
    if (ctx !== undefined) return ctx;
  }
  const single = get('b3');
  if (single !== undefined) {
    const ctx = parseB3Single(single);
    if (ctx !== undefined) return ctx;
  }
  const traceIdRaw = get('x-b3-traceid');
  const spanIdRaw = get('x-b3-spanid');
  if (traceIdRaw !== undefined && spanIdRaw !== undefined) {
    const traceId = b3TraceId(traceIdRaw.trim());
    const spanId = b3SpanId(spanIdRaw.trim());
    if (traceId !== undefined && spanId !== undefined) {
      return { traceId, spanId, sampled: b3Sampled(get('x-b3-sampled')?.trim(), get('x-b3-flags')?.trim()), traceState: '' };
    }
  }
  return undefined;
}
