/**
 * Reading OTLP/JSON values with the protobuf JSON mapping's leniencies:
 * lowerCamelCase or the proto snake_case name, `null` meaning "not set",
 * 64-bit integers as strings or numbers, doubles also as "NaN"/"Infinity".
 * Each reader takes the field's path segment and throws an
 * OtlpMalformedError naming it when the JSON type is wrong.
 */
import { OtlpMalformedError } from './malformed.js';

export type JsonObject = Record<string, unknown>;

const EMPTY: readonly unknown[] = Object.freeze([]);
const MAX_UINT64 = 18446744073709551615n;
const MIN_INT64 = -9223372036854775808n;
const MAX_INT64 = 9223372036854775807n;
const INTEGER_TEXT = /^-?[0-9]+$/;
/** Non-fatal: invalid UTF-8 becomes U+FFFD, as in the protobuf decoders. Stateless outside streaming mode, so shared. */
const UTF8 = new TextDecoder();

/** Parses a request body; invalid JSON is TM_ERR_OTLP_MALFORMED with JSON.parse's own position message. */
export function parseJsonBody(body: string | Uint8Array): unknown {
  const text = typeof body === 'string' ? body : UTF8.decode(body);
  try {
    return JSON.parse(text);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new OtlpMalformedError(`invalid JSON: ${reason}`);
  }
}

export function jsonTypeName(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  return typeof value;
}

function wrongType(expected: string, value: unknown, path: string): OtlpMalformedError {
  return new OtlpMalformedError(`expected ${expected}, got ${jsonTypeName(value)}`, path);
}

/** A member by its JSON name or its proto name; `null` reads as absent. */
export function member(obj: JsonObject, jsonName: string, protoName?: string): unknown {
  let v = obj[jsonName];
  if (v === undefined && protoName !== undefined) v = obj[protoName];
  return v === null ? undefined : v;
}

export function isJsonObject(value: unknown): value is JsonObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

export function asObject(value: unknown, path: string): JsonObject {
  if (!isJsonObject(value)) throw wrongType('an object', value, path);
  return value;
}

/** An optional object: undefined when absent. */
export function optObject(value: unknown, path: string): JsonObject | undefined {
  return value === undefined ? undefined : asObject(value, path);
}

export function optArray(value: unknown, path: string): readonly unknown[] {
  if (value === undefined) return EMPTY;
  if (!Array.isArray(value)) throw wrongType('an array', value, path);
  return value;
}

export function optString(value: unknown, path: string): string {
  if (value === undefined) return '';
  if (typeof value !== 'string') throw wrongType('a string', value, path);
  return value;
}

export function optBool(value: unknown, path: string): boolean {
  if (value === undefined) return false;
  if (typeof value !== 'boolean') throw wrongType('a boolean', value, path);
  return value;
}

/** An integer given as a JSON number or a decimal string, as bigint, checked against [min, max]. */
function integer(value: unknown, path: string, min: bigint, max: bigint, what: string): bigint {
  let n: bigint;
  if (typeof value === 'number') {
    if (!Number.isInteger(value)) throw new OtlpMalformedError(`expected ${what}, got ${value}`, path);
    n = BigInt(value);
  } else if (typeof value === 'string') {
    if (!INTEGER_TEXT.test(value)) {
      throw new OtlpMalformedError(`expected ${what}, got ${JSON.stringify(value.slice(0, 40))}`, path);
    }
    n = BigInt(value);
  } else {
    throw wrongType(`${what} (number or decimal string)`, value, path);
  }
  if (n < min || n > max) throw new OtlpMalformedError(`${n} is out of range for ${what}`, path);
  return n;
}

/** uint64/fixed64 (times, counts); absent is 0. */
export function optUint64(value: unknown, path: string): bigint {
  return value === undefined ? 0n : integer(value, path, 0n, MAX_UINT64, 'an unsigned 64-bit integer');
}

/** int64/sfixed64 as bigint. */
export function int64(value: unknown, path: string): bigint {
  return integer(value, path, MIN_INT64, MAX_INT64, 'a 64-bit integer');
}

/** uint32/fixed32 (flags, counts); absent is 0. */
export function optUint32(value: unknown, path: string): number {
  return value === undefined ? 0 : Number(integer(value, path, 0n, 0xffffffffn, 'an unsigned 32-bit integer'));
}

/** int32/sint32; absent is 0. */
export function optInt32(value: unknown, path: string): number {
  return value === undefined ? 0 : Number(integer(value, path, -0x80000000n, 0x7fffffffn, 'a 32-bit integer'));
}

/** A double: a JSON number, or a string holding one or "NaN"/"Infinity"/"-Infinity". */
export function double(value: unknown, path: string): number {
  if (typeof value === 'number') return value;
  if (typeof value === 'string') {
    if (value === 'NaN') return NaN;
    if (value === 'Infinity') return Infinity;
    if (value === '-Infinity') return -Infinity;
    const n = value.trim() === '' ? NaN : Number(value);
    if (!Number.isNaN(n)) return n;
    throw new OtlpMalformedError(`expected a number, got ${JSON.stringify(value.slice(0, 40))}`, path);
  }
  throw wrongType('a number', value, path);
}

/** An optional double; `absent` when not set (0 for plain doubles, NaN for `optional double`). */
export function optDouble(value: unknown, path: string, absent: number): number {
  return value === undefined ? absent : double(value, path);
}

/**
 * An enum given as its number or its name (`SPAN_KIND_SERVER`). Returns the
 * number; unknown names are errors, range checks are the caller's.
 */
export function optEnum(value: unknown, path: string, names: ReadonlyMap<string, number>): number {
  if (value === undefined) return 0;
  if (typeof value === 'string') {
    const n = names.get(value);
    if (n !== undefined) return n;
    if (!INTEGER_TEXT.test(value)) throw new OtlpMalformedError(`unknown enum value ${JSON.stringify(value.slice(0, 60))}`, path);
  }
  return Number(integer(value, path, -0x80000000n, 0x7fffffffn, 'an enum number or name'));
}
