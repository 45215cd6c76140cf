/**
 * Trace and span ids: validation and the lowercase-hex form we store, from
 * protobuf bytes or OTLP/JSON hex strings.
 */
import { jsonTypeName } from './json-values.js';
import { OtlpMalformedError } from './malformed.js';
import type { ProtoReader } from './wire.js';

export const TRACE_ID_BYTES = 16;
export const SPAN_ID_BYTES = 8;

/**
 * The hex form of `len` bytes at `start`, which must be exactly `expected`
 * bytes and not all zero (W3C: an all-zero id is invalid). `path` names the
 * field in the error.
 */
export function idHex(r: ProtoReader, start: number, len: number, expected: number, path: string): string {
  if (len !== expected) throw new OtlpMalformedError(`expected ${expected} bytes, got ${len}`, path);
  const buf = r.buf;
  const end = start + len;
  for (let i = start; i < end; i++) {
    if (buf[i] !== 0) return r.hex(start, end);
  }
  throw new OtlpMalformedError(`all ${expected} bytes are zero`, path);
}

/**
 * A span's parent id: empty means a root span. All-zero 8 bytes is the
 * invalid span id, which some senders use for "no parent": also a root.
 */
export function parentIdHex(r: ProtoReader, start: number, len: number): string {
  if (len === 0) return '';
  if (len !== SPAN_ID_BYTES) {
    throw new OtlpMalformedError(`expected ${SPAN_ID_BYTES} bytes or none, got ${len}`, 'parent_span_id');
  }
  const buf = r.buf;
  const end = start + len;
  for (let i = start; i < end; i++) {
    if (buf[i] !== 0) return r.hex(start, end);
  }
  return '';
}

/** Like idHex, but an absent (empty) id is allowed and gives ''. */
export function optionalIdHex(r: ProtoReader, start: number, len: number, expected: number, path: string): string {
  return len === 0 ? '' : idHex(r, start, len, expected, path);
}

/** An OTLP/JSON id: `expected` bytes as hex (either case), not all zero; returned lowercase. */
export function jsonIdHex(value: unknown, expected: number, path: string): string {
  if (typeof value !== 'string') {
    throw new OtlpMalformedError(`expected a hex string, got ${jsonTypeName(value)}`, path);
  }
  if (value.length !== expected * 2) {
    throw new OtlpMalformedError(
      `expected ${expected * 2} hex digits (${expected} bytes), got ${value.length} characters`,
      path,
    );
  }
  let nonZero = false;
  for (let i = 0; i < value.length; i++) {
    const c = value.charCodeAt(i);
    const isDigit = c >= 0x30 && c <= 0x39;
    const isHexLetter = (c >= 0x61 && c <= 0x66) || (c >= 0x41 && c <= 0x46);
    if (!isDigit && !isHexLetter) {
      throw new OtlpMalformedError(`character ${JSON.stringify(value[i])} at ${i} is not a hex digit`, path);
    }
    if (c !== 0x30) nonZero = true;
  }
  if (!nonZero) throw new OtlpMalformedError(`all ${expected} bytes are zero`, path);
  return value.toLowerCase();
}

/** The OTLP/JSON parent span id: absent, '' or all zeros mean a root span (''). */
export function jsonParentIdHex(value: unknown): string {
  if (value === undefined || value === '') return '';
  if (typeof value === 'string' && /^0+$/.test(value) && value.length === SPAN_ID_BYTES * 2) return '';
  return jsonIdHex(value, SPAN_ID_BYTES, 'parent_span_id');
}

/** Like jsonIdHex, but absent (undefined or '') gives ''. */
export function optionalJsonIdHex(value: unknown, expected: number, path: string): string {
  return value === undefined || value === '' ? '' : jsonIdHex(value, expected, path);
}
