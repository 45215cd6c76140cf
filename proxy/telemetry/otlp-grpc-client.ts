/**
 * Unary gRPC calls over node:http2, for the proxy's OTLP exporters (spans
 * and metrics). Why not @grpc/grpc-js: it costs about 7 MB of resident
 * memory in every sidecar, copies each message once more to frame it, and
 * brings channels, resolvers, retries and keepalive that an exporter sending
 * one batch at a time does not use. A unary call is one HTTP/2 POST:
 *
 *   :path /package.Service/Method, content-type: application/grpc, te: trailers
 *   body: 0 (uncompressed), uint32 BE length, the message
 *   answer: :status 200, the response message, trailers with grpc-status
 *   (or a trailers-only answer: grpc-status in the headers)
 *
 * One session per client, opened on the first call and again after it closed
 * or failed. The session holds the event loop only while a call is out, so an
 * idle exporter never keeps the process alive. Every call has a deadline
 * (sent as grpc-timeout and enforced here) and a bound on the answer's size.
 */
import * as http2 from 'node:http2';
import { TracemeshError, errorMessage } from '../../src/lib/errors.js';
import { grpcStatusOfHttp } from '../http2/grpc.js';

/** gRPC status codes the client produces itself (others come from the server). */
export const GRPC_OK = 0;
export const GRPC_UNKNOWN = 2;
export const GRPC_DEADLINE_EXCEEDED = 4;
export const GRPC_RESOURCE_EXHAUSTED = 8;
export const GRPC_INTERNAL = 13;
export const GRPC_UNAVAILABLE = 14;

/** A call that did not succeed: `grpcStatus` is the server's grpc-status or the one the failure maps to. */
export class GrpcCallError extends TracemeshError {
  constructor(
    readonly grpcStatus: number,
    message: string,
    options?: { cause?: unknown },
  ) {
    super('TM_ERR_TELEMETRY_EXPORT', message, options);
    this.name = 'GrpcCallError';
  }
}

export interface GrpcUnaryClientOptions {
  /** `http://host:port` (h2c) or `https://host:port` (TLS, ALPN h2). */
  readonly url: string;
  /** A response message longer than this fails the call (an export answer is a few bytes). */
  readonly maxResponseBytes?: number;
}

const DEFAULT_MAX_RESPONSE_BYTES = 1024 * 1024;
/** close() waits this long for the session to close on its own before destroying it. */
const CLOSE_GRACE_MS = 1000;
const GRPC_PREFIX_BYTES = 5;
const USER_AGENT = 'tracemesh-proxy';

const {
  HTTP2_HEADER_METHOD,
  HTTP2_HEADER_PATH,
  HTTP2_HEADER_STATUS,
  HTTP2_HEADER_CONTENT_TYPE,
  HTTP2_HEADER_TE,
  HTTP2_HEADER_USER_AGENT,
  NGHTTP2_CANCEL,
} = http2.constants;

function headerText(value: string | string[] | number | undefined): string | undefined {
  if (value === undefined) return undefined;
  return Array.isArray(value) ? value[0] : String(value);
}

/** grpc-message is percent-encoded; a malformed encoding is shown as received. */
function decodeGrpcMessage(raw: string): string {
  try {
    return decodeURIComponent(raw);
  } catch {
    return raw;
  }
}

