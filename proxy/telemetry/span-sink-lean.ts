/**
 * The lean SpanSink: the same bounded queue as the SDK sink
 * (span-sink-batcher.ts), but each span is encoded to OTLP protobuf when it
 * is recorded (span-store-encoded.ts), and a batch goes to the collector's
 * TraceService/Export as those bytes behind a prebuilt resource and scope,
 * over node:http2 (otlp-grpc-client.ts). No ReadableSpan objects, no SDK
 * serializer, no grpc-js, no retrying transport: a failed batch is counted
 * and the next one goes.
 */
import { GrpcUnaryClient } from './otlp-grpc-client.js';
import type { SpanSink } from './span-record.js';
import { BatchingSpanSink } from './span-sink-batcher.js';
import type { SpanBatchExporter, SpanSinkStats } from './span-sink-batcher.js';
import { encodeResource, encodeScope, exportRequestHead } from './span-sink-lean-encoder.js';
import { queueOptionsOf } from './span-sink-options.js';
import type { SpanSinkOptions } from './span-sink-options.js';
import { PROXY_SCOPE_NAME, parseCollectorUrl, proxyResourceAttributes } from './span-sink-resource.js';
import { EncodedSpanQueue } from './span-store-encoded.js';
import type { EncodedSpans } from './span-store-encoded.js';

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

class LeanTraceExporter implements SpanBatchExporter<EncodedSpans> {
  constructor(
    private readonly client: GrpcUnaryClient,
    private readonly resource: Buffer,
    private readonly scope: Buffer,
  ) {}

  async export(batch: EncodedSpans, timeoutMs: number): Promise<void> {
    const head = exportRequestHead(this.resource, this.scope, batch.bytes.length);
    // The answer is ExportTraceServiceResponse; a partial success is still a success (OTLP: do not retry).
    await this.client.call(TRACE_EXPORT_PATH, [head, batch.bytes], timeoutMs);
  }

  shutdown(): Promise<void> {
    return this.client.close();
  }
}

/** The lean SpanSink: spans encoded as they are recorded, sent over node:http2, behind the bounded, counting queue. */
export function createLeanSpanSink(options: SpanSinkOptions): SpanSink & { readonly stats: SpanSinkStats } {
  const queue = queueOptionsOf(options);
  const collector = parseCollectorUrl(options.collectorUrl);
  const resource = encodeResource(proxyResourceAttributes(options.identity, options.resourceAttributes));
  const exporter = new LeanTraceExporter(new GrpcUnaryClient({ url: collector.url }), resource, encodeScope(PROXY_SCOPE_NAME));
  return new BatchingSpanSink(exporter, queue, new EncodedSpanQueue(queue.maxQueueSize, queue.maxExportBatchSize));
}
