/**
 * Open-loop load at a constant rate over keep-alive connections, with latency
 * measured without coordinated omission.
 *
 * Request i is due at t0 + i / rate. When it is due it goes out on a free
 * connection; when none is free it waits in a queue and goes out on the first
 * connection that frees up. Its latency is
 *
 *     (response end − send) + (time it waited for a connection after it was due)
 *
 * so a slow system under test is charged for every request it delayed, as if
 * each had been sent on time (the coordinated-omission correction), while the
 * generator's own timer lateness (Node timers fire on millisecond ticks) is
 * not charged to the system: it is reported separately as `lagUs`.
 *
 * Every array is preallocated to rate × duration entries, so memory is bounded
 * by the run's size, and the run ends by a deadline even if responses stop.
 *
 *   node dist/bench/proxy/constant-rate.js --port P [--host-header H] [--rate 1000] [--duration-ms 10000] [--connections 16]
 *
 * Prints one JSON line (ConstantRateResult) on stdout.
 */
import net from 'node:net';
import { realpathSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { ResponseReader } from './response-reader.js';
import type { ResponseEvents } from './response-reader.js';
import { summarize } from './stats.js';
import type { LatencySummary } from './stats.js';

export interface ConstantRateOptions {
  host: string;
  port: number;
  /** The Host header (the two-proxy path routes by it). */
  hostHeader: string;
  /** Requests per second. */
  rate: number;
  durationMs: number;
  connections: number;
  /** How long to wait for the last responses after the last request was due. */
  drainMs?: number;
  connectTimeoutMs?: number;
}

export interface ConstantRateResult {
  rate: number;
  connections: number;
  /** Requests due in the run (rate × duration). */
  scheduled: number;
  sent: number;
  /** Responses read (any status). */
  completed: number;
  /** Responses with a status outside 200..399. */
  non2xx: number;
  /** Requests lost: connection closed or errored with the request in flight, or no answer by the drain deadline. */
  failed: number;
  /** Connections opened again after the server closed one. */
  reconnects: number;
  /** From the first due time to the last response. */
  elapsedMs: number;
  /** completed / elapsed. */
  achievedRate: number;
  /** Latency with the coordinated-omission correction, microseconds. */
  latencyUs: LatencySummary;
  /** How late the generator's own timer sent requests that had a free connection, microseconds. */
  lagUs: LatencySummary;
  /** Requests that found no free connection when due. */
  queued: number;
  firstError: string | undefined;
}

const DEFAULT_DRAIN_MS = 5_000;
const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;
const MAX_RATE = 200_000;
const MAX_REQUESTS = 50_000_000;

/** One keep-alive connection: at most one request in flight. */
class Connection implements ResponseEvents {
  socket: net.Socket | undefined = undefined;
  readonly reader: ResponseReader;
  /** Index of the request in flight, -1 when free. */
  inFlight = -1;
  /** performance.now() when the request in flight was written. */
  sentAt = 0;
  /** Connection wait charged to the request in flight (ms). */
  waitedMs = 0;
  /** When this connection last became free (ms). */
  freeSince = 0;
  /** The current socket connected (a slot reconnects only after a connection that worked). */
  established = false;

  constructor(
    readonly slot: number,
    private readonly run: Run,
  ) {
    this.reader = new ResponseReader(this);
  }

  onResponse(status: number, close: boolean): void {
    this.run.onResponse(this, status, close);
  }
}

class Run {
  readonly latencies: Float64Array;
  readonly lags: Float64Array;
  latencyCount = 0;
  lagCount = 0;
  /** Ring of request indexes waiting for a connection. */
  private readonly queue: Int32Array;
  private queueHead = 0;
  private queueLength = 0;
  private readonly free: Connection[] = [];
  private readonly connections: Connection[] = [];
  private readonly request: Buffer;
  private readonly intervalMs: number;
  private readonly total: number;
  private t0 = 0;
  private next = 0;
  private timer: NodeJS.Timeout | undefined = undefined;
  private deadline: NodeJS.Timeout | undefined = undefined;
  private lastResponseAt = 0;
  private finished = false;
  private onDone: (() => void) | undefined = undefined;
  sent = 0;
  completed = 0;
  non2xx = 0;
  reconnects = 0;
  queued = 0;
  firstError: string | undefined = undefined;

  constructor(private readonly options: ConstantRateOptions) {
    this.total = Math.round((options.rate * options.durationMs) / 1000);
    this.intervalMs = 1000 / options.rate;
    this.latencies = new Float64Array(this.total);
    this.lags = new Float64Array(this.total);
    this.queue = new Int32Array(Math.max(1, this.total));
    this.request = Buffer.from(`GET / HTTP/1.1\r\nHost: ${options.hostHeader}\r\nUser-Agent: tracemesh-bench\r\n\r\n`, 'latin1');
  }

  async start(): Promise<void> {
    const timeoutMs = this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
    for (let slot = 0; slot < this.options.connections; slot++) this.connections.push(new Connection(slot, this));
    await Promise.all(this.connections.map((connection) => this.connect(connection, timeoutMs)));
  }

  private connect(connection: Connection, timeoutMs: number): Promise<void> {
    return new Promise((resolve, reject) => {
      const socket = net.connect({ host: this.options.host, port: this.options.port, noDelay: true });
      connection.socket = socket;
      connection.established = false;
      const timer = setTimeout(() => {
        socket.destroy();
        reject(new Error(`connect to ${this.options.host}:${this.options.port} timed out after ${timeoutMs} ms`));
      }, timeoutMs);
      timer.unref();
      socket.once('connect', () => {
        clearTimeout(timer);
        connection.established = true;
        connection.freeSince = performance.now();
        this.release(connection);
        resolve();
      });
      socket.on('data', (chunk: Buffer) => {
        try {
          connection.reader.push(chunk);
        } catch (err) {
          this.noteError(`bad response: ${err instanceof Error ? err.message : String(err)}`);
          socket.destroy();
        }
      });
      socket.on('error', (err) => {
        clearTimeout(timer);
        this.noteError(err.message);
        reject(err);
      });
      socket.on('close', () => this.onClose(connection, socket));
    });
  }

  private onClose(connection: Connection, socket: net.Socket): void {
    if (connection.socket !== socket) return;
    connection.socket = undefined;
    const index = this.free.indexOf(connection);
    if (index >= 0) this.free.splice(index, 1);
    // A request in flight on it is lost (counted at the end: due minus answered).
    connection.inFlight = -1;
    // Reopen while requests are still due: a server that closes keep-alive
    // connections costs reconnects, not the run. A connection that never
    // worked is not retried, so a dead server does not make a connect loop.
    if (!this.finished && this.next < this.total && connection.established) {
      this.reconnects++;
      this.connect(connection, this.options.connectTimeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS).catch(() => {
        // counted in noteError; the slot stays closed
      });
    }
    this.checkDone();
  }

  /** Starts sending; resolves when every due request was answered or failed, or at the drain deadline. */
  run(): Promise<void> {
    return new Promise((resolve) => {
      this.onDone = resolve;
      this.t0 = performance.now();
      this.tick();
      const drainMs = this.options.drainMs ?? DEFAULT_DRAIN_MS;
      // Kept referenced: the run must end by it even if every socket is gone. Cleared by finish().
      this.deadline = setTimeout(() => this.finish(), this.options.durationMs + drainMs);
    });
  }

  private readonly tick = (): void => {
    this.timer = undefined;
    const now = performance.now();
    while (this.next < this.total && this.t0 + this.next * this.intervalMs <= now) {
      this.dispatch(this.next, now);
      this.next++;
    }
    if (this.next < this.total) {
      const wait = this.t0 + this.next * this.intervalMs - performance.now();
      this.timer = setTimeout(this.tick, wait > 1 ? wait : 1);
    } else {
      this.checkDone();
    }
  };

  private dispatch(index: number, now: number): void {
    const connection = this.free.pop();
    if (connection === undefined) {
      this.queued++;
      this.queue[(this.queueHead + this.queueLength) % this.queue.length] = index;
      this.queueLength++;
      return;
    }
    const due = this.t0 + index * this.intervalMs;
    // The connection was free since `freeSince`; anything past max(due, freeSince) is the generator being late.
    const ready = due > connection.freeSince ? due : connection.freeSince;
    this.lags[this.lagCount++] = (now - ready) * 1000;
    this.send(connection, index, now, ready - due);
  }

  private send(connection: Connection, index: number, now: number, waitedMs: number): void {
    connection.inFlight = index;
    connection.sentAt = now;
    connection.waitedMs = waitedMs;
    this.sent++;
    connection.socket!.write(this.request);
  }

  onResponse(connection: Connection, status: number, close: boolean): void {
    const now = performance.now();
    if (connection.inFlight < 0) {
      this.noteError('response without a request in flight');
      return;
    }
    this.latencies[this.latencyCount++] = (now - connection.sentAt + connection.waitedMs) * 1000;
    this.completed++;
    if (status < 200 || status >= 400) this.non2xx++;
    connection.inFlight = -1;
    this.lastResponseAt = now;
    if (close) {
      // The server will close it; onClose reconnects.
      connection.socket?.end();
      return;
    }
    connection.freeSince = now;
    this.release(connection);
    this.checkDone();
  }

  /** A connection is free: give it the oldest queued request, else park it. */
  private release(connection: Connection): void {
    if (this.queueLength > 0) {
      const index = this.queue[this.queueHead]!;
      this.queueHead = (this.queueHead + 1) % this.queue.length;
      this.queueLength--;
      const now = performance.now();
      this.send(connection, index, now, now - (this.t0 + index * this.intervalMs));
      return;
    }
    this.free.push(connection);
  }

  private checkDone(): void {
    if (this.finished || this.next < this.total || this.queueLength > 0) return;
    for (const connection of this.connections) if (connection.inFlight >= 0) return;
    this.finish();
  }

  /** Ends the run: stops sending, closes every connection, resolves run(). Safe twice. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    if (this.timer !== undefined) clearTimeout(this.timer);
    if (this.deadline !== undefined) clearTimeout(this.deadline);
    for (const connection of this.connections) {
      connection.inFlight = -1;
      connection.socket?.destroy();
    }
    this.queueLength = 0;
    this.onDone?.();
  }

  noteError(message: string): void {
    this.firstError ??= message;
  }

  result(): ConstantRateResult {
    const elapsedMs = this.lastResponseAt > this.t0 ? this.lastResponseAt - this.t0 : Number.NaN;
    return {
      rate: this.options.rate,
      connections: this.options.connections,
      scheduled: this.total,
      sent: this.sent,
      completed: this.completed,
      non2xx: this.non2xx,
      failed: this.total - this.completed,
      reconnects: this.reconnects,
      elapsedMs,
      achievedRate: (this.completed / elapsedMs) * 1000,
      latencyUs: summarize(this.latencies, this.latencyCount),
      lagUs: summarize(this.lags, this.lagCount),
      queued: this.queued,
      firstError: this.firstError,
    };
  }
}

export function validateOptions(options: ConstantRateOptions): void {
  const { rate, durationMs, connections, port } = options;
  if (!Number.isFinite(rate) || rate <= 0 || rate > MAX_RATE) throw new Error(`rate: expected 1..${MAX_RATE} requests/s, got ${rate}`);
  if (!Number.isFinite(durationMs) || durationMs <= 0) throw new Error(`duration: expected a positive number of ms, got ${durationMs}`);
  if ((rate * durationMs) / 1000 > MAX_REQUESTS) throw new Error(`rate × duration is more than ${MAX_REQUESTS} requests`);
  if (!Number.isInteger(connections) || connections < 1 || connections > 1024) throw new Error(`connections: expected 1..1024, got ${connections}`);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new Error(`port: expected 1..65535, got ${port}`);
  if (/[\r\n]/.test(options.hostHeader)) throw new Error('host header: must not contain CR or LF');
}

/** One constant-rate run; connection failures at start reject, everything later is counted in the result. */
export async function runConstantRate(options: ConstantRateOptions): Promise<ConstantRateResult> {
  validateOptions(options);
  const run = new Run(options);
  try {
    await run.start();
  } catch (err) {
    // Close whatever did connect before reporting.
    run.finish();
    throw err;
  }
  await run.run();
  return run.result();
}

function parseCli(argv: readonly string[]): ConstantRateOptions {
  const options: ConstantRateOptions = { host: '127.0.0.1', port: 0, hostHeader: '', rate: 1000, durationMs: 10_000, connections: 16 };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag}: missing value`);
    switch (flag) {
      case '--port':
        options.port = Number(value);
        break;
      case '--host-header':
        options.hostHeader = value;
        break;
      case '--rate':
        options.rate = Number(value);
        break;
      case '--duration-ms':
        options.durationMs = Number(value);
        break;
      case '--connections':
        options.connections = Number(value);
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  if (options.hostHeader === '') options.hostHeader = `127.0.0.1:${options.port}`;
  return options;
}

const invokedAsScript = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsScript) {
  runConstantRate(parseCli(process.argv.slice(2))).then(
    (result) => {
      process.stdout.write(`${JSON.stringify(result)}\n`);
    },
    (err: unknown) => {
      process.stderr.write(`constant-rate: ${err instanceof Error ? err.message : String(err)}\n`);
      process.exit(1);
    },
  );
}
