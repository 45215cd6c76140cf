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
 * request (as Envoy's); perTryTimeout each try. Inbound,
 * `direction.rateLimits` refuses before the app (RL).
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
import { applyHeaderEditToObject, isEmptyHeaderEdit } from '../pipeline/header-edits.js';
import { isRetriable, retryBackoffMs } from '../pipeline/retry.js';
import type { AttemptOutcome, Destination, DestinationLimits, RateLimiter, RoutePlan, TrafficConfig } from '../pipeline/types.js';
import { RATE_LIMITED_HEADER, ROUTE_HEADER } from '../telemetry/attributes.js';
import { finishHttpObservation, HttpObservation, setPeers } from '../telemetry/http-observation.js';
import type { TraceContext } from '../telemetry/trace-context.js';
import type { Telemetry, WorkloadIdentity } from '../telemetry/telemetry.js';
import { siblingObservation } from './attempt-observation.js';
import { grpcErrorHeaders, httpErrorAnswer } from './error-answer.js';
import { httpStatusOfGrpc, isGrpcContentType, parseGrpcStatus, parseGrpcTimeout, splitRpcPath } from './grpc.js';
import { faultAbortError, rateLimitedError } from './local-answers.js';
import { createMirrorSender, type MirrorSender } from './mirror.js';
import { ReplayableBody } from './request-body.js';
import { planRequestHeaders } from './plan-headers.js';
import { Http2RequestFacts } from './request-facts.js';
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
  return { direction, telemetry, limits, pool, requestOptions, mirrors, random };
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
  timerKind = Deadline.None;
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
  /** The route's timeout (all tries), armed once the request has ended. */
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
    const incoming = this.tracing ? traceContextOf(headers) : undefined;
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
    const rateLimits = direction.rateLimits;
    if (rateLimits !== undefined && this.rateLimited(rateLimits())) return;
    const traffic = direction.traffic;
    if (traffic !== undefined) {
      this.route(traffic(), cluster);
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
      session = this.ctx.pool.session(endpoint);
    } catch (err) {
      this.fail('UF', errorMessage(err));
      return;
    }
    if (!this.openStream(session, outgoing, endStream)) return;
    if (this.callDeadlineMs >= 0) this.arm(Deadline.Call, this.callDeadlineMs);
    else if (endStream) this.armResponseHead();
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
    (up as Tagged<ClientHttp2Stream>)[EXCHANGE] = this;
    up.on('error', onUpstreamError);
    up.once('response', onUpstreamResponse);
    up.on('headers', onUpstreamInformational);
    up.on('data', onUpstreamData);
    up.once('trailers', onUpstreamTrailers);
    up.once('end', onUpstreamEnd);
    up.on('wantTrailers', onUpstreamWantTrailers);
    up.once('close', onUpstreamClose);
    return true;
  }

  /** Inbound: the local rate limits, before the app. True when refused (answered 429 / RESOURCE_EXHAUSTED, flag RL). */
  rateLimited(limiter: RateLimiter): boolean {
    const self = this.ctx.telemetry.identity;
    const obs = this.obs;
    const verdict = limiter.admit(self.service, self.namespace, headerValue(this.headers, ROUTE_HEADER) ?? '', obs.sourceService, obs.sourceNamespace);
    if (verdict === undefined) return false;
    obs.rateLimitName = verdict.limitName;
    this.answerHeaders = { [RATE_LIMITED_HEADER]: verdict.limitName };
    this.failWith(rateLimitedError(verdict));
    return true;
  }

  // ---- Traffic management (outbound) ----

  /** The route plan's local decisions, in order, then the first try. */
  route(config: TrafficConfig, cluster: Cluster): void {
    const obs = this.obs;
    const self = this.ctx.telemetry.identity;
    const facts = new Http2RequestFacts(
      this.headers,
      obs.host,
      cluster.port.port,
      obs.method,
      headerValue(this.headers, ':path') ?? '',
      self.service,
      self.namespace,
      this.peer.clientAddress,
    );
    this.facts = facts;
    this.cluster = cluster;
    const plan = config.routes.select(cluster, facts);
    this.plan = plan;
    obs.routeName = plan.routeName;
    const redirect = plan.redirect;
    if (redirect !== undefined) {
      this.redirect(redirect.status, redirect.location);
      return;
    }
    if (plan.noRuleMatched === true) {
      this.fail('NR', `no rule of the routes for ${cluster.name} matches ${obs.method} ${obs.path}`);
      return;
    }
    const abort = plan.fault.abort;
    if (abort !== undefined) {
      this.failWith(faultAbortError(abort));
      return;
    }
    const destination = plan.destination;
    if (destination === undefined) {
      this.fail('UH', `route rule "${plan.routeName}" names no known destination`);
      return;
    }
    this.destination = destination;
    obs.subset = destination.subset;
    if (!destination.limits.tryStartRequest()) {
      this.fail('UO', `${destination.name}: maxRequests reached`);
      return;
    }
    this.holdsRequest = true;
    if (!this.endAfterHeaders && ((plan.retry !== null && plan.retry.attempts > 0) || plan.mirror !== undefined)) {
      this.body = new ReplayableBody();
    }
    // The caller's deadline covers the whole call, delay and retries included.
    if (this.callDeadlineMs >= 0) this.arm(Deadline.Call, this.callDeadlineMs);
    const delayMs = plan.fault.delayMs;
    if (delayMs > 0) {
      obs.faultDelayMs = delayMs;
      // Nothing of the body moves until the first try exists (the pipe or the first write resumes it).
      this.downstream.pause();
      this.waitTimer = setTimeout(onWaitOver, delayMs, this);
      this.waitTimer.unref();
      return;
    }
    this.attempt(undefined);
  }

  /** A redirect rule's answer: the status and Location, nothing forwarded. */
  redirect(status: number, location: string): void {
    const down = this.downstream;
    this.failed = true; // settled locally: nothing else may answer
    this.obs.statusCode = status;
    try {
      down.respond({ ':status': status, location }, { endStream: true });
    } catch {
      if (!down.destroyed) down.destroy();
      return;
    }
    this.responseDone = true;
    if (!this.endAfterHeaders && !down.readableEnded) down.close(NGHTTP2_NO_ERROR);
  }

  /** One try on an endpoint of the plan's destination; `exclude` is the endpoint the previous try failed on. */
  attempt(exclude: ClusterEndpoint | undefined): void {
    if (this.failed || this.finished) return;
    const destination = this.destination as Destination;
    const plan = this.plan as RoutePlan;
    const endpoint = destination.pick(this.facts, exclude);
    if (endpoint === undefined) {
      this.fail('UH', destination.name);
      return;
    }
    const limits = destination.limits;
    let session: UpstreamSession | undefined;
    try {
      session = this.ctx.pool.sessionWithin(endpoint, limits);
    } catch (err) {
      this.fail('UF', errorMessage(err));
      return;
    }
    if (session === undefined) {
      this.fail('UO', `${destination.name}: maxConnections reached`);
      return;
    }
    // maxPendingRequests: for HTTP/2, the streams waiting for a session being opened.
    let pending: DestinationLimits | undefined;
    if (!session.connected) {
      if (!limits.tryStartPending()) {
        this.fail('UO', `${destination.name}: maxPendingRequests reached`);
        return;
      }
      pending = limits;
    }
    this.useEndpoint(endpoint);
    destination.cluster.onRequestStart(endpoint);
    const outgoing = upstreamRequestHeaders(this.headers, this.obs, this.ctx.requestOptions);
    planRequestHeaders(plan, outgoing);
    const endStream = this.endAfterHeaders;
    if (!this.openStream(session, outgoing, endStream, pending)) return;
    const up = this.upstream as ClientHttp2Stream;
    const body = this.body;
    if (!endStream) {
      if (body === undefined || !body.replayable) this.downstream.pipe(up);
      else {
        body.writeTo(up);
        if (this.requestEnded) up.end();
        else this.downstream.resume();
      }
    }
    if (endStream || this.requestEnded) this.requestSent();
    this.mirror();
  }

  /**
   * The whole request went to the current try: the route's timeout starts
   * (once, like Envoy's, at the end of the request), the try's own timeout
   * too; without a route timeout the proxy's default response-head deadline
   * applies to each try.
   */
  requestSent(): void {
    const plan = this.plan;
    if (plan === undefined) {
      this.armResponseHead();
      return;
    }
    if (this.failed || this.finished || this.downstream.headersSent) return;
    if (plan.timeoutMs > 0) {
      if (this.routeTimer === undefined) {
        this.routeTimer = setTimeout(onRouteTimeout, plan.timeoutMs, this);
        this.routeTimer.unref();
      }
    } else this.armResponseHead();
    const perTry = plan.retry?.perTryTimeoutMs ?? null;
    if (perTry !== null && perTry > 0 && !this.tryTimerArmed && this.upstream !== undefined) {
      this.tryTimerArmed = true;
      this.tryTimer = setTimeout(onTryTimeout, perTry, this);
      this.tryTimer.unref();
    }
  }

  /** Sends the mirror's copy once the body is whole (a copy of part of a body would be a different request). */
  mirror(): void {
    const plan = this.plan;
    if (plan === undefined || plan.mirror === undefined || this.mirrored) return;
    const body = this.body;
    if (!this.endAfterHeaders && (body === undefined || !body.replayable || !this.requestEnded)) return;
    this.mirrored = true;
    const target = plan.mirror;
    if (this.ctx.mirrors.send(target, plan, this.facts as Http2RequestFacts, this.headers, body, this.obs, this.incoming, this.requestTrailers)) {
      this.obs.mirroredTo = target.name;
    }
  }

  /**
   * How the current try ended, for outlier detection: from its flags, else
   * its status (a gRPC status read as the HTTP status it stands for, as
   * Envoy does). Undefined when the upstream gave no verdict (the caller left).
   */
  outcome(): AttemptOutcome | undefined {
    const obs = this.obs;
    const flags = obs.flags;
    for (let i = 0; i < flags.length; i++) {
      const flag = flags[i];
      if (flag === 'UF') return 'connect-failure';
      if (flag === 'UC' || flag === 'UPE') return 'reset';
      if (flag === 'UT') return 'timeout';
    }
    if (obs.statusCode === 0 || this.upstream === undefined) return undefined;
    if (obs.grpcStatus >= 0) return outcomeOfStatus(httpStatusOfGrpc(obs.grpcStatus));
    if (!this.upstreamEnded && flags.length > 0) return undefined; // cut short by the caller (DC, SI)
    return outcomeOfStatus(obs.statusCode);
  }

  /**
   * A retry, when the policy, the attempts left, the body and the budget all
   * allow it: the current try is abandoned (its span ends with `flag` when
   * it had no response) and the next starts after the backoff. False: the
   * caller answers with what this try gave (URX when only the limits said no).
   */
  retry(outcome: AttemptOutcome, statusCode: number, flag: ResponseFlag | undefined, detail: string): boolean {
    const plan = this.plan;
    const policy = plan?.retry ?? null;
    if (policy === null || this.failed || this.finished || this.downstream.headersSent) return false;
    if (!isRetriable(policy, outcome, statusCode)) return false;
    const body = this.body;
    if (!this.endAfterHeaders && (body === undefined || !body.replayable)) return false;
    const done = this.obs.attempt - 1;
    if (done >= policy.attempts) {
      this.retryRefused = `${policy.attempts} retries used`;
      return false;
    }
    const destination = this.destination as Destination;
    // The try that just failed was a retry: it is over, so it no longer counts against the budget.
    if (this.holdsRetry) {
      this.holdsRetry = false;
      destination.limits.retryEnded();
    }
    if (!destination.limits.tryStartRetry(policy.budget)) {
      this.retryRefused = 'retry budget or maxRetries exhausted';
      return false;
    }
    const failedOn = this.endpoint;
    this.endAttempt(outcome, flag, detail);
    this.holdsRetry = true;
    const next = siblingObservation(this.obs, this.incoming);
    next.attempt = this.obs.attempt + 1;
    next.requestBytes = body === undefined ? 0 : body.size;
    this.obs = next;
    if (!this.requestEnded) this.downstream.pause();
    this.exclude = failedOn;
    this.waitTimer = setTimeout(onWaitOver, retryBackoffMs(policy, done + 1, this.ctx.random), this);
    this.waitTimer.unref();
    return true;
  }

  /** Abandons the current try: its stream is cancelled, its outcome recorded, its span ended. */
  endAttempt(outcome: AttemptOutcome, flag: ResponseFlag | undefined, detail: string): void {
    const up = this.upstream;
    const down = this.downstream;
    if (up !== undefined) {
      (up as Tagged<ClientHttp2Stream>)[EXCHANGE] = undefined;
      up.unpipe(down);
      down.unpipe(up);
      if (!up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
    }
    this.upstream = undefined;
    this.upstreamSession = undefined;
    this.upstreamEnded = false;
    this.upstreamError = '';
    this.responseTrailers = undefined;
    this.clearTryTimer();
    if (this.timerKind === Deadline.ResponseHead) this.clearDeadline();
    const obs = this.obs;
    if (flag !== undefined) obs.addFlag(flag, wireError(flag, detail).message);
    this.releaseTry(outcome);
    finishHttpObservation(this.ctx.telemetry, obs);
  }

  /** Gives back what the current try holds, ends its endpoint's books and records its outcome. */
  releaseTry(outcome: AttemptOutcome | undefined): void {
    const destination = this.destination;
    if (destination === undefined) return;
    if (this.holdsRetry) {
      this.holdsRetry = false;
      destination.limits.retryEnded();
    }
    const endpoint = this.endpoint;
    if (endpoint === undefined) return;
    this.endpoint = undefined;
    destination.cluster.onRequestEnd(endpoint, upstreamFailure(this.obs));
    if (outcome !== undefined) destination.recordOutcome(endpoint, outcome);
  }

  clearTryTimer(): void {
    if (this.tryTimer !== undefined) clearTimeout(this.tryTimer);
    this.tryTimer = undefined;
    this.tryTimerArmed = false;
  }

  // ---- Deadlines ----

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

  clearTrafficTimers(): void {
    if (this.routeTimer !== undefined) clearTimeout(this.routeTimer);
    this.routeTimer = undefined;
    if (this.waitTimer !== undefined) clearTimeout(this.waitTimer);
    this.waitTimer = undefined;
    this.clearTryTimer();
  }

  /** The downstream has its whole response: no deadline applies any more. */
  responseComplete(): void {
    this.responseDone = true;
    this.clearDeadline();
    if (this.plan !== undefined) this.clearTrafficTimers();
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
    const relayed = relayedHeaders(headers);
    const plan = this.plan;
    if (plan !== undefined) {
      this.clearTryTimer();
      // A gRPC server reports failure as a trailers-only answer with :status
      // 200, which Envoy's "5xx" and "gateway-error" never retry (it has a
      // separate "unavailable"). UNAVAILABLE (14) is gRPC's word for what a
      // 503 says, so for retries it counts as a gateway error (outcome
      // 'gateway'; retry.ts reads the outcome besides the status) whenever
      // retryOn has gateway-error or 5xx. Other gRPC statuses are answers.
      const outcome: AttemptOutcome = grpcStatus === 14 && endOfStream ? 'gateway' : grpcStatus >= 0 ? 'success' : outcomeOfStatus(status);
      if (outcome !== 'success' && this.retry(outcome, status, undefined, '')) return;
      if (this.retryRefused !== '') obs.addFlag('URX', wireError('URX', this.retryRefused).message);
      if (!isEmptyHeaderEdit(plan.responseHeaders)) applyHeaderEditToObject(plan.responseHeaders, relayed);
    }
    const bodyless = endOfStream || obs.method === 'HEAD' || status === 204 || status === 205 || status === 304;
    try {
      down.respond(relayed, { endStream: bodyless, waitForTrailers: !bodyless });
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

  /** The upstream stream closed before its response ended: retry when allowed, else fail with UF/UC. */
  upstreamLost(flag: ResponseFlag, detail: string): void {
    if (this.plan !== undefined && !this.downstream.headersSent) {
      if (this.retry(flag === 'UF' ? 'connect-failure' : 'reset', 0, flag, detail)) return;
      if (this.retryRefused !== '') this.obs.addFlag('URX', wireError('URX', this.retryRefused).message);
    }
    this.fail(flag, detail);
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
    if (this.plan !== undefined) this.clearTrafficTimers();
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
      down.respond(grpcErrorHeaders(err, true, this.answerHeaders), { endStream: true });
    } else {
      const { headers, body } = httpErrorAnswer(err, this.answerHeaders);
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
    const obs = this.obs;
    const destination = this.destination;
    if (destination !== undefined) {
      this.clearTrafficTimers();
      this.releaseTry(this.outcome());
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

/** gateway for 502/503/504, 5xx for any other 5xx, else success. */
function outcomeOfStatus(status: number): AttemptOutcome {
  if (status === 502 || status === 503 || status === 504) return 'gateway';
  return status >= 500 ? '5xx' : 'success';
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
  if (ex === undefined) return;
  ex.obs.requestBytes += chunk.length;
  const body = ex.body;
  // Kept for the next try while it fits; the current try gets it now. Past
  // the limit the body can no longer be replayed: the rest goes through a
  // pipe (flow control again) and this request is not retried.
  if (body === undefined || body.overflowed) return;
  const kept = body.add(chunk);
  const up = ex.upstream;
  if (up === undefined) return;
  up.write(chunk);
  if (!kept) this.pipe(up);
}

function onDownstreamTrailers(this: ServerHttp2Stream, trailers: IncomingHttpHeaders): void {
  const ex = exchangeOf(this);
  if (ex !== undefined) ex.requestTrailers = relayedHeaders(trailers);
}

function onDownstreamEnd(this: ServerHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.requestEnded = true;
  const body = ex.body;
  if (body !== undefined) {
    body.ended = true;
    // Written by hand while kept: end it by hand too (past the limit the pipe does).
    if (!body.overflowed) ex.upstream?.end();
    ex.mirror();
  }
  ex.requestSent();
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
  ex.upstreamLost(connected ? 'UC' : 'UF', detail);
}

function onDeadline(ex: Exchange): void {
  ex.timer = undefined;
  const call = ex.timerKind === Deadline.Call;
  ex.timerKind = Deadline.None;
  ex.fail('UT', call ? `grpc-timeout of ${ex.callDeadlineMs} ms exceeded` : `no response within ${ex.ctx.limits.requestTimeoutMs} ms`);
}

/** The route's timeout: the whole request, every try and backoff included. */
function onRouteTimeout(ex: Exchange): void {
  ex.routeTimer = undefined;
  ex.fail('UT', `route timeout of ${ex.plan?.timeoutMs ?? 0} ms exceeded`);
}

/** The current try's perTryTimeout: retried like a try without a response, else the request times out. */
function onTryTimeout(ex: Exchange): void {
  ex.tryTimer = undefined;
  const detail = `per-try timeout of ${ex.plan?.retry?.perTryTimeoutMs ?? 0} ms exceeded`;
  if (ex.retry('timeout', 0, 'UT', detail)) return;
  if (ex.retryRefused !== '') ex.obs.addFlag('URX', wireError('URX', ex.retryRefused).message);
  ex.fail('UT', detail);
}

/** A fault delay or a retry backoff is over: the next try starts. */
function onWaitOver(ex: Exchange): void {
  ex.waitTimer = undefined;
  const exclude = ex.exclude;
  ex.exclude = undefined;
  ex.attempt(exclude);
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
