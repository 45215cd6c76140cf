/**
 * One downstream HTTP/2 stream forwarded to one upstream stream: route by
 * :authority, pick an endpoint, open a stream on the endpoint's pooled
 * session, then relay headers, data (piped both ways, so HTTP/2 flow control
 * on one side throttles the other) and trailers. Failures become the wire
 * answer of errors-to-wire.ts and a flag on the observation; the observation
 * is finished exactly once, when the downstream stream closes.
 *
 * With traffic management (outbound, `direction.traffic`), the cluster's
 * route plan decides first, in this order: redirect, no rule matched (NR),
 * fault abort (FI), no destination (UH), maxRequests (UO), fault delay; then
 * tries follow each other on the destination's endpoints (attempt, retry,
 * endAttempt): each try is its own CLIENT span, a retriable answer is
 * discarded before anything of it went downstream (an HTTP/2 stream is
 * cancelled alone, its session stays), and the request body is kept for the
 * next try up to MAX_RETRY_BODY_BYTES (past it: piped, no retry, no mirror).
 * The route timeout covers every try and backoff, from the end of the
 * request until the response (body and trailers) is complete, as Envoy's;
 * perTryTimeout each try until its response head. Inbound,
 * `direction.rateLimits` refuses before the app (RL).
 *
 * Stream events go to module-level listeners that find their exchange on
 * the stream (no closures per stream on this path).
 *
 * The concerns live in files of their own, as functions of the exchange:
 * exchange-request.ts (the downstream stream's events), exchange-response.ts
 * (the upstream stream's events, the response relay), exchange-attempts.ts
 * (route plan, tries, retries, the route's timeouts, mirror),
 * exchange-answers.ts (failures and local answers), exchange-deadlines.ts
 * (the exchange's timers). This file holds the exchange's state, its start
 * and its end.
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { errorMessage } from '../../src/lib/errors.js';
import type { Cluster, ClusterEndpoint } from '../clusters/types.js';
import { wireError, type ResponseFlag, type WireError } from '../errors-to-wire.js';
import type { HttpDirection } from '../http-direction.js';
import type { ProxyLimits } from '../limits.js';
import type { Destination, DestinationLimits, RoutePlan } from '../pipeline/types.js';
import { finishHttpObservation, HttpObservation, setPeers } from '../telemetry/http-observation.js';
import type { TraceContext } from '../telemetry/trace-context.js';
import type { Telemetry, WorkloadIdentity } from '../telemetry/telemetry.js';
import { failExchange, refusedByRateLimit } from './exchange-answers.js';
import { attemptOutcome, releaseTry, routeExchange, upstreamFailure } from './exchange-attempts.js';
import { armDeadline, armResponseHead, clearDeadline, clearTrafficTimers, Deadline } from './exchange-deadlines.js';
import { listenToDownstream } from './exchange-request.js';
import { listenToUpstream } from './exchange-response.js';
import { tagStream } from './exchange-tag.js';
import { isGrpcContentType, parseGrpcTimeout, splitRpcPath } from './grpc.js';
import { createMirrorSender, type MirrorSender } from './mirror.js';
import type { ReplayableBody } from './request-body.js';
import type { Http2RequestFacts } from './request-facts.js';
import { continuedTraceContext, headerValue, parseAuthority, peerOf, requestIdOf, upstreamRequestHeaders, type UpstreamRequestOptions } from './request-headers.js';
import { checkRequestLimits } from './request-limits.js';
import type { Http2SessionPool, UpstreamSession } from './session-pool.js';

const { NGHTTP2_CANCEL } = constants;

/** What every exchange of one HTTP/2 handler shares, built once. */
export interface Http2Context {
  readonly direction: HttpDirection;
  readonly telemetry: Telemetry;
  readonly limits: ProxyLimits;
  readonly pool: Http2SessionPool;
  /** How the upstream request's own fields are written (tracing, peer metadata), fixed per direction. */
  readonly requestOptions: UpstreamRequestOptions;
  /** Inbound with tracing on: a GET marked as an active health check is not traced (telemetry/health-check-trace.ts). */
  readonly untracedHealthChecks: boolean;
  /** Sends mirrors' copies, bounded in number per handler. */
  readonly mirrors: MirrorSender;
  /** Retry backoff jitter. */
  readonly random: () => number;
}

