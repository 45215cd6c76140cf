/**
 * OTLP KeyValue / AnyValue → Attribute, from protobuf and from OTLP/JSON.
 *
 * Value string forms (documented on Attribute in model.ts): string as is,
 * bool `true`/`false`, int in decimal with full int64 precision, double as JS
 * number text (`NaN`, `Infinity`, `-Infinity`), bytes as base64, arrays as JSON
 * arrays and kvlists as JSON objects of plain JSON values (nested ints beyond
 * ±(2^53-1) and non-finite doubles as strings, bytes as base64 strings, an
 * empty AnyValue as null). A top-level empty AnyValue is the empty string.
 * Duplicated keys: the last value wins, at the first key's position.
 */
import type { Attribute } from '../model.js';
import {
  asObject,
  double,
  int64,
  jsonTypeName,
  member,
  optArray,
  optString,
  type JsonObject,
} from './json-values.js';
import { OtlpMalformedError, rethrowWithin } from './malformed.js';
import { ProtoReader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from './wire.js';

/** Arrays and kvlists nest at most this deep: bounds the recursion on hostile input. */
export const MAX_ANY_VALUE_DEPTH = 32;

/** Below this many attributes duplicates are found by pairwise comparison, without a Map. */
const PAIRWISE_DEDUPE_LIMIT = 16;

const TWO_POW_32 = 4294967296;

// AnyValue field numbers.
const ANY_STRING = 1;
const ANY_BOOL = 2;
const ANY_INT = 3;
const ANY_DOUBLE = 4;
const ANY_ARRAY = 5;
const ANY_KVLIST = 6;
const ANY_BYTES = 7;

/** Whole tags (field << 3 | wire type) for the switch in anyValueInto, and each field's wire type. */
const TAG_ANY_STRING = (ANY_STRING << 3) | WIRE_LEN;
const TAG_ANY_BOOL = (ANY_BOOL << 3) | WIRE_VARINT;
const TAG_ANY_INT = (ANY_INT << 3) | WIRE_VARINT;
const TAG_ANY_DOUBLE = (ANY_DOUBLE << 3) | WIRE_FIXED64;
const TAG_ANY_ARRAY = (ANY_ARRAY << 3) | WIRE_LEN;
const TAG_ANY_KVLIST = (ANY_KVLIST << 3) | WIRE_LEN;
const TAG_ANY_BYTES = (ANY_BYTES << 3) | WIRE_LEN;
const ANY_VALUE_WIRE_TYPES: readonly number[] = [-1, WIRE_LEN, WIRE_VARINT, WIRE_VARINT, WIRE_FIXED64, WIRE_LEN, WIRE_LEN, WIRE_LEN];

// KeyValue { key 1, value 2 }.
const TAG_KEY = (1 << 3) | WIRE_LEN;
const TAG_VALUE = (2 << 3) | WIRE_LEN;
const KEY_VALUE_WIRE_TYPES: readonly number[] = [-1, WIRE_LEN, WIRE_LEN];

const ANY_VALUE_FIELDS: readonly string[] = [
  '',
  'string_value',
  'bool_value',
  'int_value',
  'double_value',
  'array_value',
  'kvlist_value',
  'bytes_value',
];

// ---------------------------------------------------------------------------
// Number forms shared by both encodings

/** Decimal text of the int64 whose unsigned halves are lo/hi. */
export function int64Text(lo: number, hi: number): string {
  if (hi === 0) return String(lo);
  const v = (hi | 0) * TWO_POW_32 + lo;
  if (Number.isSafeInteger(v)) return String(v);
  return BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString();
}

/** int64 inside a JSON array/object: a number when safe, else a string. */
function int64Json(lo: number, hi: number): string {
  if (hi === 0) return String(lo);
  const v = (hi | 0) * TWO_POW_32 + lo;
  if (Number.isSafeInteger(v)) return String(v);
  return `"${BigInt.asIntN(64, (BigInt(hi) << 32n) | BigInt(lo)).toString()}"`;
}

function bigintJson(v: bigint): string {
  const n = Number(v);
  return Number.isSafeInteger(n) ? String(n) : `"${v.toString()}"`;
}

function doubleJson(d: number): string {
  return Number.isFinite(d) ? String(d) : `"${String(d)}"`;
}

// ---------------------------------------------------------------------------
// Duplicates

/** Removes duplicated keys: the last value wins, kept where the key first appeared. */
export function dedupeAttributes(attrs: Attribute[]): Attribute[] {
  const n = attrs.length;
  if (n < 2) return attrs;
  if (n <= PAIRWISE_DEDUPE_LIMIT) {
    let duplicated = false;
    for (let i = 1; i < n && !duplicated; i++) {
      const key = (attrs[i] as Attribute).key;
      for (let j = 0; j < i; j++) {
        if ((attrs[j] as Attribute).key === key) {
          duplicated = true;
          break;
        }
      }
    }
    if (!duplicated) return attrs;
  }
  const byKey = new Map<string, Attribute>();
  for (const a of attrs) byKey.set(a.key, a);
  return byKey.size === n ? attrs : Array.from(byKey.values());
}

// ---------------------------------------------------------------------------
// Protobuf

/**
 * Decodes the KeyValue element of a repeated attributes field (its tag just
 * read) and appends it; the caller dedupes once at the end. One function for
 * the element and the KeyValue, as this runs ten times per span.
 */
export function pushKeyValue(r: ProtoReader, end: number, out: Attribute[], fieldName: string): void {
  let tag = 0;
  try {
    r.expect(WIRE_LEN);
    const e = r.lengthDelimited(end);
    const attr: Attribute = { key: '', value: '', type: 'string' };
    while (r.pos < e) {
      tag = 0;
      tag = r.rawTag(e);
      if (tag === TAG_KEY) attr.key = r.string(e);
      else if (tag === TAG_VALUE) anyValueInto(r, r.lengthDelimited(e), attr);
      else r.skipUnexpected(tag, KEY_VALUE_WIRE_TYPES, e);
    }
    out.push(attr);
  } catch (err) {
    const element = `${fieldName}[${out.length}]`;
    const field = tag >>> 3;
    rethrowWithin(err, field === 1 ? `${element}.key` : field === 2 ? `${element}.value` : element);
  }
}

/** A top-level AnyValue in [r.pos, end) into attr.value / attr.type. */
function anyValueInto(r: ProtoReader, end: number, attr: Attribute): void {
  let tag = 0;
  try {
    while (r.pos < end) {
      tag = 0;
      tag = r.rawTag(end);
      switch (tag) {
        case TAG_ANY_STRING:
          attr.value = r.string(end);
          attr.type = 'string';
          break;
        case TAG_ANY_BOOL:
          attr.value = r.bool(end) ? 'true' : 'false';
          attr.type = 'bool';
          break;
        case TAG_ANY_INT:
          r.varint64(end);
          attr.value = int64Text(r.lo, r.hi);
          attr.type = 'int';
          break;
        case TAG_ANY_DOUBLE:
          attr.value = String(r.double(end));
          attr.type = 'double';
          break;
        case TAG_ANY_ARRAY:
          attr.value = arrayJson(r, r.lengthDelimited(end), 1);
          attr.type = 'array';
          break;
        case TAG_ANY_KVLIST:
          attr.value = kvlistJson(r, r.lengthDelimited(end), 1);
          attr.type = 'kvlist';
          break;
        case TAG_ANY_BYTES: {
          const e = r.lengthDelimited(end);
          attr.value = r.buf.toString('base64', r.pos, e);
          attr.type = 'bytes';
          r.pos = e;
          break;
        }
        default:
          r.skipUnexpected(tag, ANY_VALUE_WIRE_TYPES, end);
      }
    }
  } catch (err) {
    rethrowWithin(err, ANY_VALUE_FIELDS[tag >>> 3] ?? '');
  }
}

/** A nested AnyValue as JSON text. */
function anyValueJson(r: ProtoReader, end: number, depth: number): string {
  let json = 'null';
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      switch (field) {
        case ANY_STRING:
          r.expect(WIRE_LEN);
          json = JSON.stringify(r.string(end));
          break;
        case ANY_BOOL:
          r.expect(WIRE_VARINT);
          json = r.bool(end) ? 'true' : 'false';
          break;
        case ANY_INT:
          r.expect(WIRE_VARINT);
          r.varint64(end);
          json = int64Json(r.lo, r.hi);
          break;
        case ANY_DOUBLE:
          r.expect(WIRE_FIXED64);
          json = doubleJson(r.double(end));
          break;
        case ANY_ARRAY: {
          r.expect(WIRE_LEN);
          const e = r.lengthDelimited(end);
          json = arrayJson(r, e, depth + 1);
          break;
        }
        case ANY_KVLIST: {
          r.expect(WIRE_LEN);
          const e = r.lengthDelimited(end);
          json = kvlistJson(r, e, depth + 1);
          break;
        }
        case ANY_BYTES: {
          r.expect(WIRE_LEN);
          const e = r.lengthDelimited(end);
          json = `"${r.buf.toString('base64', r.pos, e)}"`;
          r.pos = e;
          break;
        }
        default:
          r.skip(end);
      }
    }
  } catch (err) {
    rethrowWithin(err, ANY_VALUE_FIELDS[field] ?? '');
  }
  return json;
}

