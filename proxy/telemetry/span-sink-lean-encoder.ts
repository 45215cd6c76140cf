/**
 * ProxySpanRecord batches → OTLP ExportTraceServiceRequest protobuf bytes,
 * without the SDK's intermediate objects (field numbers: /work/shared/OTLP.md).
 *
 * Why not the collector's ProtoWriter: it copies a nested message's bytes on
 * every join() and allocates a Buffer per string, which is right for crafting
 * test input and responses but costs three copies of a batch here. This
 * writer reserves one length byte per nested message and, in the rare case a
 * message is 128 bytes or longer, slides it right in place (copyWithin); strings
 * are written straight into the buffer. The resource and scope are encoded
 * once per sink and copied in per batch.
 */
import type { AttributeValue, ProxySpanRecord } from './span-record.js';
import type { ResourceAttributeValue } from './span-sink-resource.js';

const WIRE_VARINT = 0;
const WIRE_FIXED64 = 1;
const WIRE_LEN = 2;
const WIRE_FIXED32 = 5;

function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

// Every tag we write is below 128: one byte each.
const T_RESOURCE_SPANS = tag(1, WIRE_LEN);
const T_RS_RESOURCE = tag(1, WIRE_LEN);
const T_RS_SCOPE_SPANS = tag(2, WIRE_LEN);
const T_RESOURCE_ATTRIBUTE = tag(1, WIRE_LEN);
const T_SS_SCOPE = tag(1, WIRE_LEN);
const T_SS_SPAN = tag(2, WIRE_LEN);
const T_SCOPE_NAME = tag(1, WIRE_LEN);
const T_SPAN_TRACE_ID = tag(1, WIRE_LEN);
const T_SPAN_SPAN_ID = tag(2, WIRE_LEN);
const T_SPAN_TRACE_STATE = tag(3, WIRE_LEN);
const T_SPAN_PARENT = tag(4, WIRE_LEN);
const T_SPAN_NAME = tag(5, WIRE_LEN);
const T_SPAN_KIND = tag(6, WIRE_VARINT);
const T_SPAN_START = tag(7, WIRE_FIXED64);
const T_SPAN_END = tag(8, WIRE_FIXED64);
const T_SPAN_ATTRIBUTE = tag(9, WIRE_LEN);
const T_SPAN_STATUS = tag(15, WIRE_LEN);
const T_SPAN_FLAGS = tag(16, WIRE_FIXED32); // 130: two bytes
const T_STATUS_MESSAGE = tag(2, WIRE_LEN);
const T_STATUS_CODE = tag(3, WIRE_VARINT);
const T_KV_KEY = tag(1, WIRE_LEN);
const T_KV_VALUE = tag(2, WIRE_LEN);
const T_ANY_STRING = tag(1, WIRE_LEN);
const T_ANY_BOOL = tag(2, WIRE_VARINT);
const T_ANY_INT = tag(3, WIRE_VARINT);
const T_ANY_DOUBLE = tag(4, WIRE_FIXED64);

const KIND_SERVER = 2;
const KIND_CLIENT = 3;
const STATUS_OK = 1;
const STATUS_ERROR = 2;
/** Span.flags: low byte W3C flags, then "has is-remote" and "is remote" (OTLP 1.1). */
const FLAG_SAMPLED = 0x01;
const FLAG_HAS_IS_REMOTE = 0x100;
const FLAG_IS_REMOTE = 0x200;

