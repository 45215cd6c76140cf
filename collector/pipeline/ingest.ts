import { backoffMs, sleep } from '../../src/lib/backoff.js';
import { errorMessage } from '../../src/lib/errors.js';
import type { MetricPoint, SpanRecord } from '../model.js';
import { RowBinaryWriter } from '../storage/row-binary.js';
import { edgeCallRow, metricRow, metricTable } from '../storage/rows.js';
import { writeSpanRowBinary } from '../storage/span-row-binary.js';
import type { MetricTable } from '../storage/rows.js';
import type { EdgeCall } from './edge-call.js';
import type { SpoolLoader } from './loader.js';
import { OpenSegment } from './segment.js';
import type { ServiceGraph } from './service-graph.js';
import type { Spool } from './spool.js';

export interface IngestOptions {
  /** A segment is sealed (written to the spool) when it is this old... */
  flushIntervalMs: number;
  /** ...or holds this many rows... */
  maxSegmentRows: number;
  /** ...or this many bytes. */
  maxSegmentBytes: number;
  /** Rows held in memory (open segment plus segments being written); past it senders are told to retry. */
  maxBufferedBytes: number;
  /** Bytes on disk in the spool; past it senders are told to retry (the store is behind or away). */
  spoolLimitBytes: number;
  /** Spans and points older than this are refused: the store would drop them at once. */
  retentionSeconds: number;
  log: (message: string) => void;
}

export const DEFAULT_INGEST_OPTIONS: IngestOptions = {
  flushIntervalMs: 1_000,
  maxSegmentRows: 200_000,
  maxSegmentBytes: 128 * 1024 * 1024,
  maxBufferedBytes: 256 * 1024 * 1024,
  spoolLimitBytes: 2 * 1024 * 1024 * 1024,
  retentionSeconds: 7 * 86_400,
  log: () => {},
};

export type AcceptOutcome =
  | { accepted: true }
  | { accepted: false; reason: string; retryAfterSeconds: number };

export interface IngestStats {
  spansAccepted: number;
  metricPointsAccepted: number;
  requestsRefused: number;
  segmentsSealed: number;
  segmentWriteFailures: number;
}

/**
 * From decoded records to spool segments. Accepting is synchronous and cheap
 * (rows are serialized into the open segment); the segment is sealed to disk
 * by time or size, and the loader takes it from there. Memory and disk are
 * both bounded: past either bound a request is refused as retryable, so a slow
 * or absent store turns into back-pressure on the senders, never into growth.
 */
export class IngestPipeline {
  readonly stats: IngestStats = { spansAccepted: 0, metricPointsAccepted: 0, requestsRefused: 0, segmentsSealed: 0, segmentWriteFailures: 0 };
  readonly #spool: Spool;
  readonly #loader: SpoolLoader;
  readonly #graph: ServiceGraph;
  readonly #options: IngestOptions;
  #open: OpenSegment;
  #sealingBytes = 0;
  #writes: Promise<void> = Promise.resolve();
  #timer: NodeJS.Timeout | undefined;
  #lastExpiryMs = 0;
  readonly #edgeScratch: EdgeCall[] = [];
  /** Reused for every request: rows are encoded here, then copied out at their exact size. */
  readonly #spanWriter = new RowBinaryWriter();

  constructor(spool: Spool, loader: SpoolLoader, graph: ServiceGraph, options: IngestOptions = DEFAULT_INGEST_OPTIONS) {
    this.#spool = spool;
    this.#loader = loader;
    this.#graph = graph;
    this.#options = options;
    this.#open = new OpenSegment(Date.now());
  }

