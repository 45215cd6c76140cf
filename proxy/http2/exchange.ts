/**
 * One downstream HTTP/2 stream forwarded to one upstream stream: route by
 * :authority, pick an endpoint, open a stream on the endpoint's pooled
 * session, then relay headers, data (piped both ways, so HTTP/2 flow control
 * on one side throttles the other) and trailers. Failures become the wire
 * answer of errors-to-wire.ts and a flag on the observation; the observation
 * is finished exactly once, when the downstream stream closes.
 *
 * Stream events go to module-level listeners that find their exchange on
 * the stream (no closures per stream on this path).
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { errorMessage } from '../../src/lib/errors.js';
import type { Cluster, ClusterEndpoint } from '../clusters/types.js';
import { wireError, type ResponseFlag, type WireError } from '../errors-to-wire.js';
import type { HttpDirection } from '../http-direction.js';
import type { ProxyLimits } from '../limits.js';
import { finishHttpObservation, HttpObservation, setPeers } from '../telemetry/http-observation.js';
import type { Telemetry, WorkloadIdentity } from '../telemetry/telemetry.js';
import { grpcErrorHeaders, httpErrorAnswer } from './error-answer.js';
import { isGrpcContentType, parseGrpcStatus, parseGrpcTimeout, splitRpcPath } from './grpc.js';
import {
  headerValue,
  parseAuthority,
  peerOf,
  relayedHeaders,
  requestIdOf,
  traceContextOf,
  upstreamRequestHeaders,
  type UpstreamRequestOptions,
} from './request-headers.js';
import { checkRequestLimits } from './request-limits.js';
import type { Http2SessionPool, UpstreamSession } from './session-pool.js';

const { NGHTTP2_CANCEL, NGHTTP2_FLAG_END_STREAM, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = constants;

/** What every exchange of one HTTP/2 handler shares, built once. */
export interface Http2Context {
  readonly direction: HttpDirection;
  readonly telemetry: Telemetry;
  readonly limits: ProxyLimits;
  readonly pool: Http2SessionPool;
  /** How the upstream request's own fields are written (tracing, peer metadata), fixed per direction. */
  readonly requestOptions: UpstreamRequestOptions;
}

export function http2Context(direction: HttpDirection, telemetry: Telemetry, limits: ProxyLimits, pool: Http2SessionPool): Http2Context {
  const requestOptions: UpstreamRequestOptions = {
    rewriteTraceContext: telemetry.tracing,
    self: direction.direction === 'outbound' ? telemetry.identity : undefined,
  };
  return { direction, telemetry, limits, pool, requestOptions };
}

/** The downstream connection a stream arrived on. */
export interface DownstreamPeer {
  readonly clientAddress: string;
  readonly clientPort: number;
  /** Where the client was going (transparent capture, CONNECT tunnel), tried when the authority names no service. */
  readonly originalTarget: { readonly host: string; readonly port: number } | undefined;
  streamStarted(): void;
  streamEnded(): void;
  /** A stream saw no traffic for streamIdleTimeoutMs (the connection may be what is stuck). */
  streamIdle(): void;
}

const NO_PEER: WorkloadIdentity = { service: '', namespace: '', version: '' };
const NO_AUTHORITY = { host: '', port: 0 };

const EXCHANGE = Symbol('tracemesh.h2.exchange');
type Tagged<T> = T & { [EXCHANGE]?: Exchange };

function exchangeOf(stream: ServerHttp2Stream | ClientHttp2Stream): Exchange | undefined {
  return (stream as Tagged<ServerHttp2Stream | ClientHttp2Stream>)[EXCHANGE];
}

/** Which deadline the exchange's timer enforces. */
const enum Deadline {
  None = 0,
  /** requestTimeoutMs, from the end of the request to the response head. */
  ResponseHead = 1,
  /** grpc-timeout, from the start of the call to its end. */
  Call = 2,
}

