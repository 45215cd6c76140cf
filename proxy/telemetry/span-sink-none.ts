/**
 * The sink when no collector is configured: spans go nowhere, and each one
 * is counted as not sent, so tracemesh_spans_dropped_total shows that tracing
 * is on while export is off rather than pretending they were delivered.
 */
import type { ProxySpanRecord, SpanSink } from './span-record.js';

export class NoExportSpanSink implements SpanSink {
  private dropped = 0;

  get droppedSpans(): number {
    return this.dropped;
  }

  record(_span: ProxySpanRecord): void {
    this.dropped++;
  }

  async forceFlush(): Promise<void> {}

  async shutdown(): Promise<void> {}
}
