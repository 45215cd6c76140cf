import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { promisify } from 'node:util';
import { gunzip, inflate } from 'node:zlib';
import { errorMessage } from '../../src/lib/errors.js';
import type { IngestPipeline } from '../pipeline/ingest.js';
import { exportResponseBody, handleExport, newReceiverStats } from './export.js';
import type { BodyEncoding, ReceiverStats, Signal } from './export.js';
import { MAX_BODY_BYTES } from './limits.js';
import { GRPC_INTERNAL, GRPC_INVALID_ARGUMENT, GRPC_RESOURCE_EXHAUSTED, GRPC_UNAVAILABLE, encodeRpcStatus, rpcStatusJson } from './rpc-status.js';

const gunzipAsync = promisify(gunzip);
const inflateAsync = promisify(inflate);

const SIGNAL_PATHS: ReadonlyMap<string, Signal> = new Map([
  ['/v1/traces', 'traces'],
  ['/v1/metrics', 'metrics'],
]);

const CONTENT_TYPES: ReadonlyMap<string, BodyEncoding> = new Map([
  ['application/x-protobuf', 'protobuf'],
  ['application/protobuf', 'protobuf'],
  ['application/json', 'json'],
]);

const MEDIA_TYPE = { protobuf: 'application/x-protobuf', json: 'application/json' } as const;
const MIB = 1024 * 1024;

/** A refusal that ends the request before it reaches the decoder. */
class HttpRefusal {
  constructor(
    readonly status: number,
    readonly grpcCode: number,
    readonly message: string,
  ) {}
}

function reply(res: ServerResponse, status: number, encoding: BodyEncoding, body: Buffer, headers: Record<string, string> = {}): void {
  res.writeHead(status, { 'content-type': MEDIA_TYPE[encoding], 'content-length': String(body.length), ...headers });
  res.end(body);
}

/** OTLP error body: a google.rpc.Status in the request's encoding. */
function replyError(res: ServerResponse, status: number, encoding: BodyEncoding, grpcCode: number, message: string, headers: Record<string, string> = {}): void {
  const body = encoding === 'protobuf' ? encodeRpcStatus(grpcCode, message) : Buffer.from(rpcStatusJson(grpcCode, message));
  reply(res, status, encoding, body, headers);
}

/** Bodies of all requests being read at once, together; past it new bytes are refused as retryable. */
const MAX_INFLIGHT_BODY_BYTES = 128 * MIB;

/** Counts the bytes of request bodies held in memory across every request of one receiver. */
class InflightBytes {
  total = 0;
}

/**
 * Reads the body up to the limit; a larger body is refused without reading it
 * all, and so is any body while the receiver holds too many bytes of others.
 * The bytes count as held until `release` (after the request is handled).
 */
function readBody(req: IncomingMessage, inflight: InflightBytes): Promise<{ body: Buffer; release: () => void }> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const release = (): void => {
      inflight.total -= size;
      size = 0;
    };
    const refuse = (refusal: HttpRefusal): void => {
      req.removeAllListeners('data');
      req.pause();
      release();
      reject(refusal);
    };
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      inflight.total += chunk.length;
      if (size > MAX_BODY_BYTES) {
        refuse(new HttpRefusal(413, GRPC_RESOURCE_EXHAUSTED, `request body exceeds ${MAX_BODY_BYTES / MIB} MiB`));
        return;
      }
      if (inflight.total > MAX_INFLIGHT_BODY_BYTES) {
        refuse(new HttpRefusal(503, GRPC_UNAVAILABLE, `collector is reading ${MAX_INFLIGHT_BODY_BYTES / MIB} MiB of other requests; retry later`));
        return;
      }
      chunks.push(chunk);
    });
    req.on('end', () => resolve({ body: Buffer.concat(chunks, size), release }));
    req.on('error', (err) => {
      release();
      reject(err);
    });
  });
}

/** How long a refused request may go on sending the body we will not read before its connection is closed. */
const LINGER_MS = 5_000;

/**
 * A refused body may be half sent. Closing the socket at once would make the kernel answer the
 * client's unread bytes with a reset, and a reset can discard our answer before the client reads
 * it (seen with a 17 MiB upload refused 503). So read and drop the rest, which keeps the
 * connection's framing intact, and close it if the client has not finished within LINGER_MS.
 */
function discardRemainder(req: IncomingMessage): void {
  const linger = setTimeout(() => req.socket.destroy(), LINGER_MS);
  linger.unref();
  const stop = (): void => clearTimeout(linger);
  req.once('end', stop);
  req.once('close', stop);
  req.resume();
}

async function decompress(body: Buffer, contentEncoding: string): Promise<Buffer> {
  if (contentEncoding === '' || contentEncoding === 'identity') return body;
  try {
    if (contentEncoding === 'gzip' || contentEncoding === 'x-gzip') return await gunzipAsync(body, { maxOutputLength: MAX_BODY_BYTES });
    return await inflateAsync(body, { maxOutputLength: MAX_BODY_BYTES });
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new HttpRefusal(413, GRPC_RESOURCE_EXHAUSTED, `decompressed request body exceeds ${MAX_BODY_BYTES / MIB} MiB`);
    }
    throw new HttpRefusal(400, GRPC_INVALID_ARGUMENT, `invalid ${contentEncoding} body: ${errorMessage(err)}`);
  }
}

