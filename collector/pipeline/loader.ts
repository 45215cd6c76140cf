import { BACKOFF_MAX_MS, BACKOFF_MIN_MS, backoffMs } from '../../src/lib/backoff.js';
import { errorMessage } from '../../src/lib/errors.js';
import type { Store } from '../storage/store.js';
import type { Spool, SpoolFile } from './spool.js';

export interface LoaderOptions {
  retryMinMs: number;
  retryMaxMs: number;
  log: (message: string) => void;
}

export const DEFAULT_LOADER_OPTIONS: LoaderOptions = { retryMinMs: BACKOFF_MIN_MS, retryMaxMs: BACKOFF_MAX_MS, log: () => {} };

export interface LoaderStats {
  loadedFiles: number;
  loadedBytes: number;
  failedAttempts: number;
  quarantinedFiles: number;
}

/** ClickHouse error types that mean "this data is bad", not "the store is away": retrying cannot help. */
const DATA_ERROR_TYPES: ReadonlySet<string> = new Set([
  'CANNOT_PARSE_INPUT_ASSERTION_FAILED',
  'CANNOT_PARSE_TEXT',
  'CANNOT_PARSE_NUMBER',
  'CANNOT_PARSE_DATETIME',
  'CANNOT_PARSE_ESCAPE_SEQUENCE',
  'CANNOT_PARSE_QUOTED_STRING',
  'INCORRECT_DATA',
  'TYPE_MISMATCH',
  'TOO_LARGE_STRING_SIZE',
  'ILLEGAL_COLUMN',
]);

function isDataError(err: unknown): boolean {
  for (let cause: unknown = err; cause instanceof Error; cause = cause.cause) {
    const type = (cause as { type?: unknown }).type;
    if (typeof type === 'string' && DATA_ERROR_TYPES.has(type)) return true;
  }
  return false;
}

/**
 * Loads sealed spool segments into the store, oldest first, one file at a
 * time. A failed insert is retried with backoff for as long as it takes (the
 * spool bound, not the loader, decides when senders are turned away); a
 * retried insert carries the same deduplication token, so a file whose insert
 * succeeded but was not yet removed is never stored twice.
 */
export class SpoolLoader {
  readonly stats: LoaderStats = { loadedFiles: 0, loadedBytes: 0, failedAttempts: 0, quarantinedFiles: 0 };
  #healthy = true;
  #lastError = '';
  #stopping = false;
  #stopped = false;
  #wake: (() => void) | undefined;
  #loop: Promise<void> | undefined;
  readonly #spool: Spool;
  readonly #store: Store;
  readonly #options: LoaderOptions;

  constructor(spool: Spool, store: Store, options: LoaderOptions = DEFAULT_LOADER_OPTIONS) {
    this.#spool = spool;
    this.#store = store;
    this.#options = options;
  }

  /** False while inserts fail; true again after the next success. */
  get healthy(): boolean {
    return this.#healthy;
  }

  get lastError(): string {
    return this.#lastError;
  }

  start(): void {
    this.#loop ??= this.#run();
  }

  /** A segment was sealed: look again now. */
  notify(): void {
    this.#wake?.();
  }

  /** Loads what is spooled for up to `drainMs`, then stops; what is left stays on disk for the next start. */
  async stop(drainMs: number): Promise<void> {
    this.#stopping = true;
    const deadline = setTimeout(() => {
      this.#stopped = true;
      this.#wake?.();
    }, drainMs);
    deadline.unref();
    this.#wake?.();
    await this.#loop;
    clearTimeout(deadline);
    this.#stopped = true;
  }

  async #run(): Promise<void> {
    let failures = 0;
    while (!this.#stopped) {
      const file = this.#spool.oldest();
      if (file === undefined) {
        if (this.#stopping) return;
        await this.#pause(Number.POSITIVE_INFINITY);
        continue;
      }
      try {
        await this.#load(file);
        this.#healthy = true;
        failures = 0;
      } catch (err) {
        this.stats.failedAttempts++;
        if (isDataError(err)) {
          const where = await this.#spool.quarantine(file);
          this.stats.quarantinedFiles++;
          this.#options.log(`spool file refused by the store as bad data, moved to ${where}: ${errorMessage(err)}`);
          continue;
        }
        if (this.#healthy) this.#options.log(`store unavailable, keeping segments on disk and retrying: ${errorMessage(err)}`);
        this.#healthy = false;
        this.#lastError = errorMessage(err);
        await this.#pause(backoffMs(failures++, this.#options.retryMinMs, this.#options.retryMaxMs));
      }
    }
  }

  async #load(file: SpoolFile): Promise<void> {
    await this.#store.insertFile(file.table, file.path, `${file.segmentId}.${file.table}`);
    await this.#spool.remove(file);
    this.stats.loadedFiles++;
    this.stats.loadedBytes += file.bytes;
  }

  #pause(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = Number.isFinite(ms) ? setTimeout(resolve, ms) : undefined;
      timer?.unref();
      this.#wake = () => {
        this.#wake = undefined;
        if (timer !== undefined) clearTimeout(timer);
        resolve();
      };
    });
  }
}
