/**
 * What a protocol path hands to telemetry when a span ends. The hot path fills
 * a plain record (no SDK objects per request); a SpanSink turns records into
 * OTLP. Times are epoch milliseconds with a sub-millisecond fraction (from
 * `performance.timeOrigin + performance.now()`), so durations keep
 * microsecond resolution without bigint arithmetic per request.
 */
export type ProxySpanKind = 'server' | 'client';
export type ProxySpanStatus = 'unset' | 'ok' | 'error';
export type AttributeValue = string | number | boolean;

export interface ProxySpanRecord {
  traceId: string; // 32 lowercase hex
  spanId: string; // 16 lowercase hex
  parentSpanId: string; // '' for a root span
  traceState: string; // W3C tracestate, kept as received
  sampled: boolean;
  name: string;
  kind: ProxySpanKind;
  startTimeMs: number;
  endTimeMs: number;
  status: ProxySpanStatus;
  statusMessage: string;
  attributes: Record<string, AttributeValue>;
  /**
   * Optional: hands over exactly what `attributes` holds, in the same order,
   * without building that object. A sink that encodes spans (the lean one)
   * calls it when present, so the request path never allocates the
   * attribute map; `attributes` is then built only if someone reads it.
   */
  writeAttributes?(writer: SpanAttributeWriter): void;
}

/** Receives a span's attributes one at a time (see ProxySpanRecord.writeAttributes). */
export interface SpanAttributeWriter {
  string(key: string, value: string): void;
  /** A safe integer. */
  int(key: string, value: number): void;
  bool(key: string, value: boolean): void;
}

/**
 * Takes finished spans. `record` never blocks and never throws: when its
 * bounded queue is full it drops the span and counts it.
 */
export interface SpanSink {
  record(span: ProxySpanRecord): void;
  /** Spans dropped because the queue was full or the export failed. */
  readonly droppedSpans: number;
  forceFlush(): Promise<void>;
  /** Safe to call twice. */
  shutdown(): Promise<void>;
}

/** Epoch milliseconds with a sub-millisecond fraction. */
export function nowMs(): number {
  return performance.timeOrigin + performance.now();
}
