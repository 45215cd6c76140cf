/**
 * The bounded queue and batching both span sinks share (one helper for
 * queueing, batching, timeouts and drop counting, not one per exporter).
 *
 * `record` is the only call on the request path: it hands the span to the
 * sink's SpanStore and returns. The store either keeps the record as it is
 * (span-store-records.ts, for the SDK sink) or encodes it at once into
 * protobuf bytes (span-store-encoded.ts, the lean sink), so what waits in
 * the queue is a few hundred bytes per span instead of an object graph that
 * would outlive the young generation. Nothing is awaited there. Batches
 * leave from a timer or, when a full batch is waiting, from a setImmediate,
 * one export in flight at a time. We do not use the SDK's
 * BatchSpanProcessor because it drops silently, without a count.
 *
 * Every span that is not delivered is counted under exactly one reason:
 * queue full, export failed (including a span the store could not encode),
 * export timed out, or still queued (or recorded) at shutdown.
 */
import { TracemeshError, errorMessage } from '../../src/lib/errors.js';
import type { ProxySpanRecord, SpanSink } from './span-record.js';

/** The transport half of a sink: sends one batch, in the form its store takes batches out. */
export interface SpanBatchExporter<B> {
  /**
   * Sends one batch. Resolves once the collector accepted it, rejects
   * otherwise. `timeoutMs` is the deadline to hand the transport; a rejection
   * whose `code` or `grpcStatus` is 4 (gRPC DEADLINE_EXCEEDED) counts as a timeout.
   */
  export(batch: B, timeoutMs: number): Promise<void>;
  /** Releases connections. Called once, after the last export settled or was given up. */
  shutdown(): Promise<void>;
}

/** What SpanStore.add did with a span. */
export const STORED = 0;
export const STORE_FULL = 1;
/** The span could not be encoded (a bug, never expected): counted as an export failure. */
export const STORE_FAILED = 2;
export type StoreOutcome = typeof STORED | typeof STORE_FULL | typeof STORE_FAILED;

/** Where a sink keeps spans between record() and export, bounded. */
export interface SpanStore<B> {
  /** Spans held now. */
  readonly size: number;
  /** Keeps the span, or says why not. Never throws. */
  add(span: ProxySpanRecord): StoreOutcome;
  /** Takes the oldest spans, at most one export batch of them. Only called when size > 0. */
  take(): B;
  /** How many spans a batch from take() holds. */
  countOf(batch: B): number;
  /** Forgets everything held. */
  clear(): void;
  /** Optional: the batch was delivered and its memory may be reused. */
  release?(batch: B): void;
}

export interface SpanQueueOptions {
  /** Spans held while waiting for export; beyond it, new spans are dropped and counted. */
  readonly maxQueueSize: number;
  readonly maxExportBatchSize: number;
  /** A partial batch waits at most this long before it is sent. */
  readonly scheduledDelayMs: number;
  /** One export may take this long; then its spans count as dropped (timeout) and the next batch goes. */
  readonly exportTimeoutMs: number;
  /** shutdown() flushes for at most this long; what is still queued then counts as dropped. */
  readonly shutdownTimeoutMs: number;
  /** Export failures are reported here: the first of a run of failures, and the recovery. */
  readonly log: (message: string) => void;
}

/** BatchSpanProcessor's defaults, and a shutdown bounded like one export. */
export const DEFAULT_SPAN_QUEUE_OPTIONS: SpanQueueOptions = {
  maxQueueSize: 8192,
  maxExportBatchSize: 512,
  scheduledDelayMs: 1000,
  exportTimeoutMs: 10_000,
  shutdownTimeoutMs: 10_000,
  log: () => {},
};

export interface SpanSinkStats {
  /** Spans waiting in the queue now. */
  readonly queued: number;
  readonly exportedSpans: number;
  readonly droppedQueueFull: number;
  readonly droppedExportFailed: number;
  readonly droppedExportTimeout: number;
  /** Still queued when the shutdown deadline passed, or recorded after shutdown. */
  readonly droppedAtShutdown: number;
}

const GRPC_DEADLINE_EXCEEDED = 4;

function positiveInteger(name: string, value: number, max = Number.MAX_SAFE_INTEGER): void {
  if (!Number.isInteger(value) || value < 1 || value > max) {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `span sink option ${name} must be an integer from 1 to ${max}, got ${value}`);
  }
}