class Exchange {
  readonly obs: HttpObservation;
  readonly isGrpc: boolean;
  upstream: ClientHttp2Stream | undefined = undefined;
  upstreamSession: UpstreamSession | undefined = undefined;
  cluster: Cluster | undefined = undefined;
  endpoint: ClusterEndpoint | undefined = undefined;
  /** Trailers for the downstream's 'wantTrailers': the upstream's, or the proxy's error trailers. */
  responseTrailers: OutgoingHttpHeaders | undefined = undefined;
  requestTrailers: OutgoingHttpHeaders | undefined = undefined;
  /** The upstream's last error, for the flag's detail. */
  upstreamError = '';
  /** The upstream's response ended normally (END_STREAM seen and read). */
  upstreamEnded = false;
  /** The downstream has everything it will get (END_STREAM sent or about to be). */
  responseDone = false;
  /** A flag ended the exchange; later failures add nothing. */
  failed = false;
  finished = false;
  timer: NodeJS.Timeout | undefined = undefined;
  timerKind = Deadline.None;
  /** grpc-timeout in ms, or -1. */
  readonly callDeadlineMs: number;
  /** Tracing on: continue the caller's context and send this span upstream; off: trace fields pass untouched. */
  readonly tracing: boolean;

  constructor(
    readonly ctx: Http2Context,
    readonly peer: DownstreamPeer,
    readonly downstream: ServerHttp2Stream,
    readonly headers: IncomingHttpHeaders,
    /** The request's HEADERS ended the stream: no body follows. */
    readonly endAfterHeaders: boolean,
  ) {
    this.isGrpc = isGrpcContentType(headerValue(headers, 'content-type'));
    const direction = ctx.direction;
    this.tracing = ctx.telemetry.tracing;
    const incoming = this.tracing ? traceContextOf(headers) : undefined;
    const obs = new HttpObservation(direction.direction, direction.spanKind, this.isGrpc ? 'grpc' : 'http2', incoming);
    this.obs = obs;
    obs.method = headerValue(headers, ':method') ?? '';
    obs.scheme = headerValue(headers, ':scheme') ?? 'http';
    const path = headerValue(headers, ':path') ?? '';
    const q = path.indexOf('?');
    obs.path = q === -1 ? path : path.slice(0, q);
    obs.query = q === -1 ? '' : path.slice(q + 1);
    obs.userAgent = headerValue(headers, 'user-agent') ?? '';
    obs.requestId = requestIdOf(headers);
    obs.clientAddress = peer.clientAddress;
    obs.clientPort = peer.clientPort;
    if (this.isGrpc) {
      const rpc = splitRpcPath(path);
      if (rpc !== undefined) {
        obs.rpcService = rpc.service;
        obs.rpcMethod = rpc.method;
      }
    }
    setPeers(obs, ctx.telemetry.identity, direction.direction === 'inbound' ? peerOf(headers) : NO_PEER);
    this.callDeadlineMs = this.isGrpc ? (parseGrpcTimeout(headerValue(headers, 'grpc-timeout')) ?? -1) : -1;

    // The stream's 'error' listener is the handler's, attached before anything else (see forwardStream).
    (downstream as Tagged<ServerHttp2Stream>)[EXCHANGE] = this;
    downstream.on('data', onDownstreamData);
    downstream.on('trailers', onDownstreamTrailers);
    downstream.on('end', onDownstreamEnd);
    downstream.on('wantTrailers', onDownstreamWantTrailers);
    downstream.once('close', onDownstreamClose);
    if (ctx.limits.streamIdleTimeoutMs > 0) {
      downstream.setTimeout(ctx.limits.streamIdleTimeoutMs);
      downstream.on('timeout', onDownstreamIdle);
    }
    peer.streamStarted();
  }