function tooDeep(): OtlpMalformedError {
  return new OtlpMalformedError(`arrays and kvlists nest deeper than ${MAX_ANY_VALUE_DEPTH} levels`);
}

/** ArrayValue { repeated AnyValue values = 1 } as a JSON array. */
function arrayJson(r: ProtoReader, end: number, depth: number): string {
  if (depth > MAX_ANY_VALUE_DEPTH) throw tooDeep();
  let json = '[';
  let n = 0;
  try {
    while (r.pos < end) {
      const field = r.tag(end);
      if (field === 1) {
        r.expect(WIRE_LEN);
        const e = r.lengthDelimited(end);
        json += n === 0 ? anyValueJson(r, e, depth) : `,${anyValueJson(r, e, depth)}`;
        n++;
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, `values[${n}]`);
  }
  return `${json}]`;
}

/** KeyValueList { repeated KeyValue values = 1 } as a JSON object. */
function kvlistJson(r: ProtoReader, end: number, depth: number): string {
  if (depth > MAX_ANY_VALUE_DEPTH) throw tooDeep();
  const entries = new Map<string, string>();
  let n = 0;
  try {
    while (r.pos < end) {
      const field = r.tag(end);
      if (field === 1) {
        r.expect(WIRE_LEN);
        const e = r.lengthDelimited(end);
        keyValueJsonInto(r, e, depth, entries);
        n++;
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, `values[${n}]`);
  }
  return objectJson(entries);
}

function keyValueJsonInto(r: ProtoReader, end: number, depth: number, entries: Map<string, string>): void {
  let key = '';
  let json = 'null';
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 1) {
        r.expect(WIRE_LEN);
        key = r.string(end);
      } else if (field === 2) {
        r.expect(WIRE_LEN);
        const e = r.lengthDelimited(end);
        json = anyValueJson(r, e, depth);
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, field === 1 ? 'key' : field === 2 ? 'value' : '');
  }
  entries.set(key, json);
}

