/**
 * SpanSink over the OpenTelemetry SDK: our bounded, counting queue holds the
 * records, and the SDK's OTLP/gRPC trace exporter (span-sink-otel-exporter.ts)
 * sends them.
 *
 * The SDK is loaded on the first export, not when the sink is made: a proxy
 * that runs the lean sink never loads it (it is about 11 MB of resident
 * memory), and createTelemetry stays synchronous. The first batch's
 * deadline includes the load.
 */
import type { ProxySpanRecord, SpanSink } from './span-record.js';
import { BatchingSpanSink } from './span-sink-batcher.js';
import type { SpanBatchExporter, SpanSinkStats } from './span-sink-batcher.js';
import { queueOptionsOf } from './span-sink-options.js';
import type { SpanSinkOptions } from './span-sink-options.js';
import { parseCollectorUrl, proxyResourceAttributes } from './span-sink-resource.js';
import type { ResourceAttributeValue } from './span-sink-resource.js';
import { RecordQueue } from './span-store-records.js';

type RecordExporter = SpanBatchExporter<ProxySpanRecord[]>;

/** Loads the SDK exporter when the first batch leaves; a failed load fails that export (and the next ones), counted. */
class LazyOtelExporter implements RecordExporter {
  private loading: Promise<RecordExporter> | undefined = undefined;

  constructor(
    private readonly collectorUrl: string,
    private readonly timeoutMs: number,
    private readonly resourceAttributes: Record<string, ResourceAttributeValue>,
  ) {}

  async export(batch: ProxySpanRecord[], timeoutMs: number): Promise<void> {
    const exporter = await this.load();
    await exporter.export(batch, timeoutMs);
  }

  async shutdown(): Promise<void> {
    if (this.loading === undefined) return;
    const exporter = await this.loading;
    await exporter.shutdown();
  }

  private load(): Promise<RecordExporter> {
    this.loading ??= import('./span-sink-otel-exporter.js').then((m) =>
      m.createOtelBatchExporter(this.collectorUrl, this.timeoutMs, this.resourceAttributes),
    );
    return this.loading;
  }
}

/** SpanSink over the OpenTelemetry SDK's OTLP/gRPC exporter, behind our bounded, counting queue. */
export function createOtelSpanSink(options: SpanSinkOptions): SpanSink & { readonly stats: SpanSinkStats } {
  const queue = queueOptionsOf(options);
  const collector = parseCollectorUrl(options.collectorUrl);
  const exporter = new LazyOtelExporter(collector.url, queue.exportTimeoutMs, proxyResourceAttributes(options.identity, options.resourceAttributes));
  return new BatchingSpanSink(exporter, queue, new RecordQueue(queue.maxQueueSize, queue.maxExportBatchSize));
}
