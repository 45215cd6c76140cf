/**
 * The fuzz client: one case on one fresh TCP connection to 127.0.0.1, its
 * bytes written in the case's parts (each after the previous one was handed
 * to the kernel), the answer collected until the caller's `done` says it is
 * complete, the server closes, or the deadline passes (then the socket is
 * destroyed: a case never outlives its deadline). Plus a bounded runner that
 * keeps N cases in flight.
 */
import net from 'node:net';

export interface RawOutcome {
  readonly data: Buffer;
  /** The server ended or reset the connection. */
  readonly closed: boolean;
  /** The deadline passed first. */
  readonly timedOut: boolean;
  /** Socket error code seen (ECONNRESET, EPIPE…), '' when none. */
  readonly errorCode: string;
  readonly elapsedMs: number;
}

export interface ExchangeOptions {
  readonly port: number;
  readonly bytes: Buffer;
  /** Ascending offsets inside `bytes` where a new write starts. */
  readonly splits: readonly number[];
  readonly endAfterWrite: boolean;
  readonly deadlineMs: number;
  /** Called with everything received so far after each read; true ends the exchange. */
  readonly done: (data: Buffer) => boolean;
}

function partsOf(bytes: Buffer, splits: readonly number[]): Buffer[] {
  const parts: Buffer[] = [];
  let from = 0;
  for (const at of splits) {
    if (at <= from || at >= bytes.length) continue;
    parts.push(bytes.subarray(from, at));
    from = at;
  }
  parts.push(bytes.subarray(from));
  return parts;
}

export function exchange(options: ExchangeOptions): Promise<RawOutcome> {
  const started = performance.now();
  return new Promise((resolve) => {
    const socket = net.connect({ port: options.port, host: '127.0.0.1', noDelay: true });
    const chunks: Buffer[] = [];
    let received = 0;
    let errorCode = '';
    let settled = false;
    const parts = partsOf(options.bytes, options.splits);
    let next = 0;

    const finish = (closed: boolean, timedOut: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks, received), closed, timedOut, errorCode, elapsedMs: performance.now() - started });
    };
    const writeNext = (): void => {
      if (settled || socket.destroyed) return;
      const part = parts[next++];
      if (part === undefined) {
        if (options.endAfterWrite) socket.end();
        return;
      }
      // The callback runs once the part left for the kernel, so the parts tend to travel as separate segments.
      socket.write(part, (err) => {
        if (err === undefined || err === null) writeNext();
      });
    };
    const timer = setTimeout(() => finish(false, true), options.deadlineMs);
    socket.on('connect', writeNext);
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      received += chunk.length;
      if (options.done(chunks.length === 1 ? chunk : Buffer.concat(chunks, received))) finish(false, false);
    });
    socket.on('end', () => finish(true, false));
    socket.on('close', () => finish(true, false));
    socket.on('error', (err: NodeJS.ErrnoException) => {
      errorCode ||= err.code ?? err.message;
      // EPIPE after the server closed is the server's close, seen from the write side.
      finish(true, false);
    });
  });
}

/**
 * Runs task(0) … task(total-1) with at most `concurrency` in flight; resolves
 * when all have settled. A task that throws is reported by `onError` and the
 * run goes on (one broken case must not hide the others).
 */
export async function runBounded(total: number, concurrency: number, task: (index: number) => Promise<void>, onError: (index: number, err: unknown) => void): Promise<void> {
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < total) {
      const index = next++;
      try {
        await task(index);
      } catch (err) {
        onError(index, err);
      }
    }
  };
  await Promise.all(Array.from({ length: Math.min(concurrency, total) }, worker));
}
