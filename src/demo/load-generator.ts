/**
 * Open-loop load: a timer ticks every TICK_MS and sends the requests due
 * since the start (rate × elapsed, minus those sent), whether or not earlier
 * ones have answered, the way real users arrive. Bounded: at most
 * `maxInFlight` requests at once; a request due while that many are open is
 * not sent and counted as skipped, so a stalled mesh cannot pile up sockets.
 */
import http from 'node:http';

export interface LoadCounts {
  sent: number;
  ok: number;
  failed: number;
  skipped: number;
  /** Failed by status: `502`, or `error` for a transport failure. */
  failures: Record<string, number>;
}

export interface LoadGeneratorOptions {
  /** Requests per second. */
  readonly rate: number;
  /** The entry point: the web sidecar's inbound listener on 127.0.0.1. */
  readonly port: number;
  /** Path of the n-th request (`/product/<id>`). */
  readonly path: (n: number) => string;
  readonly timeoutMs: number;
  readonly maxInFlight: number;
  /** Requests due after this long are not sent (--duration): the count is exact however late the runner stops us. */
  readonly sendForMs?: number | undefined;
  readonly now?: () => number;
}

const TICK_MS = 50;
const PRODUCT_IDS = 40;

/** Products cycle through a small set, so traces repeat and aggregates fill up. */
export function productPath(n: number): string {
  return `/product/${(n * 7) % PRODUCT_IDS}`;
}

/** How many requests are due after `elapsedMs` at `rate` per second. */
export function requestsDue(rate: number, elapsedMs: number): number {
  return Math.floor((rate * elapsedMs) / 1000);
}

export class LoadGenerator {
  readonly counts: LoadCounts = { sent: 0, ok: 0, failed: 0, skipped: 0, failures: {} };
  private readonly options: LoadGeneratorOptions;
  private readonly agent: http.Agent;
  private readonly now: () => number;
  private timer: NodeJS.Timeout | undefined;
  private startedAt = 0;
  private due = 0;
  private inFlight = 0;
  private drained: (() => void) | undefined;

  constructor(options: LoadGeneratorOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: options.maxInFlight });
  }

  start(): void {
    if (this.timer !== undefined) return;
    this.startedAt = this.now();
    this.timer = setInterval(() => this.tick(), TICK_MS);
  }

  /** Stops sending and waits for the requests in flight to finish. */
  async stop(): Promise<void> {
    if (this.timer !== undefined) clearInterval(this.timer);
    this.timer = undefined;
    if (this.inFlight > 0) await new Promise<void>((resolve) => (this.drained = resolve));
    this.agent.destroy();
  }

  private tick(): void {
    const elapsed = this.now() - this.startedAt;
    const due = requestsDue(this.options.rate, Math.min(elapsed, this.options.sendForMs ?? elapsed));
    for (; this.due < due; this.due++) {
      if (this.inFlight >= this.options.maxInFlight) this.counts.skipped++;
      else this.send(this.due);
    }
  }

  private send(n: number): void {
    this.inFlight++;
    this.counts.sent++;
    let settled = false;
    const end = (failure: string | undefined): void => {
      if (settled) return;
      settled = true;
      this.finish(failure);
    };
    const request = http.get(
      { host: '127.0.0.1', port: this.options.port, path: this.options.path(n), agent: this.agent, timeout: this.options.timeoutMs },
      (response) => {
        response.resume();
        response.once('end', () => end(response.statusCode === 200 ? undefined : String(response.statusCode ?? 0)));
        response.once('error', () => end('error'));
      },
    );
    request.once('timeout', () => request.destroy(new Error('timeout')));
    request.once('error', () => end('error'));
  }

  private finish(failure: string | undefined): void {
    this.inFlight--;
    if (failure === undefined) this.counts.ok++;
    else {
      this.counts.failed++;
      this.counts.failures[failure] = (this.counts.failures[failure] ?? 0) + 1;
    }
    if (this.inFlight === 0 && this.drained !== undefined) {
      this.drained();
      this.drained = undefined;
    }
  }
}