/** The state of one call: what the server said so far, and how to settle it once. */
class UnaryCall {
  httpStatus = 0;
  grpcStatus: string | undefined = undefined;
  grpcMessage = '';
  received = 0;
  readonly chunks: Buffer[] = [];
  settled = false;
  timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    readonly client: GrpcUnaryClient,
    readonly stream: http2.ClientHttp2Stream,
    readonly resolve: (message: Buffer) => void,
    readonly reject: (err: GrpcCallError) => void,
    readonly maxResponseBytes: number,
  ) {}

  fail(err: GrpcCallError): void {
    if (this.settled) return;
    this.settle();
    this.reject(err);
  }

  succeed(message: Buffer): void {
    if (this.settled) return;
    this.settle();
    this.resolve(message);
  }

  private settle(): void {
    this.settled = true;
    clearTimeout(this.timer);
    if (!this.stream.closed) this.stream.close(NGHTTP2_CANCEL);
    this.client.callEnded();
  }

  onHeaders(headers: http2.IncomingHttpHeaders & http2.IncomingHttpStatusHeader): void {
    this.httpStatus = Number(headers[HTTP2_HEADER_STATUS] ?? 0);
    this.readStatus(headers);
  }

  readStatus(fields: http2.IncomingHttpHeaders): void {
    const status = headerText(fields['grpc-status']);
    if (status !== undefined) {
      this.grpcStatus = status;
      this.grpcMessage = decodeGrpcMessage(headerText(fields['grpc-message']) ?? '');
    }
  }

  onData(chunk: Buffer): void {
    if (this.settled) return;
    this.received += chunk.length;
    if (this.received > this.maxResponseBytes + GRPC_PREFIX_BYTES) {
      this.fail(new GrpcCallError(GRPC_RESOURCE_EXHAUSTED, `answer larger than ${this.maxResponseBytes} bytes`));
      return;
    }
    this.chunks.push(chunk);
  }

  /** The stream is over: decide from the status and the body. */
  onClose(): void {
    if (this.settled) return;
    if (this.grpcStatus === undefined) {
      if (this.httpStatus === 0) {
        const why = this.client.lastError === undefined ? 'connection closed' : errorMessage(this.client.lastError);
        this.fail(new GrpcCallError(GRPC_UNAVAILABLE, `no answer: ${why}`, { cause: this.client.lastError }));
      } else if (this.httpStatus !== 200) {
        this.fail(new GrpcCallError(grpcStatusOfHttp(this.httpStatus), `HTTP status ${this.httpStatus} without grpc-status`));
      } else {
        this.fail(new GrpcCallError(GRPC_INTERNAL, 'the answer ended without grpc-status'));
      }
      return;
    }
    const code = Number(this.grpcStatus);
    if (code !== GRPC_OK) {
      const known = Number.isInteger(code) && code > 0 && code <= 16 ? code : GRPC_UNKNOWN;
      this.fail(new GrpcCallError(known, `grpc-status ${this.grpcStatus}${this.grpcMessage === '' ? '' : `: ${this.grpcMessage}`}`));
      return;
    }
    const body = this.chunks.length === 1 ? (this.chunks[0] as Buffer) : Buffer.concat(this.chunks);
    if (body.length === 0) {
      this.succeed(body); // an OK answer may carry no message
      return;
    }
    if (body.length < GRPC_PREFIX_BYTES || body[0] !== 0) {
      this.fail(new GrpcCallError(GRPC_INTERNAL, body.length < GRPC_PREFIX_BYTES ? 'truncated answer' : 'compressed answer (none was asked for)'));
      return;
    }
    const length = body.readUInt32BE(1);
    if (GRPC_PREFIX_BYTES + length > body.length) {
      this.fail(new GrpcCallError(GRPC_INTERNAL, 'truncated answer'));
      return;
    }
    this.succeed(body.subarray(GRPC_PREFIX_BYTES, GRPC_PREFIX_BYTES + length));
  }
}

export class GrpcUnaryClient {
  private readonly url: string;
  private readonly maxResponseBytes: number;
  private session: http2.ClientHttp2Session | undefined = undefined;
  private active = 0;
  private closed = false;
  /** The longest deadline of any call made, to bound close() while calls are out. */
  private longestDeadlineMs = 0;
  private lastFailure: Error | undefined = undefined;

  constructor(options: GrpcUnaryClientOptions) {
    this.url = options.url;
    this.maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  }

  /** Why the last session failed (until a new one connects), for the message of calls it took down. */
  get lastError(): Error | undefined {
    return this.lastFailure;
  }

  /** Calls sent and not yet settled. */
  get callsInFlight(): number {
    return this.active;
  }

  /** Whether a session is open for the next call (false before the first call and after the session closed or was told to go away). */
  get connected(): boolean {
    const s = this.session;
    return s !== undefined && !s.closed && !s.destroyed;
  }

