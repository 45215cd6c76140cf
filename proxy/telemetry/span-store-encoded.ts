/**
 * A SpanStore that encodes each span into OTLP protobuf as it is recorded
 * (the lean sink). The record becomes garbage at once, in the young
 * generation, instead of waiting up to a second in the queue and being
 * promoted to the old one with its strings; the queue holds a few hundred
 * bytes per span. Spans go into one open batch buffer; a full batch is sealed
 * and waits for export.
 *
 * Bounded twice: at most maxQueueSize spans, and at most maxQueueBytes of
 * encoded spans (a span with a 60 KB URL must not let 8,192 of them hold
 * half a gigabyte).
 *
 * Sealing hands the open buffer itself to the batch (no copy) and the
 * encoder continues in a spare one; a delivered batch's buffer becomes a
 * spare again. Why: the request path now makes so little JS garbage that
 * V8 collects rarely, and a fresh buffer per batch (external memory, freed
 * only by a GC) piled up to tens of megabytes of RSS between collections.
 */
import { LeanProtoWriter } from './lean-proto-writer.js';
import type { ProxySpanRecord } from './span-record.js';
import { STORED, STORE_FAILED, STORE_FULL } from './span-sink-batcher.js';
import type { SpanStore, StoreOutcome } from './span-sink-batcher.js';
import { SpanEncoder } from './span-sink-lean-encoder.js';

/** A run of encoded `Span` fields (ScopeSpans field 2), ready to follow exportRequestHead(). */
export class EncodedSpans {
  constructor(
    /** The buffer the spans were encoded into; they fill its first `length` bytes. */
    readonly storage: Buffer,
    readonly length: number,
    readonly count: number,
  ) {}

  get bytes(): Buffer {
    return this.storage.subarray(0, this.length);
  }
}

export const DEFAULT_MAX_QUEUE_BYTES = 8 * 1024 * 1024;
const OPEN_BUFFER_BYTES = 64 * 1024;
/** A buffer grown past this by a batch of unusually large spans is not kept for reuse. */
const KEEP_BUFFER_BYTES = 1024 * 1024;
/** Spare buffers kept: one export is in flight at a time, so two cover the steady state. */
const MAX_SPARE_BUFFERS = 2;

export class EncodedSpanQueue implements SpanStore<EncodedSpans> {
  /** Sealed batches, oldest first: a handful at most (maxQueueSize / batch size). */
  private readonly sealed: EncodedSpans[] = [];
  private sealedBytes = 0;
  private readonly spare: Buffer[] = [];
  private readonly encoder: SpanEncoder;
  private openCount = 0;
  size = 0;

  constructor(
    private readonly maxQueueSize: number,
    private readonly batchSize: number,
    private readonly maxQueueBytes: number = DEFAULT_MAX_QUEUE_BYTES,
  ) {
    this.encoder = new SpanEncoder(new LeanProtoWriter(OPEN_BUFFER_BYTES));
  }

  /** Encoded bytes held now (sealed batches and the open one). */
  get bytes(): number {
    return this.sealedBytes + this.encoder.w.pos;
  }

  add(span: ProxySpanRecord): StoreOutcome {
    const w = this.encoder.w;
    if (this.size >= this.maxQueueSize || this.sealedBytes + w.pos >= this.maxQueueBytes) return STORE_FULL;
    const start = w.pos;
    try {
      this.encoder.write(span);
    } catch {
      w.pos = start;
      return STORE_FAILED;
    }
    if (this.sealedBytes + w.pos > this.maxQueueBytes) {
      w.pos = start; // this one span would pass the byte bound
      return STORE_FULL;
    }
    this.size++;
    this.openCount++;
    if (this.openCount >= this.batchSize) this.seal();
    return STORED;
  }

  take(): EncodedSpans {
    if (this.sealed.length === 0) this.seal();
    const batch = this.sealed.shift() as EncodedSpans;
    this.sealedBytes -= batch.length;
    this.size -= batch.count;
    return batch;
  }

  countOf(batch: EncodedSpans): number {
    return batch.count;
  }

  release(batch: EncodedSpans): void {
    if (this.spare.length < MAX_SPARE_BUFFERS && batch.storage.length <= KEEP_BUFFER_BYTES) this.spare.push(batch.storage);
  }

  clear(): void {
    this.sealed.length = 0;
    this.sealedBytes = 0;
    this.encoder.w.reset();
    this.openCount = 0;
    this.size = 0;
  }

  private seal(): void {
    const w = this.encoder.w;
    this.sealed.push(new EncodedSpans(w.buf, w.pos, this.openCount));
    this.sealedBytes += w.pos;
    w.buf = this.spare.pop() ?? Buffer.allocUnsafe(OPEN_BUFFER_BYTES);
    w.reset();
    this.openCount = 0;
  }
}