  /** Routes and opens the upstream stream, or answers with the reason it cannot. */
  start(rawHeaders: readonly string[]): void {
    const obs = this.obs;
    const refusal = checkRequestLimits(rawHeaders, (headerValue(this.headers, ':path') ?? '').length, this.ctx.limits);
    if (refusal !== undefined) {
      this.failWith(refusal);
      return;
    }
    // No authority at all is legal (RFC 9113 §8.3.1): it then names nothing, which inbound does not need.
    const authority = headerValue(this.headers, ':authority') ?? headerValue(this.headers, 'host') ?? '';
    const hostPort = authority === '' ? NO_AUTHORITY : parseAuthority(authority);
    if (hostPort === undefined) {
      this.fail('DPE', `malformed :authority "${authority}"`);
      return;
    }
    obs.host = hostPort.host;
    obs.port = hostPort.port;
    const direction = this.ctx.direction;
    let target = direction.route(hostPort.host, hostPort.port);
    const original = this.peer.originalTarget;
    if (target === undefined && original !== undefined) target = direction.route(original.host, original.port);
    if (target === undefined) {
      this.fail('NR', `${hostPort.host}:${hostPort.port}`);
      return;
    }
    const cluster = target.cluster;
    obs.routeName = target.routeName;
    if (obs.direction === 'outbound') {
      obs.destinationService = cluster.service;
      obs.destinationNamespace = cluster.namespace;
    }
    const endpoint = cluster.pick();
    if (endpoint === undefined) {
      this.fail('UH', cluster.name);
      return;
    }
    obs.upstreamAddress = endpoint.address;
    obs.upstreamPort = endpoint.port;
    if (obs.direction === 'outbound') obs.destinationVersion = endpoint.version;
    this.cluster = cluster;
    this.endpoint = endpoint;
    cluster.onRequestStart(endpoint);

    const outgoing = upstreamRequestHeaders(this.headers, obs, this.ctx.requestOptions);
    const down = this.downstream;
    const endStream = this.endAfterHeaders;
    let up: ClientHttp2Stream;
    try {
      const session = this.ctx.pool.session(endpoint);
      this.upstreamSession = session;
      up = session.request(outgoing, endStream);
    } catch (err) {
      // node validated the downstream's headers already, so a throw here is the
      // session refusing streams (going away, closed) or the pool being closed.
      this.fail('UF', errorMessage(err));
      return;
    }
    this.upstream = up;
    (up as Tagged<ClientHttp2Stream>)[EXCHANGE] = this;
    up.on('error', onUpstreamError);
    up.once('response', onUpstreamResponse);
    up.on('headers', onUpstreamInformational);
    up.on('data', onUpstreamData);
    up.once('trailers', onUpstreamTrailers);
    up.once('end', onUpstreamEnd);
    up.on('wantTrailers', onUpstreamWantTrailers);
    up.once('close', onUpstreamClose);

    if (this.callDeadlineMs >= 0) this.arm(Deadline.Call, this.callDeadlineMs);
    else if (endStream) this.armResponseHead();
    if (!endStream) down.pipe(up);
  }

  arm(kind: Deadline, ms: number): void {
    this.timerKind = kind;
    this.timer = setTimeout(onDeadline, ms, this);
    this.timer.unref();
  }

  /** requestTimeoutMs runs from the end of the request (a streaming upload may take as long as it needs). */
  armResponseHead(): void {
    const ms = this.ctx.limits.requestTimeoutMs;
    if (ms <= 0 || this.timerKind !== Deadline.None || this.upstream === undefined || this.failed || this.finished) return;
    if (!this.downstream.headersSent) this.arm(Deadline.ResponseHead, ms);
  }

  clearDeadline(): void {
    if (this.timer !== undefined) clearTimeout(this.timer);
    this.timer = undefined;
    this.timerKind = Deadline.None;
  }

  /** The downstream has its whole response: no deadline applies any more. */
  responseComplete(): void {
    this.responseDone = true;
    this.clearDeadline();
  }

  /** Relays the upstream's response head; the body and trailers follow through the pipe. */
  respond(headers: IncomingHttpHeaders, endOfStream: boolean): void {
    if (this.timerKind === Deadline.ResponseHead) this.clearDeadline();
    const down = this.downstream;
    const up = this.upstream;
    if (this.failed || up === undefined || down.destroyed || down.closed) return;
    const obs = this.obs;
    const status = Number(headers[':status']);
    obs.statusCode = status;
    const grpcStatus = parseGrpcStatus(headers['grpc-status']);
    if (grpcStatus >= 0) obs.grpcStatus = grpcStatus; // trailers-only response
    const bodyless = endOfStream || obs.method === 'HEAD' || status === 204 || status === 205 || status === 304;
    try {
      down.respond(relayedHeaders(headers), { endStream: bodyless, waitForTrailers: !bodyless });
    } catch (err) {
      obs.statusCode = 0;
      this.fail('UPE', errorMessage(err));
      return;
    }
    if (bodyless) {
      this.responseComplete();
      up.resume(); // nothing should follow; drain whatever does so the stream can close
    } else {
      up.pipe(down);
    }
  }