  /**
   * Sends `message` (the concatenation of `parts`, already protobuf) to
   * `path`; resolves with the response message, rejects with a GrpcCallError.
   */
  call(path: string, parts: readonly Buffer[], timeoutMs: number): Promise<Buffer> {
    return new Promise<Buffer>((resolve, reject) => {
      if (this.closed) {
        reject(new GrpcCallError(GRPC_UNAVAILABLE, 'the exporter is shut down'));
        return;
      }
      let length = 0;
      for (const part of parts) length += part.length;
      const prefix = Buffer.allocUnsafe(GRPC_PREFIX_BYTES);
      prefix[0] = 0;
      prefix.writeUInt32BE(length, 1);
      let stream: http2.ClientHttp2Stream;
      try {
        stream = this.connect().request({
          [HTTP2_HEADER_METHOD]: 'POST',
          [HTTP2_HEADER_PATH]: path,
          [HTTP2_HEADER_CONTENT_TYPE]: 'application/grpc',
          [HTTP2_HEADER_TE]: 'trailers',
          [HTTP2_HEADER_USER_AGENT]: USER_AGENT,
          'grpc-timeout': `${Math.max(1, Math.ceil(timeoutMs))}m`,
        });
      } catch (err) {
        reject(new GrpcCallError(GRPC_UNAVAILABLE, `cannot start the call: ${errorMessage(err)}`, { cause: err }));
        return;
      }
      this.callStarted();
      if (timeoutMs > this.longestDeadlineMs) this.longestDeadlineMs = timeoutMs;
      const call = new UnaryCall(this, stream, resolve, reject, this.maxResponseBytes);
      call.timer = setTimeout(() => call.fail(new GrpcCallError(GRPC_DEADLINE_EXCEEDED, `no answer within ${timeoutMs} ms`)), timeoutMs);
      call.timer.unref();
      stream.on('response', (headers) => call.onHeaders(headers));
      stream.on('trailers', (trailers) => call.readStatus(trailers));
      stream.on('data', (chunk: Buffer) => call.onData(chunk));
      stream.on('error', (err: Error) => call.fail(new GrpcCallError(GRPC_UNAVAILABLE, errorMessage(err), { cause: err })));
      stream.on('close', () => call.onClose());
      stream.write(prefix);
      for (const part of parts) stream.write(part);
      stream.end();
    });
  }

  /**
   * Closes the session once the calls out have ended (their deadlines bound
   * that), or destroys it if it has not closed `graceMs` after the last call
   * settled. Safe twice.
   */
  close(graceMs = CLOSE_GRACE_MS): Promise<void> {
    this.closed = true;
    const session = this.session;
    this.session = undefined;
    if (session === undefined || session.closed || session.destroyed) return Promise.resolve();
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        session.destroy();
        resolve();
      }, graceMs + (this.active > 0 ? this.longestDeadlineMs : 0));
      timer.unref();
      // An idle session is unref'd (it must not hold the process open), and so is the timer:
      // without a ref here nothing keeps the event loop alive while the close is under way, and a
      // process awaiting this close (the proxy's stop) would exit with 13 instead. The timer bounds it.
      session.ref();
      session.close(() => {
        clearTimeout(timer);
        resolve();
      });
    });
  }

  /** @internal UnaryCall's bookkeeping: the session holds the event loop only while calls are out. */
  callEnded(): void {
    this.active--;
    if (this.active === 0) this.session?.unref();
  }

  private callStarted(): void {
    this.active++;
    this.session?.ref();
  }

  private connect(): http2.ClientHttp2Session {
    const current = this.session;
    if (current !== undefined && !current.closed && !current.destroyed) return current;
    const session = http2.connect(this.url, { settings: { enablePush: false } });
    const forget = (): void => {
      if (this.session === session) this.session = undefined;
    };
    session.on('error', (err: Error) => {
      this.lastFailure = err;
      forget();
    });
    session.on('connect', () => {
      this.lastFailure = undefined;
    });
    // The server is going away: no new calls on this session; the ones out finish, then it closes.
    session.on('goaway', () => {
      forget();
      if (!session.closed) session.close();
    });
    session.on('close', forget);
    session.unref();
    this.session = session;
    return session;
  }
}
