/**
 * Hand-made OTLP trace requests for the decoder tests, written with our
 * ProtoWriter so that tests can put any byte anywhere (wrong wire types,
 * short ids, lengths that run past the end).
 */
import { ProtoWriter, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from './wire.js';

export const TRACE_ID = Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex');
export const SPAN_ID = Buffer.from('00f067aa0ba902b7', 'hex');
export const PARENT_ID = Buffer.from('53995c3f42cd8ad8', 'hex');

export interface SpanSpec {
  traceId?: Uint8Array;
  spanId?: Uint8Array;
  parentSpanId?: Uint8Array;
  name?: string;
  kind?: number;
  start?: bigint;
  end?: bigint;
  /** Written after the fields above, inside the span. */
  extra?: (w: ProtoWriter) => void;
}

/** Writes the fields of one Span message (no tag, no length). */
export function writeSpanFields(w: ProtoWriter, spec: SpanSpec): void {
  if (spec.traceId !== undefined) w.tag(1, WIRE_LEN).bytes(spec.traceId);
  if (spec.spanId !== undefined) w.tag(2, WIRE_LEN).bytes(spec.spanId);
  if (spec.parentSpanId !== undefined) w.tag(4, WIRE_LEN).bytes(spec.parentSpanId);
  w.tag(5, WIRE_LEN).string(spec.name ?? 'op');
  if (spec.kind !== undefined) w.tag(6, WIRE_VARINT).varint(spec.kind);
  w.tag(7, WIRE_FIXED64).fixed64(spec.start ?? 1_000n);
  w.tag(8, WIRE_FIXED64).fixed64(spec.end ?? 2_000n);
  w.tag(16, WIRE_FIXED32).fixed32(1);
  spec.extra?.(w);
}

/** A valid span, with overrides. */
export function span(spec: SpanSpec = {}): SpanSpec {
  return { traceId: TRACE_ID, spanId: SPAN_ID, ...spec };
}

/** One ResourceSpans (service.name `svc`) with one ScopeSpans holding `spans`. */
export function tracesRequest(spans: SpanSpec[]): Uint8Array {
  const w = new ProtoWriter();
  w.fork(); // ResourceSpans
  w.fork(); // Resource
  w.fork().tag(1, WIRE_LEN).string('service.name').fork().tag(1, WIRE_LEN).string('svc').join(2).join(1);
  w.join(1);
  w.fork(); // ScopeSpans
  w.fork().tag(1, WIRE_LEN).string('scope').join(1);
  for (const s of spans) {
    w.fork();
    writeSpanFields(w, s);
    w.join(2);
  }
  w.join(2);
  w.join(1);
  return w.finish();
}

/** A KeyValue with a string value, as the fields of a KeyValue message. */
export function writeStringKeyValue(w: ProtoWriter, field: number, key: string, value: string): void {
  w.fork().tag(1, WIRE_LEN).string(key).fork().tag(1, WIRE_LEN).string(value).join(2).join(field);
}