export function http2Context(
  direction: HttpDirection,
  telemetry: Telemetry,
  limits: ProxyLimits,
  pool: Http2SessionPool,
  random: () => number = Math.random,
): Http2Context {
  const requestOptions: UpstreamRequestOptions = {
    rewriteTraceContext: telemetry.tracing,
    self: direction.direction === 'outbound' ? telemetry.identity : undefined,
  };
  const mirrors = createMirrorSender(pool, telemetry, limits, requestOptions);
  const untracedHealthChecks = telemetry.tracing && direction.direction === 'inbound';
  return { direction, telemetry, limits, pool, requestOptions, untracedHealthChecks, mirrors, random };
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

/** One downstream stream and its upstream tries; fields are read and written by the exchange-*.ts functions. */
export class Exchange {
  /** The current try's observation (each try is its own span); the only one without traffic management. */
  obs: HttpObservation;
  readonly isGrpc: boolean;
  /** The caller's trace context, for the spans of later tries. */
  readonly incoming: TraceContext | undefined;
  upstream: ClientHttp2Stream | undefined = undefined;
  upstreamSession: UpstreamSession | undefined = undefined;
  cluster: Cluster | undefined = undefined;
  endpoint: ClusterEndpoint | undefined = undefined;
  /** Trailers for the downstream's 'wantTrailers': the upstream's, or the proxy's error trailers. */
  responseTrailers: OutgoingHttpHeaders | undefined = undefined;
  requestTrailers: OutgoingHttpHeaders | undefined = undefined;
  /** Headers of the proxy's own answer beyond the flag's (a rate limit's name). */
  answerHeaders: OutgoingHttpHeaders | undefined = undefined;
  /** The upstream's last error, for the flag's detail. */
  upstreamError = '';
  /** The upstream's response ended normally (END_STREAM seen and read). */
  upstreamEnded = false;
  /** The downstream has everything it will get (END_STREAM sent or about to be). */
  responseDone = false;
  /** The downstream's request has ended (END_STREAM received and read). */
  requestEnded = false;
  /** A flag (or a local answer) ended the exchange; later failures add nothing. */
  failed = false;
  finished = false;
  timer: NodeJS.Timeout | undefined = undefined;
  timerKind: Deadline = Deadline.None;
  /** grpc-timeout in ms, or -1. */
  readonly callDeadlineMs: number;
  /** Tracing on: continue the caller's context and send this span upstream; off: trace fields pass untouched. */
  readonly tracing: boolean;

  // Traffic management (outbound with direction.traffic); unset on the plain path.
  plan: RoutePlan | undefined = undefined;
  destination: Destination | undefined = undefined;
  facts: Http2RequestFacts | undefined = undefined;
  /** The request body kept for retries and the mirror; undefined: the body is piped (or there is none). */
  body: ReplayableBody | undefined = undefined;
  /** destination.limits.tryStartRequest() said yes: requestEnded() is owed. */
  holdsRequest = false;
  /** This try is a retry admitted by tryStartRetry(): retryEnded() is owed when it ends. */
  holdsRetry = false;
  /** The route's timeout (all tries and the whole response), armed once the request has ended. */
  routeTimer: NodeJS.Timeout | undefined = undefined;
  /** The current try's perTryTimeout. */
  tryTimer: NodeJS.Timeout | undefined = undefined;
  tryTimerArmed = false;
  /** A fault delay or a retry backoff in progress. */
  waitTimer: NodeJS.Timeout | undefined = undefined;
  /** A retriable try was not retried (attempts used up, or the budget said no): the answer carries URX. */
  retryRefused = '';
  /** The endpoint the last failed try went to, avoided by the next. */
  exclude: ClusterEndpoint | undefined = undefined;
  mirrored = false;

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
    const incoming = this.tracing ? continuedTraceContext(headers, ctx.untracedHealthChecks) : undefined;
    this.incoming = incoming;
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
    tagStream(downstream, this);
    listenToDownstream(downstream, ctx.limits.streamIdleTimeoutMs);
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
    const rateLimits = direction.rateLimits;
    if (rateLimits !== undefined && refusedByRateLimit(this, rateLimits())) return;
    const traffic = direction.traffic;
    if (traffic !== undefined) {
      routeExchange(this, traffic(), cluster);
      return;
    }
    const endpoint = cluster.pick();
    if (endpoint === undefined) {
      this.fail('UH', cluster.name);
      return;
    }
    this.useEndpoint(endpoint);
    this.cluster = cluster;
    cluster.onRequestStart(endpoint);

    const outgoing = upstreamRequestHeaders(this.headers, obs, this.ctx.requestOptions);
    const endStream = this.endAfterHeaders;
    let session: UpstreamSession;
    try {
      session = this.ctx.pool.session(endpoint, this.peer.clientAddress);
    } catch (err) {
      this.fail('UF', errorMessage(err));
      return;
    }
    if (!this.openStream(session, outgoing, endStream)) return;
    if (this.callDeadlineMs >= 0) armDeadline(this, Deadline.Call, this.callDeadlineMs);
    else if (endStream) armResponseHead(this);
    if (!endStream) this.downstream.pipe(this.upstream as ClientHttp2Stream);
  }

  useEndpoint(endpoint: ClusterEndpoint): void {
    const obs = this.obs;
    obs.upstreamAddress = endpoint.address;
    obs.upstreamPort = endpoint.port;
    if (obs.direction === 'outbound') obs.destinationVersion = endpoint.version;
    this.endpoint = endpoint;
  }

  /**
   * Opens the upstream stream on `session` and listens to it; false when the
   * session refused (the exchange failed). `pending`: the maxPendingRequests
   * place taken for a session not connected yet, which the session gives back.
   */
  openStream(session: UpstreamSession, outgoing: OutgoingHttpHeaders, endStream: boolean, pending?: DestinationLimits): boolean {
    let up: ClientHttp2Stream;
    this.upstreamSession = session;
    try {
      up = session.request(outgoing, endStream, pending);
    } catch (err) {
      // node validated the downstream's headers already, so a throw here is the
      // session refusing streams (going away, closed) or the pool being closed.
      this.fail('UF', errorMessage(err));
      return false;
    }
    this.upstream = up;
    tagStream(up, this);
    listenToUpstream(up);
    return true;
  }

  /** The downstream has its whole response: no deadline applies any more. */
  responseComplete(): void {
    this.responseDone = true;
    clearDeadline(this);
    if (this.plan !== undefined) clearTrafficTimers(this);
  }

  /**
   * Ends the exchange with a flag: cancels the upstream stream and tells the
   * downstream, as far as it can still be told (exchange-answers.ts).
   */
  fail(flag: ResponseFlag, detail: string): void {
    if (!this.failed && !this.finished) failExchange(this, wireError(flag, detail));
  }

  failWith(err: WireError): void {
    failExchange(this, err);
  }

  /** Called once, when the downstream stream has closed. */
  finish(): void {
    if (this.finished) return;
    this.finished = true;
    clearDeadline(this);
    const obs = this.obs;
    const destination = this.destination;
    if (destination !== undefined) {
      clearTrafficTimers(this);
      releaseTry(this, attemptOutcome(this));
      if (this.holdsRequest) {
        this.holdsRequest = false;
        destination.limits.requestEnded();
      }
    } else if (this.cluster !== undefined && this.endpoint !== undefined) {
      this.cluster.onRequestEnd(this.endpoint, upstreamFailure(obs));
    }
    const up = this.upstream;
    if (up !== undefined && !up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
    this.peer.streamEnded();
    finishHttpObservation(this.ctx.telemetry, obs);
  }
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