function objectJson(entries: Map<string, string>): string {
  let json = '{';
  let first = true;
  for (const [key, value] of entries) {
    json += first ? `${JSON.stringify(key)}:${value}` : `,${JSON.stringify(key)}:${value}`;
    first = false;
  }
  return `${json}}`;
}

// ---------------------------------------------------------------------------
// OTLP/JSON

type AnyValueKind = 'string' | 'bool' | 'int' | 'double' | 'array' | 'kvlist' | 'bytes';

/** AnyValue member names, lowerCamelCase and proto snake_case. */
const JSON_ANY_VALUE_KINDS: ReadonlyMap<string, AnyValueKind> = new Map<string, AnyValueKind>([
  ['stringValue', 'string'],
  ['string_value', 'string'],
  ['boolValue', 'bool'],
  ['bool_value', 'bool'],
  ['intValue', 'int'],
  ['int_value', 'int'],
  ['doubleValue', 'double'],
  ['double_value', 'double'],
  ['arrayValue', 'array'],
  ['array_value', 'array'],
  ['kvlistValue', 'kvlist'],
  ['kvlist_value', 'kvlist'],
  ['bytesValue', 'bytes'],
  ['bytes_value', 'bytes'],
]);

const BASE64_TEXT = /^[A-Za-z0-9+/_-]*={0,2}$/;

/** A JSON `bytes` value (standard or URL-safe base64, padding optional), in standard base64. */
function base64FromJson(value: unknown, path: string): string {
  if (typeof value !== 'string') {
    throw new OtlpMalformedError(`expected a base64 string, got ${jsonTypeName(value)}`, path);
  }
  if (!BASE64_TEXT.test(value)) throw new OtlpMalformedError('not valid base64', path);
  return Buffer.from(value, 'base64').toString('base64');
}

/** Proto field names of the AnyValue members, for error paths (the same whichever spelling was sent). */
const ANY_VALUE_FIELD_BY_KIND: Readonly<Record<AnyValueKind, string>> = {
  string: 'string_value',
  bool: 'bool_value',
  int: 'int_value',
  double: 'double_value',
  array: 'array_value',
  kvlist: 'kvlist_value',
  bytes: 'bytes_value',
};