/** Fills defaults and checks every value; a bad value is an error naming the option. */
export function spanQueueOptions(overrides: Partial<SpanQueueOptions> = {}): SpanQueueOptions {
  const o: SpanQueueOptions = {
    maxQueueSize: overrides.maxQueueSize ?? DEFAULT_SPAN_QUEUE_OPTIONS.maxQueueSize,
    maxExportBatchSize: overrides.maxExportBatchSize ?? DEFAULT_SPAN_QUEUE_OPTIONS.maxExportBatchSize,
    scheduledDelayMs: overrides.scheduledDelayMs ?? DEFAULT_SPAN_QUEUE_OPTIONS.scheduledDelayMs,
    exportTimeoutMs: overrides.exportTimeoutMs ?? DEFAULT_SPAN_QUEUE_OPTIONS.exportTimeoutMs,
    shutdownTimeoutMs: overrides.shutdownTimeoutMs ?? DEFAULT_SPAN_QUEUE_OPTIONS.shutdownTimeoutMs,
    log: overrides.log ?? DEFAULT_SPAN_QUEUE_OPTIONS.log,
  };
  positiveInteger('maxQueueSize', o.maxQueueSize, 1 << 20);
  positiveInteger('maxExportBatchSize', o.maxExportBatchSize, o.maxQueueSize);
  positiveInteger('scheduledDelayMs', o.scheduledDelayMs, 3_600_000);
  positiveInteger('exportTimeoutMs', o.exportTimeoutMs, 3_600_000);
  positiveInteger('shutdownTimeoutMs', o.shutdownTimeoutMs, 3_600_000);
  return o;
}

type ExportOutcome = 'ok' | 'failed' | 'timeout';

/** Closing the exporter gets at least this long, even when the flush used up the shutdown deadline. */
const SHUTDOWN_CLOSE_GRACE_MS = 100;

/** Waits for `work` or `ms`, whichever comes first; never rejects. */
async function settleWithin(work: Promise<unknown>, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<void>((resolve) => {
    timer = setTimeout(resolve, ms);
    timer.unref();
  });
  await Promise.race([work.then(noop, noop), expired]);
  clearTimeout(timer);
}

function noop(): void {}

export class BatchingSpanSink<B> implements SpanSink {
  private readonly options: SpanQueueOptions;
  private readonly exporter: SpanBatchExporter<B>;
  private readonly store: SpanStore<B>;
  private timer: NodeJS.Timeout | undefined = undefined;
  private immediate: NodeJS.Immediate | undefined = undefined;
  /** The export loop in progress, if any. */
  private running: Promise<void> | undefined = undefined;
  private stopped = false;
  private shutdownPromise: Promise<void> | undefined = undefined;
  private failing = false;
  // Counters.
  private exported = 0;
  private droppedFull = 0;
  private droppedFailed = 0;
  private droppedTimeout = 0;
  private droppedShutdown = 0;
  // Made once: the timer and setImmediate callbacks must not allocate per span.
  /** Timer: the partial batch waited long enough, send what is queued. */
  private readonly kick: () => void;
  /** setImmediate: a full batch is waiting; send full batches only, the rest waits for the timer. */
  private readonly kickFull: () => void;
  private readonly loopEnded: () => void;

  /** `store` must hold at most options.maxQueueSize spans and take batches of options.maxExportBatchSize. */
  constructor(exporter: SpanBatchExporter<B>, options: SpanQueueOptions, store: SpanStore<B>) {
    this.exporter = exporter;
    this.options = options;
    this.store = store;
    this.kick = () => {
      this.timer = undefined;
      this.immediate = undefined;
      void this.startLoop(this.store.size);
    };
    this.kickFull = () => {
      this.immediate = undefined;
      void this.startLoop(0);
    };
    this.loopEnded = () => this.onLoopEnded();
  }

  get droppedSpans(): number {
    return this.droppedFull + this.droppedFailed + this.droppedTimeout + this.droppedShutdown;
  }

  get stats(): SpanSinkStats {
    return {
      queued: this.store.size,
      exportedSpans: this.exported,
      droppedQueueFull: this.droppedFull,
      droppedExportFailed: this.droppedFailed,
      droppedExportTimeout: this.droppedTimeout,
      droppedAtShutdown: this.droppedShutdown,
    };
  }

  record(span: ProxySpanRecord): void {
    if (this.stopped) {
      this.droppedShutdown++;
      return;
    }
    const outcome = this.store.add(span);
    if (outcome !== STORED) {
      if (outcome === STORE_FULL) this.droppedFull++;
      else this.droppedFailed++;
      return;
    }
    if (this.running !== undefined) return; // the loop looks at the queue again when its export settles
    if (this.store.size >= this.options.maxExportBatchSize) {
      // A full batch: send soon, but not inside the request that completed it.
      if (this.immediate === undefined) {
        if (this.timer !== undefined) {
          clearTimeout(this.timer);
          this.timer = undefined;
        }
        this.immediate = setImmediate(this.kickFull);
        this.immediate.unref();
      }
    } else if (this.timer === undefined && this.immediate === undefined) {
      this.timer = setTimeout(this.kick, this.options.scheduledDelayMs);
      this.timer.unref();
    }
  }