  /** The oldest start time still within the retention. */
  retentionCutoffUnixNano(): bigint {
    return BigInt(Date.now() - this.#options.retentionSeconds * 1000) * 1_000_000n;
  }

  /** The retention as people write it (`7d`, `36h`), for messages. */
  get retentionText(): string {
    const seconds = this.#options.retentionSeconds;
    if (seconds % 86_400 === 0) return `${seconds / 86_400}d`;
    if (seconds % 3_600 === 0) return `${seconds / 3_600}h`;
    return `${seconds}s`;
  }

  get bufferedBytes(): number {
    return this.#open.bytes + this.#sealingBytes;
  }

  start(): void {
    this.#loader.start();
    const tick = Math.max(50, Math.floor(this.#options.flushIntervalMs / 4));
    this.#timer = setInterval(() => this.#onTick(), tick);
    this.#timer.unref();
  }

  acceptSpans(spans: readonly SpanRecord[]): AcceptOutcome {
    const refusal = this.#refusal();
    if (refusal !== undefined) return refusal;
    const writer = this.#spanWriter;
    const calls = this.#edgeScratch;
    calls.length = 0;
    for (const span of spans) {
      writeSpanRowBinary(writer, span);
      this.#graph.add(span, calls);
    }
    this.#open.add('otel_traces', writer.take(), spans.length);
    this.#addCalls(calls);
    this.stats.spansAccepted += spans.length;
    this.#sealIfFull();
    return { accepted: true };
  }

  acceptMetrics(points: readonly MetricPoint[]): AcceptOutcome {
    const refusal = this.#refusal();
    if (refusal !== undefined) return refusal;
    const chunks = new Map<MetricTable, { text: string; rows: number }>();
    for (const point of points) {
      const table = metricTable(point);
      const entry = chunks.get(table);
      if (entry === undefined) chunks.set(table, { text: metricRow(point), rows: 1 });
      else {
        entry.text += metricRow(point);
        entry.rows++;
      }
    }
    for (const [table, entry] of chunks) this.#open.add(table, entry.text, entry.rows);
    this.stats.metricPointsAccepted += points.length;
    this.#sealIfFull();
    return { accepted: true };
  }

  /** Seals the open segment and waits until every sealed segment is on disk. */
  async flush(): Promise<void> {
    this.#seal();
    await this.#writes;
  }

  /** Seals what is open (with the service graph's waiting halves settled), then gives the loader `drainMs` to empty the spool. */
  async shutdown(drainMs: number): Promise<void> {
    if (this.#timer !== undefined) clearInterval(this.#timer);
    this.#timer = undefined;
    const calls: EdgeCall[] = [];
    this.#graph.drain(calls);
    this.#addCalls(calls);
    await this.flush();
    await this.#loader.stop(drainMs);
  }

  #refusal(): AcceptOutcome | undefined {
    const buffered = this.bufferedBytes;
    if (buffered >= this.#options.maxBufferedBytes) {
      this.stats.requestsRefused++;
      return { accepted: false, reason: 'collector is writing a backlog to disk; retry later', retryAfterSeconds: 1 };
    }
    if (this.#spool.bytes + buffered >= this.#options.spoolLimitBytes) {
      this.stats.requestsRefused++;
      const why = this.#loader.healthy ? 'the store is behind' : `the store is unavailable (${this.#loader.lastError})`;
      return { accepted: false, reason: `spool is full because ${why}; retry later`, retryAfterSeconds: this.#loader.healthy ? 1 : 5 };
    }
    return undefined;
  }

  #addCalls(calls: readonly EdgeCall[]): void {
    if (calls.length === 0) return;
    let chunk = '';
    for (const call of calls) chunk += edgeCallRow(call);
    this.#open.add('tracemesh_edge_calls', chunk, calls.length);
  }

  #sealIfFull(): void {
    if (this.#open.rows >= this.#options.maxSegmentRows || this.#open.bytes >= this.#options.maxSegmentBytes) this.#seal();
  }

  #onTick(): void {
    const now = Date.now();
    if (now - this.#lastExpiryMs >= 1_000) {
      this.#lastExpiryMs = now;
      const calls: EdgeCall[] = [];
      this.#graph.expire(calls);
      this.#addCalls(calls);
    }
    if (this.#open.rows > 0 && now - this.#open.openedAtMs >= this.#options.flushIntervalMs) this.#seal();
  }

  #seal(): void {
    const segment = this.#open;
    this.#open = new OpenSegment(Date.now());
    if (segment.rows === 0) return;
    this.#sealingBytes += segment.bytes;
    this.stats.segmentsSealed++;
    const segmentId = this.#spool.newSegmentId();
    this.#writes = this.#writes.then(() => this.#writeSegment(segmentId, segment));
  }

  /** Writes every table of a segment; a failed write (disk full) is retried, keeping the rows in memory meanwhile. */
  async #writeSegment(segmentId: string, segment: OpenSegment): Promise<void> {
    const pending = new Map(segment.tables);
    for (let attempt = 0; ; attempt++) {
      try {
        for (const [table, chunks] of pending) {
          await this.#spool.write(segmentId, table, chunks);
          pending.delete(table);
        }
        break;
      } catch (err) {
        this.stats.segmentWriteFailures++;
        this.#options.log(`cannot write spool segment ${segmentId} (attempt ${attempt + 1}): ${errorMessage(err)}`);
        await sleep(backoffMs(attempt));
      }
    }
    this.#sealingBytes -= segment.bytes;
    this.#loader.notify();
  }
}