  /**
   * Ends the exchange with a flag: cancels the upstream stream and tells the
   * downstream, as far as it can still be told.
   */
  fail(flag: ResponseFlag, detail: string): void {
    if (!this.failed && !this.finished) this.failWith(wireError(flag, detail));
  }

  failWith(err: WireError): void {
    if (this.failed || this.finished) return;
    this.failed = true;
    const obs = this.obs;
    obs.addFlag(err.flag, err.message);
    this.clearDeadline();
    const up = this.upstream;
    if (up !== undefined) {
      up.unpipe(this.downstream);
      if (!up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
    }
    const down = this.downstream;
    if (down.destroyed || down.closed) return;
    if (up !== undefined) down.unpipe(up);
    try {
      if (!down.headersSent) this.answer(err);
      else if (this.responseDone) {
        // Everything was sent; only the request side is still open: stop it without error (RFC 9113 §8.1).
        down.close(NGHTTP2_NO_ERROR);
      } else if (this.isGrpc && !this.upstreamEnded && !down.writableEnded) {
        // Headers went out: the status travels in trailers, which gRPC clients read as this status.
        this.responseTrailers = grpcErrorHeaders(err, false);
        obs.grpcStatus = err.grpcStatus;
        down.end();
      } else {
        down.close(NGHTTP2_INTERNAL_ERROR);
      }
    } catch {
      // The stream went away between the checks and the write: nothing left to tell.
      if (!down.destroyed) down.destroy();
    }
  }

  /** The proxy's own answer, before any response head went out. */
  private answer(err: WireError): void {
    const down = this.downstream;
    const obs = this.obs;
    if (this.isGrpc) {
      obs.statusCode = 200;
      obs.grpcStatus = err.grpcStatus;
      down.respond(grpcErrorHeaders(err, true), { endStream: true });
    } else {
      const { headers, body } = httpErrorAnswer(err);
      obs.statusCode = err.httpStatus;
      if (obs.method === 'HEAD') down.respond(headers, { endStream: true });
      else {
        down.respond(headers);
        obs.responseBytes += body.length;
        down.end(body);
      }
    }
    this.responseDone = true;
    // The caller may still be sending a body nobody will read: reset its side
    // once the answer is flushed (close() waits for the writable side to finish).
    if (!this.endAfterHeaders && !down.readableEnded) down.close(NGHTTP2_NO_ERROR);
  }

  /** Called once, when the downstream stream has closed. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    this.clearDeadline();
    const up = this.upstream;
    if (up !== undefined && !up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
    const obs = this.obs;
    if (this.cluster !== undefined && this.endpoint !== undefined) {
      this.cluster.onRequestEnd(this.endpoint, upstreamFailure(obs));
    }
    this.peer.streamEnded();
    finishHttpObservation(this.ctx.telemetry, obs);
  }
}

/** What the endpoint's books record as a failure: the upstream's fault, not the caller's. */
function upstreamFailure(obs: HttpObservation): string | undefined {
  for (const flag of obs.flags) {
    if (flag === 'UF' || flag === 'UC' || flag === 'UT' || flag === 'UPE') return obs.errorMessage;
  }
  if (obs.statusCode >= 500) return `HTTP ${obs.statusCode}`;
  return undefined;
}

// Downstream stream events (`this` is the server stream).

function onDownstreamData(this: ServerHttp2Stream, chunk: Buffer): void {
  const ex = exchangeOf(this);
  if (ex !== undefined) ex.obs.requestBytes += chunk.length;
}

function onDownstreamTrailers(this: ServerHttp2Stream, trailers: IncomingHttpHeaders): void {
  const ex = exchangeOf(this);
  if (ex !== undefined) ex.requestTrailers = relayedHeaders(trailers);
}

function onDownstreamEnd(this: ServerHttp2Stream): void {
  exchangeOf(this)?.armResponseHead();
}

function onDownstreamWantTrailers(this: ServerHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.responseComplete();
  try {
    this.sendTrailers(ex.responseTrailers ?? {});
  } catch {
    // Closed meanwhile: 'close' reports it.
  }
}

function onDownstreamIdle(this: ServerHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.fail('SI', `no data for ${ex.ctx.limits.streamIdleTimeoutMs} ms`);
  // Also when the exchange had already failed: a stream that cannot even be reset means a stuck session.
  ex.peer.streamIdle();
}

function onDownstreamClose(this: ServerHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  if (!ex.responseDone && !ex.failed) {
    const code = this.rstCode;
    ex.fail('DC', code === undefined || code === NGHTTP2_NO_ERROR ? 'stream closed' : `stream reset (code ${code})`);
  }
  ex.finish();
}

// Upstream stream events (`this` is the client stream).

function onUpstreamError(this: ClientHttp2Stream, err: Error): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  // A stream cancelled with its session carries the session's error as the cause.
  const cause = (err as { cause?: unknown }).cause;
  ex.upstreamError = cause instanceof Error ? cause.message : err.message;
}

function onUpstreamResponse(this: ClientHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
  // endAfterHeaders is set only after 'response' is emitted: the frame's flags say it now.
  exchangeOf(this)?.respond(headers, (flags & NGHTTP2_FLAG_END_STREAM) !== 0);
}

function onUpstreamInformational(this: ClientHttp2Stream, headers: IncomingHttpHeaders): void {
  const ex = exchangeOf(this);
  if (ex === undefined || ex.failed || ex.downstream.headersSent || ex.downstream.closed) return;
  try {
    ex.downstream.additionalHeaders(relayedHeaders(headers));
  } catch {
    // A 1xx the downstream cannot take (e.g. 101) is dropped; the final response follows.
  }
}

function onUpstreamData(this: ClientHttp2Stream, chunk: Buffer): void {
  const ex = exchangeOf(this);
  if (ex !== undefined) ex.obs.responseBytes += chunk.length;
}

function onUpstreamTrailers(this: ClientHttp2Stream, trailers: IncomingHttpHeaders): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.responseTrailers = relayedHeaders(trailers);
  const grpcStatus = parseGrpcStatus(trailers['grpc-status']);
  if (grpcStatus >= 0) ex.obs.grpcStatus = grpcStatus;
}

