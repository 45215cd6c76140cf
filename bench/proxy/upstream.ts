/**
 * The benchmark's upstream: the smallest HTTP/1.1 keep-alive server that
 * answers every request with the same prebuilt 200 response of 1 KiB body.
 *
 * A raw `net` server, not `node:http`: it never parses a request line or
 * headers, it only counts request ends (`\r\n\r\n`, requests carry no body)
 * and writes one prebuilt Buffer per request, batched into one write per
 * read. So the upstream costs a read and a write per request, and the
 * proxies in front of it are what the benchmark measures.
 *
 *   node dist/bench/proxy/upstream.js [--port 0]
 *
 * Prints `listening <port>` on stdout once bound; exits on SIGTERM/SIGINT.
 */
import net from 'node:net';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

export const BODY_BYTES = 1024;

/** `\r\n\r\n`: the end of a request without a body. */
const CR = 13;
const LF = 10;

function buildResponse(): Buffer {
  const body = Buffer.alloc(BODY_BYTES, 'x');
  const head = `HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: ${BODY_BYTES}\r\nConnection: keep-alive\r\n\r\n`;
  return Buffer.concat([Buffer.from(head, 'latin1'), body]);
}

/** The one response every request gets. */
export const RESPONSE = buildResponse();

/** A request head larger than this without an end is not a benchmark client: close it. */
const MAX_PENDING_HEAD_BYTES = 16 * 1024;

/**
 * Counts complete request heads in a byte stream split at arbitrary points.
 * `matched` is how many bytes of `\r\n\r\n` the previous chunk ended with, so
 * a terminator split across reads is still found.
 */
export class RequestEndCounter {
  matched = 0;
  /** Bytes since the last request end, to bound a client that never ends its head. */
  pending = 0;

  /** How many requests ended in this chunk. */
  push(chunk: Buffer): number {
    let ends = 0;
    let matched = this.matched;
    let lastEnd = -1;
    for (let i = 0; i < chunk.length; i++) {
      const byte = chunk[i];
      if (byte === ((matched & 1) === 0 ? CR : LF)) {
        matched++;
        if (matched === 4) {
          ends++;
          matched = 0;
          lastEnd = i;
        }
      } else {
        matched = byte === CR ? 1 : 0;
      }
    }
    this.matched = matched;
    this.pending = lastEnd >= 0 ? chunk.length - 1 - lastEnd : this.pending + chunk.length;
    return ends;
  }
}

/** Responses for `count` requests in one buffer; the common counts are built once. */
const BATCHES: Buffer[] = [];
function responses(count: number): Buffer {
  if (count === 1) return RESPONSE;
  let batch = BATCHES[count];
  if (batch === undefined) {
    batch = Buffer.concat(new Array<Buffer>(count).fill(RESPONSE));
    if (count < 64) BATCHES[count] = batch;
  }
  return batch;
}

function onConnection(socket: net.Socket): void {
  socket.setNoDelay(true);
  const counter = new RequestEndCounter();
  socket.on('data', (chunk: Buffer) => {
    const ends = counter.push(chunk);
    if (ends > 0) socket.write(responses(ends));
    if (counter.pending > MAX_PENDING_HEAD_BYTES) socket.destroy();
  });
  // A client going away mid-run is normal at the end of a load run.
  socket.on('error', () => socket.destroy());
}

export interface Upstream {
  port: number;
  close(): Promise<void>;
}

export function startUpstream(port = 0, host = '127.0.0.1'): Promise<Upstream> {
  const server = net.createServer({ noDelay: true }, onConnection);
  const sockets = new Set<net.Socket>();
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ port, host, backlog: 1024 }, () => {
      server.off('error', reject);
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : port;
      resolve({
        port: bound,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

async function main(argv: readonly string[]): Promise<void> {
  let port = 0;
  for (let i = 0; i < argv.length; i += 2) {
    const value = Number(argv[i + 1]);
    if (argv[i] !== '--port' || !Number.isInteger(value) || value < 0 || value > 65535) {
      throw new Error(`usage: upstream [--port 0..65535], got ${argv.join(' ')}`);
    }
    port = value;
  }
  const upstream = await startUpstream(port);
  const stop = (): void => {
    void upstream.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.stdout.write(`listening ${upstream.port}\n`);
}

const invokedAsScript = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsScript) {
  main(process.argv.slice(2)).catch((err: unknown) => {
    process.stderr.write(`upstream: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