  /** Sends everything queued when called (not what arrives meanwhile), then resolves. Never rejects. */
  async forceFlush(): Promise<void> {
    let pending = this.store.size;
    while (this.running !== undefined) {
      await this.running;
    }
    // Spans queued at the call may have left with the loop we waited for.
    pending = Math.min(pending, this.store.size);
    if (pending === 0) return;
    this.cancelWake();
    await this.startLoop(pending);
  }

  /** Flushes within shutdownTimeoutMs, counts what is left as dropped, closes the exporter. Safe twice. */
  shutdown(): Promise<void> {
    this.shutdownPromise ??= this.shutdownOnce();
    return this.shutdownPromise;
  }

  private async shutdownOnce(): Promise<void> {
    this.stopped = true;
    this.cancelWake();
    const deadlineAt = Date.now() + this.options.shutdownTimeoutMs;
    await settleWithin(this.forceFlush(), this.options.shutdownTimeoutMs);
    // Whatever did not make it (deadline passed, or a last export is still out) is lost.
    this.droppedShutdown += this.store.size;
    this.store.clear();
    // The exporter may wait for an export still out; the same deadline bounds it (and a little more, to close).
    const closing = this.exporter.shutdown().catch((err: unknown) => this.options.log(`span exporter shutdown: ${errorMessage(err)}`));
    await settleWithin(closing, Math.max(deadlineAt - Date.now(), SHUTDOWN_CLOSE_GRACE_MS));
  }

  private cancelWake(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.immediate !== undefined) clearImmediate(this.immediate);
    this.timer = undefined;
    this.immediate = undefined;
  }

  /** Starts the export loop, or returns the one running. */
  private startLoop(mustSend: number): Promise<void> {
    if (this.running !== undefined) return this.running;
    // `.finally` runs after this assignment even when the loop has nothing to do and returns at once.
    const running = this.exportLoop(mustSend).finally(this.loopEnded);
    this.running = running;
    return running;
  }

  /**
   * Exports batches, one at a time: at least `mustSend` spans (a partial
   * batch when the timer fired, or forceFlush), then on while a full batch is
   * waiting. Never rejects.
   */
  private async exportLoop(mustSend: number): Promise<void> {
    let left = mustSend;
    const store = this.store;
    while (store.size > 0 && (left > 0 || store.size >= this.options.maxExportBatchSize)) {
      const batch = store.take();
      const count = store.countOf(batch);
      left -= count;
      const outcome = await this.exportBatch(batch);
      if (outcome === 'ok') {
        this.exported += count;
        // Only a delivered batch: a failed or abandoned one may still be referenced by the transport.
        store.release?.(batch);
      }
      else if (outcome === 'timeout') this.droppedTimeout += count;
      else this.droppedFailed += count;
    }
  }

  /** After a loop: what arrived meanwhile waits for the timer (or goes at once if a full batch is there). */
  private onLoopEnded(): void {
    this.running = undefined;
    const size = this.store.size;
    if (size === 0 || this.stopped || this.timer !== undefined || this.immediate !== undefined) return;
    if (size >= this.options.maxExportBatchSize) this.immediate = setImmediate(this.kickFull).unref();
    else this.timer = setTimeout(this.kick, this.options.scheduledDelayMs).unref();
  }

  private async exportBatch(batch: B): Promise<ExportOutcome> {
    const timeoutMs = this.options.exportTimeoutMs;
    let timer: NodeJS.Timeout | undefined;
    const timedOut = new Promise<ExportOutcome>((resolve) => {
      timer = setTimeout(resolve, timeoutMs, 'timeout');
      timer.unref();
    });
    let sent: Promise<ExportOutcome>;
    try {
      sent = this.exporter.export(batch, timeoutMs).then(
        () => 'ok' as const,
        (err: unknown) => this.failed(err),
      );
    } catch (err) {
      // An exporter that throws instead of rejecting must not stop the loop.
      sent = Promise.resolve(this.failed(err));
    }
    const outcome = await Promise.race([sent, timedOut]);
    clearTimeout(timer);
    if (outcome === 'ok' && this.failing) {
      this.failing = false;
      this.options.log('span export recovered');
    } else if (outcome === 'timeout' && !this.failing) {
      this.failing = true;
      this.options.log(`span export timed out after ${timeoutMs} ms; dropping spans until the collector answers`);
    }
    return outcome;
  }

  private failed(err: unknown): ExportOutcome {
    const e = typeof err === 'object' && err !== null ? (err as { code?: unknown; grpcStatus?: unknown }) : {};
    const timeout = e.code === GRPC_DEADLINE_EXCEEDED || e.grpcStatus === GRPC_DEADLINE_EXCEEDED;
    if (!this.failing) {
      this.failing = true;
      this.options.log(`span export failed: ${errorMessage(err)}; dropping spans until the collector answers`);
    }
    return timeout ? 'timeout' : 'failed';
  }
}
