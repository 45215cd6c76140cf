/**
 * A SpanStore that keeps the records as they are, for sinks that need the
 * objects at export time (the OpenTelemetry SDK sink builds its ReadableSpan
 * views from them). A fixed-size ring: no growth, no shifting; slots are
 * cleared when taken so the records can be collected.
 */
import type { ProxySpanRecord } from './span-record.js';
import { STORED, STORE_FULL } from './span-sink-batcher.js';
import type { SpanStore, StoreOutcome } from './span-sink-batcher.js';

export class RecordQueue implements SpanStore<ProxySpanRecord[]> {
  private readonly ring: Array<ProxySpanRecord | undefined>;
  private head = 0;
  size = 0;

  constructor(
    maxQueueSize: number,
    private readonly batchSize: number,
  ) {
    this.ring = new Array<ProxySpanRecord | undefined>(maxQueueSize).fill(undefined);
  }

  add(span: ProxySpanRecord): StoreOutcome {
    const capacity = this.ring.length;
    if (this.size === capacity) return STORE_FULL;
    let tail = this.head + this.size;
    if (tail >= capacity) tail -= capacity;
    this.ring[tail] = span;
    this.size++;
    return STORED;
  }

  take(): ProxySpanRecord[] {
    const n = Math.min(this.batchSize, this.size);
    const out = new Array<ProxySpanRecord>(n);
    const ring = this.ring;
    const capacity = ring.length;
    let h = this.head;
    for (let i = 0; i < n; i++) {
      out[i] = ring[h] as ProxySpanRecord;
      ring[h] = undefined;
      h++;
      if (h === capacity) h = 0;
    }
    this.head = h;
    this.size -= n;
    return out;
  }

  countOf(batch: ProxySpanRecord[]): number {
    return batch.length;
  }

  clear(): void {
    this.ring.fill(undefined);
    this.size = 0;
    this.head = 0;
  }
}
