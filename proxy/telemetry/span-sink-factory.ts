/**
 * Picks the span sink: 'otel' (the OpenTelemetry SDK's OTLP/gRPC exporter,
 * loaded on its first export) or 'lean' (spans encoded as they are recorded,
 * sent over node:http2). Both take the same options and count drops the same
 * way; the benchmark decides the default.
 */
import { TracemeshError } from '../../src/lib/errors.js';
import type { SpanSink } from './span-record.js';
import type { SpanSinkStats } from './span-sink-batcher.js';
import { createLeanSpanSink } from './span-sink-lean.js';
import type { SpanSinkOptions } from './span-sink-options.js';
import { createOtelSpanSink } from './span-sink-otel.js';

export type SpanSinkKind = 'otel' | 'lean';
export const SPAN_SINK_KINDS: readonly SpanSinkKind[] = ['otel', 'lean'];

export type ExportingSpanSink = SpanSink & { readonly stats: SpanSinkStats };

export function createSpanSink(kind: SpanSinkKind, options: SpanSinkOptions): ExportingSpanSink {
  switch (kind) {
    case 'otel':
      return createOtelSpanSink(options);
    case 'lean':
      return createLeanSpanSink(options);
    default:
      throw new TracemeshError('TM_ERR_CONFIG_INVALID', `span sink "${String(kind)}" is not one of ${SPAN_SINK_KINDS.join(', ')}`);
  }
}
