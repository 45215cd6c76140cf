/**
 * ProxySpanRecord → OTLP Span protobuf bytes, and the ExportTraceServiceRequest
 * around a run of them, without the SDK's intermediate objects (field
 * numbers: /work/shared/OTLP.md, opentelemetry-proto trace.proto).
 *
 * The lean sink encodes each span when it is recorded (SpanEncoder.write),
 * so its queue holds bytes, not object graphs; a batch is then one buffer of
 * `Span` fields that exportRequestHead() wraps in the resource and scope,
 * which are encoded once per sink.
 *
 * Attribute keys are constants: each key's KeyValue.key field (tag, length,
 * UTF-8) is encoded once and copied in. A record with writeAttributes (the
 * HTTP path's) hands its attributes over one by one without building the
 * attributes object, and those equal to the previous span's are copied from
 * its bytes (span-attribute-encoder.ts); any other record's `attributes` are
 * walked.
 */
import { LeanProtoWriter, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, tag, varintSize } from './lean-proto-writer.js';
import { SpanAttributeEncoder } from './span-attribute-encoder.js';
import type { AttributeFieldWriter } from './span-attribute-encoder.js';
import type { AttributeValue, ProxySpanRecord } from './span-record.js';
import type { ResourceAttributeValue } from './span-sink-resource.js';

// Every tag below is under 128 (one byte) except T_SPAN_FLAGS.
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

/** Keys cached at most; past it a key is encoded each time (keys are constants in practice, so this is a guard). */
const MAX_CACHED_KEYS = 512;

/** The KeyValue.key field (tag, length, UTF-8) of each attribute key seen. */
class KeyFieldCache {
  private readonly fields = new Map<string, Buffer>();

  get(key: string): Buffer | undefined {
    const cached = this.fields.get(key);
    if (cached !== undefined || this.fields.size >= MAX_CACHED_KEYS) return cached;
    const utf8 = Buffer.from(key, 'utf8');
    const field = Buffer.allocUnsafe(1 + varintSize(utf8.length) + utf8.length);
    const w = new LeanProtoWriter(field.length);
    w.byte(T_KV_KEY);
    w.varint(utf8.length);
    w.raw(utf8);
    w.buf.copy(field, 0, 0, w.pos);
    this.fields.set(key, field);
    return field;
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

function writeKey(w: LeanProtoWriter, keys: KeyFieldCache, key: string): void {
  const field = keys.get(key);
  if (field !== undefined) {
    w.raw(field);
  } else {
    w.byte(T_KV_KEY);
    w.string(key);
  }
}

function writeKeyValue(w: LeanProtoWriter, keys: KeyFieldCache, fieldTag: number, key: string, value: AttributeValue | ResourceAttributeValue): void {
  w.byte(fieldTag);
  const kv = w.begin();
  writeKey(w, keys, key);
  w.byte(T_KV_VALUE);
  const any = w.begin();
  writeAnyValue(w, value);
  w.end(any);
  w.end(kv);
}

/**
 * Writes `Span` fields (tag 2 of ScopeSpans, each a whole Span message) into
 * one writer, span after span.
 */
export class SpanEncoder implements AttributeFieldWriter {
  private readonly keys = new KeyFieldCache();
  /** Where the open attribute's KeyValue and AnyValue lengths go (openAttribute → closeAttribute). */
  private kvAt = 0;
  private anyAt = 0;
  private readonly attributes: SpanAttributeEncoder;

  constructor(readonly w: LeanProtoWriter) {
    this.attributes = new SpanAttributeEncoder(w, this);
  }

  /** Appends one span. Throws only on a bug (the caller rewinds `w.pos`). */
  write(span: ProxySpanRecord): void {
    const w = this.w;
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
    if (span.writeAttributes !== undefined) {
      this.attributes.begin();
      span.writeAttributes(this.attributes);
      this.attributes.end();
    } else {
      const attributes = span.attributes;
      for (const key in attributes) writeKeyValue(w, this.keys, T_SPAN_ATTRIBUTE, key, attributes[key] as AttributeValue);
    }
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

  // AttributeFieldWriter: one whole KeyValue field, for an attribute that did not repeat.

  stringField(key: string, value: string): void {
    this.openAttribute(key, T_ANY_STRING);
    this.w.string(value);
    this.closeAttribute();
  }

  intField(key: string, value: number): void {
    this.openAttribute(key, T_ANY_INT);
    this.w.int64(value);
    this.closeAttribute();
  }

  boolField(key: string, value: boolean): void {
    this.openAttribute(key, T_ANY_BOOL);
    this.w.byte(value ? 1 : 0);
    this.closeAttribute();
  }

  /** The KeyValue and AnyValue headers up to the value's own tag; closeAttribute() ends both. */
  private openAttribute(key: string, anyTag: number): void {
    const w = this.w;
    w.byte(T_SPAN_ATTRIBUTE);
    this.kvAt = w.begin();
    writeKey(w, this.keys, key);
    w.byte(T_KV_VALUE);
    this.anyAt = w.begin();
    w.byte(anyTag);
  }

  private closeAttribute(): void {
    this.w.end(this.anyAt);
    this.w.end(this.kvAt);
  }
}

/** The Resource message bytes (without its field tag), encoded once per sink. */
export function encodeResource(attributes: Readonly<Record<string, ResourceAttributeValue>>): Buffer {
  const w = new LeanProtoWriter(1024);
  const keys = new KeyFieldCache();
  for (const key of Object.keys(attributes)) writeKeyValue(w, keys, T_RESOURCE_ATTRIBUTE, key, attributes[key] as ResourceAttributeValue);
  return w.finish();
}

/** The InstrumentationScope message bytes (without its field tag). */
export function encodeScope(name: string): Buffer {
  const w = new LeanProtoWriter(256);
  w.byte(T_SCOPE_NAME);
  w.string(name);
  return w.finish();
}

/**
 * The bytes that come before `spansLength` bytes of Span fields in an
 * ExportTraceServiceRequest { resource_spans: [{ resource, scope_spans: [{ scope, spans }] }] }:
 * head + spans is the whole message.
 */
export function exportRequestHead(resource: Buffer, scope: Buffer, spansLength: number): Buffer {
  const scopeSpansLength = 1 + varintSize(scope.length) + scope.length + spansLength;
  const resourceSpansLength = 1 + varintSize(resource.length) + resource.length + 1 + varintSize(scopeSpansLength) + scopeSpansLength;
  const w = new LeanProtoWriter(resource.length + scope.length + 32);
  w.byte(T_RESOURCE_SPANS);
  w.varint(resourceSpansLength);
  w.byte(T_RS_RESOURCE);
  w.varint(resource.length);
  w.raw(resource);
  w.byte(T_RS_SCOPE_SPANS);
  w.varint(scopeSpansLength);
  w.byte(T_SS_SCOPE);
  w.varint(scope.length);
  w.raw(scope);
  return w.finish();
}

/** A whole ExportTraceServiceRequest of `spans` (tests, and tools that hold records). */
export function encodeTraceRequest(resource: Buffer, scope: Buffer, spans: readonly ProxySpanRecord[]): Buffer {
  const encoder = new SpanEncoder(new LeanProtoWriter());
  for (let i = 0; i < spans.length; i++) encoder.write(spans[i] as ProxySpanRecord);
  const body = encoder.w.finish();
  return Buffer.concat([exportRequestHead(resource, scope, body.length), body]);
}