/** The set member of a JSON AnyValue (the last one when several are, as in protobuf); undefined when empty. */
function anyValueMember(o: JsonObject): { kind: AnyValueKind; name: string; value: unknown } | undefined {
  let found: { kind: AnyValueKind; name: string; value: unknown } | undefined;
  for (const key of Object.keys(o)) {
    const kind = JSON_ANY_VALUE_KINDS.get(key);
    const value = o[key];
    if (kind !== undefined && value !== null && value !== undefined) {
      found = { kind, name: ANY_VALUE_FIELD_BY_KIND[kind], value };
    }
  }
  return found;
}

/** A repeated KeyValue member in OTLP/JSON (`attributes`, `filteredAttributes`), deduped. */
export function attributesFromJson(value: unknown, path: string): Attribute[] {
  const list = optArray(value, path);
  const out: Attribute[] = [];
  for (let i = 0; i < list.length; i++) {
    try {
      out.push(keyValueFromJson(list[i]));
    } catch (err) {
      rethrowWithin(err, `${path}[${i}]`);
    }
  }
  return dedupeAttributes(out);
}

function keyValueFromJson(item: unknown): Attribute {
  const o = asObject(item, '');
  const attr: Attribute = { key: optString(member(o, 'key'), 'key'), value: '', type: 'string' };
  const value = member(o, 'value');
  if (value === undefined) return attr;
  try {
    const m = anyValueMember(asObject(value, ''));
    if (m === undefined) return attr;
    attr.type = m.kind;
    switch (m.kind) {
      case 'string':
        attr.value = optString(m.value, m.name);
        break;
      case 'bool':
        if (typeof m.value !== 'boolean') throw new OtlpMalformedError(`expected a boolean, got ${jsonTypeName(m.value)}`, m.name);
        attr.value = m.value ? 'true' : 'false';
        break;
      case 'int':
        attr.value = int64(m.value, m.name).toString();
        break;
      case 'double':
        attr.value = String(double(m.value, m.name));
        break;
      case 'bytes':
        attr.value = base64FromJson(m.value, m.name);
        break;
      case 'array':
        attr.value = arrayJsonFromJson(m.value, m.name, 1);
        break;
      case 'kvlist':
        attr.value = kvlistJsonFromJson(m.value, m.name, 1);
        break;
    }
  } catch (err) {
    rethrowWithin(err, 'value');
  }
  return attr;
}

function anyValueJsonFromJson(value: unknown, depth: number): string {
  const m = anyValueMember(asObject(value, ''));
  if (m === undefined) return 'null';
  switch (m.kind) {
    case 'string':
      return JSON.stringify(optString(m.value, m.name));
    case 'bool':
      if (typeof m.value !== 'boolean') throw new OtlpMalformedError(`expected a boolean, got ${jsonTypeName(m.value)}`, m.name);
      return m.value ? 'true' : 'false';
    case 'int':
      return bigintJson(int64(m.value, m.name));
    case 'double':
      return doubleJson(double(m.value, m.name));
    case 'bytes':
      return `"${base64FromJson(m.value, m.name)}"`;
    case 'array':
      return arrayJsonFromJson(m.value, m.name, depth + 1);
    case 'kvlist':
      return kvlistJsonFromJson(m.value, m.name, depth + 1);
  }
}

function arrayJsonFromJson(value: unknown, path: string, depth: number): string {
  if (depth > MAX_ANY_VALUE_DEPTH) throw tooDeep().within(path);
  const o = asObject(value, path);
  const list = optArray(member(o, 'values'), `${path}.values`);
  let json = '[';
  for (let i = 0; i < list.length; i++) {
    try {
      json += i === 0 ? anyValueJsonFromJson(list[i], depth) : `,${anyValueJsonFromJson(list[i], depth)}`;
    } catch (err) {
      rethrowWithin(err, `${path}.values[${i}]`);
    }
  }
  return `${json}]`;
}

function kvlistJsonFromJson(value: unknown, path: string, depth: number): string {
  if (depth > MAX_ANY_VALUE_DEPTH) throw tooDeep().within(path);
  const o = asObject(value, path);
  const list = optArray(member(o, 'values'), `${path}.values`);
  const entries = new Map<string, string>();
  for (let i = 0; i < list.length; i++) {
    try {
      const kv = asObject(list[i], '');
      const key = optString(member(kv, 'key'), 'key');
      const v = member(kv, 'value');
      let json = 'null';
      if (v !== undefined) {
        try {
          json = anyValueJsonFromJson(v, depth);
        } catch (err) {
          rethrowWithin(err, 'value');
        }
      }
      entries.set(key, json);
    } catch (err) {
      rethrowWithin(err, `${path}.values[${i}]`);
    }
  }
  return objectJson(entries);
}