export interface OtlpHttpReceiverOptions {
  host: string;
  port: number;
  log: (message: string) => void;
  /** A request (head and body) must arrive within this; slower ones get 408. */
  requestTimeoutMs: number;
}

/** OTLP/HTTP: POST /v1/traces and /v1/metrics, protobuf or JSON, optionally gzip or deflate. */
export class OtlpHttpReceiver {
  readonly stats: ReceiverStats = newReceiverStats();
  readonly #server: Server;
  readonly #pipeline: IngestPipeline;
  readonly #options: OtlpHttpReceiverOptions;
  readonly #inflight = new InflightBytes();

  constructor(pipeline: IngestPipeline, options: OtlpHttpReceiverOptions) {
    this.#pipeline = pipeline;
    this.#options = options;
    this.#server = createServer(
      { requestTimeout: options.requestTimeoutMs, headersTimeout: 10_000, keepAliveTimeout: 10_000, maxHeaderSize: 16 * 1024 },
      (req, res) => {
        this.#handle(req, res).catch((err: unknown) => {
          this.#options.log(`OTLP/HTTP request failed: ${errorMessage(err)}`);
          if (!res.headersSent) replyError(res, 500, 'json', GRPC_INTERNAL, `internal error: ${errorMessage(err)}`);
          else res.destroy();
        });
      },
    );
  }

  get port(): number {
    return (this.#server.address() as AddressInfo | null)?.port ?? 0;
  }

  /** Bytes of request bodies held in memory right now. */
  get inflightBodyBytes(): number {
    return this.#inflight.total;
  }

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const path = (req.url ?? '/').split('?')[0] as string;
    const signal = SIGNAL_PATHS.get(path);
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]!.trim().toLowerCase();
    const encoding = CONTENT_TYPES.get(mediaType);
    const answerIn: BodyEncoding = encoding ?? 'json';
    try {
      if (signal === undefined) {
        throw new HttpRefusal(404, GRPC_INVALID_ARGUMENT, `no OTLP endpoint at ${path}; use /v1/traces or /v1/metrics`);
      }
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        throw new HttpRefusal(405, GRPC_INVALID_ARGUMENT, `${req.method ?? ''} is not allowed on ${path}; use POST`);
      }
      if (encoding === undefined) {
        throw new HttpRefusal(415, GRPC_INVALID_ARGUMENT, `unsupported content type '${mediaType}'; use application/x-protobuf or application/json`);
      }
      const contentEncoding = (req.headers['content-encoding'] ?? '').trim().toLowerCase();
      if (!['', 'identity', 'gzip', 'x-gzip', 'deflate'].includes(contentEncoding)) {
        throw new HttpRefusal(415, GRPC_INVALID_ARGUMENT, `unsupported content encoding '${contentEncoding}'; use gzip, deflate or none`);
      }
      const declared = Number(req.headers['content-length'] ?? 0);
      if (declared > MAX_BODY_BYTES) {
        throw new HttpRefusal(413, GRPC_RESOURCE_EXHAUSTED, `request body of ${declared} bytes exceeds ${MAX_BODY_BYTES / MIB} MiB`);
      }
      const { body: raw, release } = await readBody(req, this.#inflight);
      let outcome;
      try {
        outcome = handleExport(this.#pipeline, this.stats, signal, encoding, await decompress(raw, contentEncoding));
      } finally {
        release();
      }
      switch (outcome.status) {
        case 'ok':
          reply(res, 200, encoding, exportResponseBody(signal, encoding, outcome.rejected, outcome.message));
          return;
        case 'invalid':
          replyError(res, 400, encoding, GRPC_INVALID_ARGUMENT, outcome.message);
          return;
        case 'unavailable':
          replyError(res, 503, encoding, GRPC_UNAVAILABLE, outcome.message, { 'retry-after': String(outcome.retryAfterSeconds) });
          return;
      }
    } catch (err) {
      if (!(err instanceof HttpRefusal)) throw err;
      const headers: Record<string, string> = err.status === 503 ? { 'retry-after': '1' } : {};
      replyError(res, err.status, answerIn, err.grpcCode, err.message, headers);
      if (!req.complete) res.on('finish', () => discardRemainder(req));
    }
  }

  async start(): Promise<void> {
    await new Promise<void>((resolve, reject) => {
      this.#server.once('error', (err) => reject(new Error(`OTLP/HTTP cannot listen on ${this.#options.host}:${this.#options.port}: ${err.message}`)));
      this.#server.listen(this.#options.port, this.#options.host, () => resolve());
    });
  }

  /** Stops accepting, lets requests in flight finish for up to `graceMs`. Safe twice and before start. */
  async shutdown(graceMs: number): Promise<void> {
    if (!this.#server.listening) return;
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#server.closeAllConnections();
        resolve();
      }, graceMs);
      force.unref();
      this.#server.close(() => {
        clearTimeout(force);
        resolve();
      });
      this.#server.closeIdleConnections();
    });
  }
}