const TWO_POW_32 = 4294967296;
/** A string this short is at most 126 UTF-8 bytes: its length fits one varint byte. */
const SHORT_STRING_CHARS = 42;

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** A growable byte buffer with protobuf primitives. Reused across batches by one sink. */
export class LeanProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialSize = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(bytes: number): void {
    const needed = this.pos + bytes;
    if (needed <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(value: number): void {
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  /** Non-negative integers up to 2^53. */
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    let v = value;
    while (v >= 0x80) {
      buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[this.pos++] = v;
  }

  /** int64 varint: negatives as 64-bit two's complement (ten bytes), as protobuf does. */
  int64(value: number): void {
    if (value >= 0) {
      this.varint(value);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  fixed32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** Unix nanoseconds of an epoch-microsecond integer (< 2^53), as fixed64 without bigint. */
  fixed64NanosFromMicros(micros: number): void {
    this.ensure(8);
    const microsHigh = Math.floor(micros / TWO_POW_32);
    const lowNanos = (micros >>> 0) * 1000; // < 2^42: exact
    const carry = Math.floor(lowNanos / TWO_POW_32);
    this.buf.writeUInt32LE(lowNanos >>> 0, this.pos);
    this.buf.writeUInt32LE((microsHigh * 1000 + carry) >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /**
   * Length-prefixed UTF-8. Short ASCII strings (attribute keys, methods,
   * service names: most of a span) are copied by a JS loop, which for a few
   * dozen bytes is several times cheaper than a call into Buffer.write.
   */
  string(value: string): void {
    const len = value.length;
    if (len <= SHORT_STRING_CHARS) {
      this.ensure(1 + len * 3);
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      const n = i === len ? len : this.buf.write(value, start, 'utf8');
      buf[this.pos] = n;
      this.pos = start + n;
      return;
    }
    const n = Buffer.byteLength(value, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  /** Length-prefixed bytes of a lowercase hex id. */
  hexBytes(hex: string): void {
    const len = hex.length;
    if ((len === 32 || len === 16) && this.hexLoop(hex, len)) return;
    this.ensure(1 + (hex.length >>> 1));
    // The length is what was written: a malformed id stays malformed (and the collector says so) instead of corrupting the message.
    const n = this.buf.write(hex, this.pos + 1, 'hex');
    this.buf[this.pos] = n;
    this.pos += 1 + n;
  }

  /** The usual 8- and 16-byte ids without a call into Buffer.write; false (nothing written) if not lowercase hex. */
  private hexLoop(hex: string, len: number): boolean {
    this.ensure(1 + (len >>> 1));
    const buf = this.buf;
    const start = this.pos + 1;
    for (let i = 0, o = start; i < len; i += 2, o++) {
      const hi = hexDigit(hex.charCodeAt(i));
      const lo = hexDigit(hex.charCodeAt(i + 1));
      if (hi < 0 || lo < 0) return false;
      buf[o] = (hi << 4) | lo;
    }
    buf[this.pos] = len >>> 1;
    this.pos = start + (len >>> 1);
    return true;
  }

  raw(bytes: Uint8Array): void {
    this.ensure(bytes.length);
    this.buf.set(bytes, this.pos);
    this.pos += bytes.length;
  }

  /** Starts a nested message: reserves one length byte, returns where it is. */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Ends the message begun at `at`: writes its length, sliding the content if it needs more than one byte. */
  end(at: number): void {
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return;
    }
    const lenBytes = len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    const extra = lenBytes - 1;
    this.ensure(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    let v = len;
    let p = at;
    while (v >= 0x80) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  /** A copy of what was written: the scratch buffer is reused while the copy is still being sent. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}

function writeAnyValue(w: LeanProtoWriter, value: AttributeValue | ResourceAttributeValue): void {
  if (typeof value === 'string') {
    w.byte(T_ANY_STRING);
    w.string(value);
  } else if (typeof value === 'number') {
    if (Number.isSafeInteger(value)) {
      w.byte(T_ANY_INT);
      w.int64(value);
    } else {
      w.byte(T_ANY_DOUBLE);
      w.double(value);
    }
  } else {
    w.byte(T_ANY_BOOL);
    w.byte(value ? 1 : 0);
  }
}

function writeKeyValue(w: LeanProtoWriter, fieldTag: number, key: string, value: AttributeValue | ResourceAttributeValue): void {
  w.byte(fieldTag);
  const kv = w.begin();
  w.byte(T_KV_KEY);
  w.string(key);
  w.byte(T_KV_VALUE);
  const any = w.begin();
  writeAnyValue(w, value);
  w.end(any);
  w.end(kv);
}

/** The Resource message bytes (without its field tag), encoded once per sink. */
export function encodeResource(attributes: Readonly<Record<string, ResourceAttributeValue>>): Buffer {
  const w = new LeanProtoWriter(1024);
  for (const key of Object.keys(attributes)) writeKeyValue(w, T_RESOURCE_ATTRIBUTE, key, attributes[key] as ResourceAttributeValue);
  return w.finish();
}

/** The InstrumentationScope message bytes (without its field tag). */
export function encodeScope(name: string): Buffer {
  const w = new LeanProtoWriter(256);
  w.byte(T_SCOPE_NAME);
  w.string(name);
  return w.finish();
}

function writeSpan(w: LeanProtoWriter, span: ProxySpanRecord): void {
  w.byte(T_SS_SPAN);
  const at = w.begin();
  w.byte(T_SPAN_TRACE_ID);
  w.hexBytes(span.traceId);
  w.byte(T_SPAN_SPAN_ID);
  w.hexBytes(span.spanId);
  if (span.traceState !== '') {
    w.byte(T_SPAN_TRACE_STATE);
    w.string(span.traceState);
  }
  if (span.parentSpanId !== '') {
    w.byte(T_SPAN_PARENT);
    w.hexBytes(span.parentSpanId);
  }
  w.byte(T_SPAN_NAME);
  w.string(span.name);
  w.byte(T_SPAN_KIND);
  w.byte(span.kind === 'server' ? KIND_SERVER : KIND_CLIENT);
  // Whole microseconds: an epoch-ms double carries about 0.25 µs, finer digits are noise.
  w.byte(T_SPAN_START);
  w.fixed64NanosFromMicros(Math.round(span.startTimeMs * 1000));
  w.byte(T_SPAN_END);
  w.fixed64NanosFromMicros(Math.round(span.endTimeMs * 1000));
  const attributes = span.attributes;
  for (const key in attributes) writeKeyValue(w, T_SPAN_ATTRIBUTE, key, attributes[key] as AttributeValue);
  if (span.status !== 'unset') {
    w.byte(T_SPAN_STATUS);
    const status = w.begin();
    if (span.statusMessage !== '') {
      w.byte(T_STATUS_MESSAGE);
      w.string(span.statusMessage);
    }
    w.byte(T_STATUS_CODE);
    w.byte(span.status === 'error' ? STATUS_ERROR : STATUS_OK);
    w.end(status);
  }
  // Every parent the proxy knows came over the wire: it is remote.
  const flags = (span.sampled ? FLAG_SAMPLED : 0) | FLAG_HAS_IS_REMOTE | (span.parentSpanId !== '' ? FLAG_IS_REMOTE : 0);
  w.varint(T_SPAN_FLAGS);
  w.fixed32(flags);
  w.end(at);
}

/**
 * ExportTraceServiceRequest { resource_spans: [{ resource, scope_spans: [{ scope, spans }] }] }
 * for one batch; `resource` and `scope` come from encodeResource/encodeScope.
 */
export function encodeTraceRequest(w: LeanProtoWriter, resource: Buffer, scope: Buffer, spans: readonly ProxySpanRecord[]): Buffer {
  w.reset();
  w.byte(T_RESOURCE_SPANS);
  const rs = w.begin();
  w.byte(T_RS_RESOURCE);
  w.varint(resource.length);
  w.raw(resource);
  w.byte(T_RS_SCOPE_SPANS);
  const ss = w.begin();
  w.byte(T_SS_SCOPE);
  w.varint(scope.length);
  w.raw(scope);
  for (let i = 0; i < spans.length; i++) writeSpan(w, spans[i] as ProxySpanRecord);
  w.end(ss);
  w.end(rs);
  return w.finish();
}