function onUpstreamEnd(this: ClientHttp2Stream): void {
  const ex = exchangeOf(this);
  // A stream destroyed with its session (socket lost) also ends its readable
  // side, without an error when the session closed cleanly: only an end seen
  // while the stream is intact is the upstream's END_STREAM.
  if (ex !== undefined && !this.destroyed) ex.upstreamEnded = true;
}

function onUpstreamWantTrailers(this: ClientHttp2Stream): void {
  const ex = exchangeOf(this);
  try {
    this.sendTrailers(ex?.requestTrailers ?? {});
  } catch {
    // Closed meanwhile: 'close' reports it.
  }
}

function onUpstreamClose(this: ClientHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined || ex.finished) return;
  if (ex.upstreamEnded) {
    // The response is complete; a request body still arriving has nowhere to go.
    if (!ex.downstream.readableEnded) ex.downstream.resume();
    return;
  }
  if (ex.failed) return;
  const session = ex.upstreamSession;
  const connected = session !== undefined && session.connected;
  const code = this.rstCode;
  let detail = ex.upstreamError;
  if (detail === '' && session !== undefined) detail = session.failure;
  if (detail === '') detail = code === undefined || code === NGHTTP2_NO_ERROR ? 'stream closed' : `stream reset (code ${code})`;
  ex.fail(connected ? 'UC' : 'UF', detail);
}

function onDeadline(ex: Exchange): void {
  ex.timer = undefined;
  const call = ex.timerKind === Deadline.Call;
  ex.timerKind = Deadline.None;
  ex.fail('UT', call ? `grpc-timeout of ${ex.callDeadlineMs} ms exceeded` : `no response within ${ex.ctx.limits.requestTimeoutMs} ms`);
}

/**
 * Takes one downstream stream from 'stream' to its end. The caller has
 * given the stream its 'error' listener already (the outcome is read on
 * 'close': rstCode, what was sent).
 */
export function forwardStream(
  ctx: Http2Context,
  peer: DownstreamPeer,
  stream: ServerHttp2Stream,
  headers: IncomingHttpHeaders,
  rawHeaders: readonly string[],
  endAfterHeaders: boolean,
): void {
  new Exchange(ctx, peer, stream, headers, endAfterHeaders).start(rawHeaders);
}
