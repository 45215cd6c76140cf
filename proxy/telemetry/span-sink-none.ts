/**
 * The sink when no collector is configured. Telemetry.tracing is then false
 * and the protocol paths build no spans; should one arrive anyway it is
 * counted as not sent rather than pretending it was delivered.
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
