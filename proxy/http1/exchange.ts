/**
 * One request/response forwarded from a downstream connection to an upstream
 * endpoint: routing, the upstream head, the request body (raw, with
 * backpressure), interim responses, the response head and body, the keep-alive
 * decision on both sides, every failure mapped through errors-to-wire.ts, the
 * retry of a request that met a stale pooled connection, and the raw pipe
 * after a 101. One Exchange per downstream connection, reused for each of its
 * requests (they are served in order), so a request allocates only its
 * observation, its strings and its upstream writes.
 *
 * Traffic management (outbound, proxy/pipeline): the route plan's local
 * answers (redirect, no rule matched, fault abort), then the fault delay,
 * then the destination's limits and attempts. Each attempt is its own CLIENT
 * span (own observation, attempt = n, same parent); a failed attempt that
 * the plan's retry policy covers is not answered downstream but retried on
 * another endpoint after a backoff, within the attempts, maxRetries and the
 * budget (else the last attempt's answer goes down with flag URX). Retries
 * need the request body again: it is kept up to MAX_RETRY_BODY_BYTES, past
 * which that request is not retried. The route timeout spans every attempt,
 * the per-try timeout one. Timers exist only for plans that ask for them:
 * a plan without retry, timeout, fault, mirror or edits costs a pick and
 * the limit counters, no buffering and no timer.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { upstreamSocketFlag, wireError, wireErrorBody, wireErrorWithStatus, type ResponseFlag, type WireError } from '../errors-to-wire.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { MAX_RETRY_BODY_BYTES } from '../limits.js';
import { headerEditLines, isEmptyHeaderEdit } from '../pipeline/header-edits.js';
import { isRetriable, retryBackoffMs } from '../pipeline/retry.js';
import type { AttemptOutcome, Destination, RoutePlan } from '../pipeline/types.js';
import { MIRROR_HEADER, RATE_LIMITED_HEADER } from '../telemetry/attributes.js';
import { finishHttpObservation, type HttpObservation } from '../telemetry/http-observation.js';
import { extractTraceContext } from '../telemetry/trace-context.js';
import { BODY_ERROR, BODY_MORE, BODY_NONE, BODY_UNTIL_CLOSE, BodyFraming } from './body-framing.js';
import { D_BODY, D_TUNNEL, D_WAIT } from './conn-state.js';
import { HttpHead } from './head.js';
import { HEAD_INCOMPLETE, HEAD_TOO_LARGE, HeadReader } from './head-reader.js';
import { errorResponse, keptFieldLines, keptFieldLinesExcept, redirectResponse, responseStatusLine, writeHeadAndBody } from './head-writer.js';
import { H_KEEP_ALIVE, H_ROUTE, H_TRACEPARENT, H_UPGRADE, H_USER_AGENT, H_X_REQUEST_ID } from './header-kinds.js';
import { forwardResponseField } from './hop-by-hop.js';
import { HEAD_OK, parseResponseHead } from './parser.js';
import { newHttp1Observation } from './refusal.js';
import { shadowAuthority } from './mirror.js';
import { Http1RequestFacts } from './request-facts.js';
import { RequestTarget } from './request-target.js';
import { RouteChoice, observeEndpoint, routeRequest } from './routing.js';
import type { DownstreamConnection } from './serve.js';
import type { UpstreamClient, UpstreamConnection } from './upstream-pool.js';
import { planEditsRequest, plannedRequestHead, upstreamRequestHead, type UpstreamRequestOptions } from './upstream-request.js';

const R_HEAD = 0; // waiting for the (final) response head
const R_BODY = 1; // forwarding the response body
const R_DONE = 2; // response complete (or answered by the proxy)
const R_TUNNEL = 3; // 101 received: raw bytes both ways
const R_WAIT = 4; // no upstream yet: a fault delay, a retry's backoff, or a connection (pool limits)

// What R_WAIT waits for.
const W_NONE = 0;
const W_DELAY = 1;
const W_BACKOFF = 2;
const W_CONNECTION = 3;

function onWaitOver(exchange: Exchange): void {
  exchange.waitOver();
}
function onTryTimeout(exchange: Exchange): void {
  exchange.tryTimedOut();
}
function onRouteTimeout(exchange: Exchange): void {
  exchange.routeTimedOut();
}

/** How a response status counts for outlier detection and retries. */
function statusOutcome(status: number): AttemptOutcome {
  if (status < 500) return 'success';
  return status >= 502 && status <= 504 ? 'gateway' : '5xx';
}

function flagOutcome(flag: ResponseFlag): AttemptOutcome {
  if (flag === 'UF') return 'connect-failure';
  if (flag === 'UT') return 'timeout';
  return 'reset';
}

/** The one buffer of a kept body (retries and mirrors resend it). */
function joined(chunks: readonly Buffer[]): Buffer | undefined {
  if (chunks.length === 0) return undefined;
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/** Methods whose retry on a fresh connection cannot repeat a side effect (RFC 9110 §9.2.2). */
function isIdempotent(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'PUT' || method === 'DELETE' || method === 'TRACE';
}

/**
 * After bytes of an upstream read went to the downstream socket: when the
 * socket queued them instead of sending them at once, they still point into
 * the upstream connection's read buffer, which must not be read into again.
 */
function lendIfQueued(down: Socket, up: UpstreamConnection | undefined): void {
  if (down.writableLength > 0 && up !== undefined) up.lendReadBuffer();
}

/**
 * Writes bytes of an upstream read downstream. Behind a queue they are
 * copied: they would wait anyway, and so at most one read buffer per
 * connection is ever held by a queue (a slow client cannot pin one per read).
 */
function forwardUpstreamBytes(down: Socket, up: UpstreamConnection | undefined, bytes: Buffer): boolean {
  if (down.writableLength > 0) return down.write(Buffer.from(bytes));
  const ok = down.write(bytes);
  lendIfQueued(down, up);
  return ok;
}

export class Exchange implements UpstreamClient, UpstreamRequestOptions {
  active = false;
  obs: HttpObservation | undefined = undefined;
  readonly target = new RequestTarget();
  private readonly response = new HttpHead();
  private readonly responseHeadReader: HeadReader;
  private readonly requestBody: BodyFraming;
  private readonly responseBody: BodyFraming;
  private readonly choice = new RouteChoice();
  private readonly facts: Http1RequestFacts;
  private upstream: UpstreamConnection | undefined = undefined;
  // Traffic management, per request (see the file comment); all unset without a plan.
  private plan: RoutePlan | undefined = undefined;
  /** Set once the destination's maxRequests admitted the request (requestEnded() is then owed). */
  private destination: Destination | undefined = undefined;
  private attempt = 1;
  /** A retry holds the destination's retry counters (retryEnded() is owed). */
  private retryHeld = false;
  /** The current attempt's outcome went to outlier detection already. */
  private outcomeRecorded = false;
  /** A retriable failure was not retried (attempts, maxRetries or the budget): flag URX. */
  private retriesExhausted = false;
  private failedEndpoint: ClusterEndpoint | undefined = undefined;
  /** Every request body byte so far, while a retry or mirror may resend them; undefined: not kept. */
  private kept: Buffer[] | undefined = undefined;
  private keptBytes = 0;
  /** Body bytes that arrived while no upstream was attached (not kept): they go out on attach. */
  private held: Buffer[] | undefined = undefined;
  private editsRequest = false;
  private editsResponse = false;
  private mirrored = false;
  private waitingFor = W_NONE;
  private waitTimer: NodeJS.Timeout | undefined = undefined;
  private tryTimer: NodeJS.Timeout | undefined = undefined;
  private routeTimer: NodeJS.Timeout | undefined = undefined;
  private upstreamHead = '';
  /** The request body bytes sent along with the head; kept so a retry can send them again. */
  private firstBody: Buffer | undefined = undefined;
  /** Body bytes went out after the first write: a retry could not repeat them. */
  private moreBodySent = false;
  private retried = false;
  private requestDone = false;
  private phase = R_DONE;
  private finalHeadSent = false;
  private upstreamBytes = 0;
  private upstreamReusable = false;
  private upstreamPaused = false;
  /** The downstream connection closes after this exchange. */
  private closeAfter = false;
  /** The client wants the connection kept (HTTP/1.1 default, or 1.0 with keep-alive). */
  private keepAlive = true;
  /** Waiting for the response head; the connection's sweep stamps responseSince (-1 until then) and checks it. */
  private responseTimerArmed = false;
  private responseSince = -1;

  // UpstreamRequestOptions, read by upstreamRequestHead.
  explicitProxy = false;
  upgrade = false;
  readonly rewriteTraceContext: boolean;
  newRequestId = '';
  readonly peerFields: string;
  readonly clientAddress: string;

  constructor(
    private readonly conn: DownstreamConnection,
    peerFields: string,
  ) {
    const maxMeta = conn.limits.maxHeaderBytes;
    this.responseHeadReader = new HeadReader(maxMeta);
    this.requestBody = new BodyFraming(maxMeta);
    this.responseBody = new BodyFraming(maxMeta);
    this.peerFields = peerFields;
    this.clientAddress = conn.remoteAddress;
    this.rewriteTraceContext = conn.deps.telemetry.tracing;
    this.facts = new Http1RequestFacts(conn.head);
  }

  /**
   * Starts forwarding a parsed request whose body (if any) begins at
   * buf[bodyStart]. Returns the offset just past the bytes it consumed.
   */
  start(head: HttpHead, buf: Buffer, bodyStart: number): number {
    const conn = this.conn;
    this.active = true;
    this.upstream = undefined;
    this.firstBody = undefined;
    this.moreBodySent = false;
    this.retried = false;
    this.phase = R_HEAD;
    this.finalHeadSent = false;
    this.upstreamBytes = 0;
    this.upstreamReusable = false;
    this.upstreamPaused = false;
    this.closeAfter = false;
    this.responseHeadReader.reset();
    this.keepAlive = head.versionMinor >= 1 ? !head.connectionClose : head.connectionKeepAlive && !head.connectionClose;
    this.upgrade = head.connectionUpgrade && head.firstOf[H_UPGRADE] !== -1;
    this.requestBody.startRequest(head, conn.limits.maxHeaderBytes);
    this.requestDone = this.requestBody.mode === BODY_NONE;
    const obs = this.observe(head);

    const failure = routeRequest(conn, head, this.target, obs, this.choice, this.facts);
    // Proxy-Authorization / Proxy-Authenticate were for this proxy only when the client used it as its forward proxy.
    this.explicitProxy = this.target.absolute && conn.deps.direction.direction === 'outbound';
    if (failure !== undefined) return this.answerEarly(failure, buf, bodyStart);
    const rateLimits = conn.deps.direction.rateLimits;
    if (rateLimits !== undefined && this.rateLimited(rateLimits().admit(conn.deps.telemetry.identity.service, conn.deps.telemetry.identity.namespace, head.valueOf(H_ROUTE) ?? '', conn.peer.service, conn.peer.namespace))) {
      return this.requestDone ? bodyStart : buf.length;
    }
    const plan = this.choice.plan;
    if (plan !== undefined) {
      if (this.answeredByPlan(plan)) return this.requestDone ? bodyStart : buf.length;
      this.plan = plan;
      this.editsRequest = planEditsRequest(plan);
      this.editsResponse = !isEmptyHeaderEdit(plan.responseHeaders);
      if ((plan.retry !== null && plan.retry.attempts > 0) || plan.mirror !== undefined) this.kept = [];
    } else {
      this.upstreamHead = upstreamRequestHead(head, this.target, obs, this);
    }
    let end = bodyStart;
    if (!this.requestDone) {
      const r = this.requestBody.consume(buf, bodyStart, buf.length);
      if (r === BODY_ERROR) return this.answerEarly(wireError('DPE', this.requestBody.error), buf, bodyStart);
      end = r === BODY_MORE ? buf.length : r;
      if (end > bodyStart) {
        this.firstBody = buf.subarray(bodyStart, end);
        if (this.kept !== undefined) this.keep(this.firstBody);
      }
      if (r !== BODY_MORE) this.requestDone = true;
    }
    conn.state = this.requestDone ? D_WAIT : D_BODY;
    if (plan === undefined) {
      this.upstream = conn.deps.pool.acquire(this.choice.endpoint as ClusterEndpoint, this);
      this.sendHead();
      if (this.requestDone) this.onRequestComplete();
      return end;
    }
    const delayMs = plan.fault.delayMs;
    if (delayMs > 0) {
      obs.faultDelayMs = delayMs;
      this.phase = R_WAIT;
      this.waitingFor = W_DELAY;
      this.waitTimer = setTimeout(onWaitOver, delayMs, this);
      if (!this.requestDone) conn.pauseReading();
      return end;
    }
    this.beginForwarding();
    return end;
  }

  /** Inbound: the RateLimit verdict; true when refused (answered 429 with flag RL). */
  private rateLimited(verdict: { readonly limitName: string; readonly statusCode: number } | undefined): boolean {
    if (verdict === undefined) return false;
    const obs = this.obs as HttpObservation;
    obs.rateLimitName = verdict.limitName;
    this.conn.deps.telemetry.metrics.recordRateLimited?.(verdict.limitName);
    this.answer(wireErrorWithStatus('RL', verdict.statusCode, `rate limit ${verdict.limitName}`), false, `${RATE_LIMITED_HEADER}: ${verdict.limitName}\r\n`);
    return true;
  }

  /** The plan's local answers, in Istio's order: redirect, no rule matched (404 NR), fault abort (FI). */
  private answeredByPlan(plan: RoutePlan): boolean {
    const redirect = plan.redirect;
    if (redirect !== undefined) {
      this.answerRedirect(redirect.status, redirect.location);
      return true;
    }
    if (plan.noRuleMatched === true) {
      this.answer(wireError('NR', `no rule of the route for ${this.target.host}:${this.target.port} matched`), false);
      return true;
    }
    const abort = plan.fault.abort;
    if (abort !== undefined) {
      // A gRPC status has no meaning to an HTTP/1 client: the abort answers the flag's own 503 then.
      this.answer(abort.grpc ? wireError('FI', 'abort') : wireErrorWithStatus('FI', abort.status, 'abort'), false);
      return true;
    }
    return false;
  }

  /** After the plan's local answers and fault delay: the destination, its maxRequests, then the first attempt. */
  private beginForwarding(): void {
    const plan = this.plan as RoutePlan;
    const destination = plan.destination;
    if (destination === undefined) return this.answer(wireError('UH', `route rule ${plan.routeName} names a destination this configuration does not define`), false);
    if (!destination.limits.tryStartRequest()) {
      this.conn.deps.telemetry.metrics.recordOverflow?.(destination.name);
      return this.answer(wireError('UO', `${destination.name}: maxRequests reached`), false);
    }
    this.destination = destination;
    this.choice.destination = destination;
    if (this.requestDone) this.onRequestComplete();
    this.startAttempt();
  }

  /** One attempt: an endpoint (avoiding the one that just failed), the head, a connection (or a wait for one). */
  private startAttempt(): void {
    const destination = this.destination as Destination;
    const plan = this.plan as RoutePlan;
    const obs = this.obs as HttpObservation;
    const endpoint = destination.pick(this.facts, this.failedEndpoint);
    if (endpoint === undefined) return this.answer(wireError('UH', destination.name), false);
    // The endpoint's live counters (least request reads them; the admin page shows them): start here, end with the attempt.
    this.choice.cluster = destination.cluster;
    this.choice.endpoint = endpoint;
    destination.cluster.onRequestStart(endpoint);
    this.outcomeRecorded = false;
    this.retried = false;
    observeEndpoint(obs, endpoint);
    this.upstreamHead = this.editsRequest ? plannedRequestHead(this.conn.head, this.target, obs, this, plan, undefined, '') : upstreamRequestHead(this.conn.head, this.target, obs, this);
    const pool = this.conn.deps.pool;
    const up = pool.acquire(endpoint, this, destination.limits);
    if (up !== undefined) return this.attach(up);
    const waitMs = destination.limits.connectTimeoutMs ?? this.conn.limits.connectTimeoutMs;
    if (!pool.wait(endpoint, this, destination.limits, waitMs)) {
      this.conn.deps.telemetry.metrics.recordOverflow?.(destination.name);
      return this.answer(wireError('UO', `${destination.name}: maxConnections and maxPendingRequests reached`), false);
    }
    this.phase = R_WAIT;
    this.waitingFor = W_CONNECTION;
    if (!this.requestDone) this.conn.pauseReading();
  }

  /** The attempt has its connection: the head and the body so far go out, the per-try timeout starts. */
  private attach(up: UpstreamConnection): void {
    this.upstream = up;
    this.phase = R_HEAD;
    this.waitingFor = W_NONE;
    this.upstreamBytes = 0;
    this.responseHeadReader.reset();
    this.sendHead();
    const retry = (this.plan as RoutePlan).retry;
    if (retry !== null && retry.perTryTimeoutMs !== null && retry.perTryTimeoutMs > 0) this.tryTimer = setTimeout(onTryTimeout, retry.perTryTimeoutMs, this);
  }

  /** A pending request's connection (pool limits). */
  onUpstreamReady(up: UpstreamConnection): void {
    if (!this.active || this.phase !== R_WAIT || this.waitingFor !== W_CONNECTION) {
      this.conn.deps.pool.release(up);
      return;
    }
    this.attach(up);
  }

  onUpstreamWaitExpired(waitedMs: number): void {
    if (!this.active || this.waitingFor !== W_CONNECTION) return;
    this.waitingFor = W_NONE;
    const name = this.destination === undefined ? '' : this.destination.name;
    this.conn.deps.telemetry.metrics.recordOverflow?.(name);
    this.answer(wireError('UO', `${name}: no connection within ${waitedMs} ms`), false);
  }

  /** A fault delay or a retry backoff is over. */
  waitOver(): void {
    this.waitTimer = undefined;
    const waited = this.waitingFor;
    if (!this.active || this.phase !== R_WAIT || (waited !== W_DELAY && waited !== W_BACKOFF)) return;
    this.waitingFor = W_NONE;
    if (waited === W_DELAY) this.beginForwarding();
    else this.startAttempt();
  }

  /** Keeps body bytes for a resend, until there are more than MAX_RETRY_BODY_BYTES (then the request is not retried nor mirrored). */
  private keep(chunk: Buffer): void {
    const kept = this.kept as Buffer[];
    kept.push(chunk);
    this.keptBytes += chunk.length;
    if (this.keptBytes <= MAX_RETRY_BODY_BYTES) return;
    this.kept = undefined;
    this.keptBytes = 0;
    // Not attached: nothing of it went out yet, so all of it is still to send.
    if (this.upstream === undefined) {
      this.held = kept;
      this.firstBody = undefined;
    }
  }

  /** Whether a failed attempt is retried; a retriable one that is not marks the request URX. */
  private mayRetry(outcome: AttemptOutcome, status: number): boolean {
    const plan = this.plan;
    const policy = plan === undefined ? null : plan.retry;
    if (policy === null || this.destination === undefined || this.finalHeadSent) return false;
    if (!isRetriable(policy, outcome, status)) return false;
    if (this.kept === undefined && this.requestBody.mode !== BODY_NONE) return false;
    if (this.attempt > policy.attempts || !this.destination.limits.tryStartRetry(policy.budget)) {
      this.retriesExhausted = true;
      return false;
    }
    return true;
  }

  /** The attempt's outcome, once, to the destination's outlier detection. */
  private recordAttempt(outcome: AttemptOutcome): void {
    if (this.outcomeRecorded || this.destination === undefined || this.choice.endpoint === undefined) return;
    this.outcomeRecorded = true;
    this.destination.recordOutcome(this.choice.endpoint, outcome);
  }

  /**
   * Ends the failed attempt (its span says how: `status` from the
   * upstream, or `err`) and starts the next after the backoff. mayRetry
   * said yes, so the retry counters are taken.
   */
  private retry(outcome: AttemptOutcome, err: WireError | undefined, status: number): void {
    const destination = this.destination as Destination;
    const policy = (this.plan as RoutePlan).retry as NonNullable<RoutePlan['retry']>;
    const telemetry = this.conn.deps.telemetry;
    this.recordAttempt(outcome);
    if (this.upstream !== undefined) {
      this.conn.deps.pool.discard(this.upstream);
      this.upstream = undefined;
    }
    this.clearTryTimer();
    const failed = this.obs as HttpObservation;
    const endpoint = this.choice.endpoint as ClusterEndpoint;
    destination.cluster.onRequestEnd(endpoint, err === undefined ? `${status} from ${endpoint.key}` : err.message);
    this.choice.cluster = undefined;
    if (err !== undefined) failed.addFlag(err.flag, err.message);
    failed.statusCode = status;
    failed.requestBytes = this.requestBody.bodyBytes;
    finishHttpObservation(telemetry, failed);
    telemetry.metrics.recordRetry?.(destination.name);
    if (this.retryHeld) destination.limits.retryEnded();
    this.retryHeld = true;
    this.failedEndpoint = endpoint;
    this.attempt++;
    this.obs = this.nextAttemptObservation(failed);
    this.phase = R_WAIT;
    const backoffMs = retryBackoffMs(policy, this.attempt - 1, Math.random);
    if (backoffMs > 0) {
      this.waitingFor = W_BACKOFF;
      this.waitTimer = setTimeout(onWaitOver, backoffMs, this);
    } else {
      this.startAttempt();
    }
  }

  /** The next attempt's observation: its own span under the same parent, the request's facts copied. */
  private nextAttemptObservation(prev: HttpObservation): HttpObservation {
    const obs = newHttp1Observation(this.conn, { traceId: prev.traceId, spanId: prev.parentSpanId, sampled: prev.sampled, traceState: prev.traceState });
    copyRequest(prev, obs);
    obs.attempt = this.attempt;
    return obs;
  }

  /** The per-try timeout passed without a response head: retried when the policy covers timeouts, else 504 UT. */
  tryTimedOut(): void {
    this.tryTimer = undefined;
    if (!this.active || this.phase !== R_HEAD) return;
    const retry = (this.plan as RoutePlan).retry;
    const err = wireError('UT', `no response from ${this.choice.endpointKey} within the per-try timeout of ${retry === null ? 0 : (retry.perTryTimeoutMs ?? 0)} ms`);
    if (this.mayRetry('timeout', 0)) return this.retry('timeout', err, 0);
    this.recordAttempt('timeout');
    this.answer(err, true);
  }

  /** The route's timeout (all attempts) passed without a response head: 504 UT. */
  routeTimedOut(): void {
    this.routeTimer = undefined;
    if (!this.active || (this.phase !== R_HEAD && this.phase !== R_WAIT)) return;
    if (this.phase === R_HEAD) this.recordAttempt('timeout');
    this.answer(wireError('UT', `no response within the route timeout of ${(this.plan as RoutePlan).timeoutMs} ms`), this.phase === R_HEAD);
  }

  private clearTryTimer(): void {
    if (this.tryTimer !== undefined) {
      clearTimeout(this.tryTimer);
      this.tryTimer = undefined;
    }
  }

  private clearTimers(): void {
    this.clearTryTimer();
    if (this.waitTimer !== undefined) {
      clearTimeout(this.waitTimer);
      this.waitTimer = undefined;
    }
    if (this.routeTimer !== undefined) {
      clearTimeout(this.routeTimer);
      this.routeTimer = undefined;
    }
    if (this.waitingFor === W_CONNECTION) this.conn.deps.pool.cancelWait(this);
    this.waitingFor = W_NONE;
  }

  /**
   * The mirror's copy, once the whole body is here (and kept): to an
   * endpoint of the mirror destination, "-shadow" authority, its answer
   * discarded. Never delays or fails this request.
   */
  private mirror(): void {
    const plan = this.plan;
    if (plan === undefined || plan.mirror === undefined || this.mirrored || !this.requestDone || this.destination === undefined) return;
    this.mirrored = true;
    const mirrors = this.conn.deps.mirrors;
    if (mirrors === undefined || this.upgrade || (this.kept === undefined && this.requestBody.mode !== BODY_NONE)) return;
    const destination = plan.mirror;
    if (!mirrors.admit(destination)) return;
    const endpoint = destination.pick(this.facts, undefined);
    if (endpoint === undefined) return;
    const obs = this.obs as HttpObservation;
    obs.mirroredTo = destination.name;
    const copy = newHttp1Observation(this.conn, { traceId: obs.traceId, spanId: obs.parentSpanId, sampled: obs.sampled, traceState: obs.traceState });
    copyRequest(obs, copy);
    copy.mirror = true;
    copy.subset = destination.subset;
    copy.destinationService = destination.cluster.service;
    copy.destinationNamespace = destination.cluster.namespace;
    const target = this.target;
    const authority = shadowAuthority(plan.authority ?? (target.port === 80 ? target.host : `${target.host}:${target.port}`));
    copy.host = authority;
    copy.requestBytes = this.requestBody.bodyBytes;
    const extra = `${MIRROR_HEADER}: 1\r\n` + (this.conn.head.versionMinor === 0 ? '' : 'connection: close\r\n');
    const head = plannedRequestHead(this.conn.head, target, copy, this, plan, authority, extra);
    mirrors.send(destination, endpoint, head, this.kept ?? [], copy);
  }

  /** The request's observation: its trace context (continued or new) and what the request says about itself. */
  private observe(head: HttpHead): HttpObservation {
    // Most requests carry no B3 and at most a traceparent: skip the lookups when neither is there.
    // With tracing off the proxy makes no span, so it continues no context either (trace fields pass untouched).
    const traced = this.rewriteTraceContext && (head.firstOf[H_TRACEPARENT] !== -1 || head.hasB3);
    const obs = newHttp1Observation(this.conn, traced ? extractTraceContext(head.lookup) : undefined);
    this.obs = obs;
    obs.method = head.method;
    obs.userAgent = head.valueOf(H_USER_AGENT) ?? '';
    const requestId = head.valueOf(H_X_REQUEST_ID);
    this.newRequestId = requestId === undefined || requestId === '' ? randomUUID() : '';
    obs.requestId = this.newRequestId === '' ? (requestId as string) : this.newRequestId;
    return obs;
  }

  /** The proxy answers before anything went upstream (no route, bad target…). */
  private answerEarly(err: WireError, buf: Buffer, bodyStart: number): number {
    this.answer(err, false);
    // The connection stays only when the request had no body left unread.
    return this.requestDone ? bodyStart : buf.length;
  }

  /** The head and the body so far: all of it when kept, else the first bytes and any held while waiting. */
  private sendHead(): void {
    const up = this.upstream as UpstreamConnection;
    let body = this.firstBody;
    if (this.kept !== undefined) {
      body = joined(this.kept);
    } else if (this.held !== undefined) {
      body = joined(body === undefined ? this.held : [body, ...this.held]);
      this.held = undefined;
      this.firstBody = undefined;
      this.moreBodySent = true;
    }
    const ok = writeHeadAndBody(up.socket, this.upstreamHead, body);
    if (!this.requestDone) {
      if (!ok) this.conn.pauseReading();
      else this.conn.resumeReading();
    }
  }

  /** Request body bytes at buf[start…]; returns the offset just past those consumed. */
  onRequestBody(buf: Buffer, start: number): number {
    const r = this.requestBody.consume(buf, start, buf.length);
    if (r === BODY_ERROR) {
      this.failRequest(wireError('DPE', this.requestBody.error));
      return buf.length;
    }
    const end = r === BODY_MORE ? buf.length : r;
    if (end > start) {
      this.moreBodySent = true;
      const chunk = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
      const up = this.upstream;
      // No upstream yet (delay, backoff, a connection): the bytes wait, kept or held, and no more are read until one is attached.
      if (this.kept !== undefined) this.keep(chunk);
      else if (up === undefined && this.phase === R_WAIT) this.held = chunkHolder(this.held, chunk);
      if (up !== undefined) {
        if (!up.socket.write(chunk)) this.conn.pauseReading();
      } else if (this.phase === R_WAIT) {
        this.conn.pauseReading();
      }
    }
    if (r !== BODY_MORE) {
      this.requestDone = true;
      this.conn.state = D_WAIT;
      this.onRequestComplete();
    }
    return end;
  }

  private onRequestComplete(): void {
    if (this.phase !== R_HEAD && this.phase !== R_WAIT) return;
    const plan = this.plan;
    if (plan !== undefined) {
      // Before beginForwarding (a fault delay) the route's clock has not started: it starts there.
      if (this.destination === undefined) return;
      this.mirror();
      if (plan.timeoutMs > 0) {
        // The route's timeout replaces the proxy's default, and covers every attempt.
        if (this.routeTimer === undefined) this.routeTimer = setTimeout(onRouteTimeout, plan.timeoutMs, this);
        return;
      }
    }
    if (this.conn.limits.requestTimeoutMs <= 0 || this.responseTimerArmed) return;
    this.responseTimerArmed = true;
    this.responseSince = -1;
  }

  /** From the sweep: the request timeout (end of request to response head) has passed → 504 UT. */
  checkResponseDeadline(now: number): void {
    if (!this.responseTimerArmed) return;
    if (this.responseSince < 0) {
      this.responseSince = now;
      return;
    }
    if (now - this.responseSince < this.conn.limits.requestTimeoutMs || !this.active || (this.phase !== R_HEAD && this.phase !== R_WAIT)) return;
    this.responseTimerArmed = false;
    const key = this.choice.endpointKey;
    if (this.phase === R_HEAD) this.recordAttempt('timeout');
    this.answer(wireError('UT', `no response from ${key} within ${this.conn.limits.requestTimeoutMs} ms`), this.phase === R_HEAD);
  }

  // ---- upstream events -------------------------------------------------

  onUpstreamData(up: UpstreamConnection, chunk: Buffer): void {
    if (up !== this.upstream) return;
    this.conn.heard = true;
    this.upstreamBytes += chunk.length;
    switch (this.phase) {
      case R_HEAD:
        this.readResponseHead(chunk, 0);
        return;
      case R_BODY:
        this.forwardResponseBody(chunk, 0, '');
        return;
      case R_TUNNEL:
        if (this.obs !== undefined) this.obs.responseBytes += chunk.length;
        if (!forwardUpstreamBytes(this.conn.socket, up, chunk)) this.pauseUpstream();
        return;
      default:
        // Bytes after a complete response: the connection is out of step, never reuse it.
        this.upstreamReusable = false;
    }
  }

  onUpstreamEnd(up: UpstreamConnection): void {
    if (up !== this.upstream) return;
    if (this.phase === R_TUNNEL) {
      this.conn.socket.end();
      return;
    }
    if (this.phase === R_BODY && this.responseBody.mode === BODY_UNTIL_CLOSE) {
      this.upstreamReusable = false;
      this.responseComplete(false);
      return;
    }
    this.upstreamLost(up, undefined);
  }

  onUpstreamClose(up: UpstreamConnection, err: Error | undefined): void {
    if (up !== this.upstream) return;
    this.upstream = undefined;
    if (this.phase === R_TUNNEL) {
      if (err === undefined) {
        this.endTunnel(undefined);
      } else {
        const message = `${this.choice.endpointKey}: ${err.message}`;
        (this.obs as HttpObservation).addFlag('UC', message);
        this.endTunnel(message);
      }
      return;
    }
    this.upstreamLost(up, err);
  }

  onUpstreamDrain(up: UpstreamConnection): void {
    if (up !== this.upstream) return;
    this.conn.heard = true;
    this.conn.resumeReading();
  }

  onDownstreamDrain(): void {
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      if (this.upstream !== undefined) this.upstream.socket.resume();
    }
  }

  private pauseUpstream(): void {
    if (this.upstream !== undefined) {
      this.upstream.socket.pause();
      this.upstreamPaused = true;
    }
  }

  /** The upstream connection ended or failed before the response did. */
  private upstreamLost(up: UpstreamConnection, err: Error | undefined): void {
    if (this.phase === R_HEAD && this.upstreamBytes === 0 && up.completedRequests > 0 && !this.retried && this.canRetry()) {
      // The keep-alive race: the server closed the pooled connection as we sent on it.
      this.retried = true;
      if (this.upstream !== undefined) this.conn.deps.pool.discard(this.upstream);
      const destination = this.destination;
      this.upstream = this.conn.deps.pool.connectFresh(this.choice.endpoint as ClusterEndpoint, this, destination === undefined ? undefined : destination.limits);
      if (this.upstream !== undefined) {
        this.sendHead();
        return;
      }
    }
    const key = this.choice.endpointKey;
    const detail = err === undefined ? `${key} closed the connection` : `${key}: ${err.message}`;
    if (this.phase === R_HEAD) {
      const flag: ResponseFlag = err === undefined ? (up.connected ? 'UC' : 'UF') : upstreamSocketFlag(err as NodeJS.ErrnoException, up.connected);
      if (this.destination !== undefined) {
        const outcome = flagOutcome(flag);
        if (this.mayRetry(outcome, 0)) return this.retry(outcome, wireError(flag, detail), 0);
        this.recordAttempt(outcome);
      }
      this.answer(wireError(flag, detail), true);
    } else if (this.phase === R_BODY) {
      this.abortResponse('UC', `response body cut short: ${detail}`);
    }
  }

  private canRetry(): boolean {
    const bodyAgain = this.kept !== undefined ? this.keptBytes === 0 : this.firstBody === undefined;
    return (this.kept !== undefined || !this.moreBodySent) && (bodyAgain || isIdempotent((this.obs as HttpObservation).method));
  }

  // ---- response ----------------------------------------------------------

  /** Response head bytes at chunk[start…]: interim responses are relayed, the final one starts the body. */
  private readResponseHead(chunk: Buffer, start: number): void {
    const limits = this.conn.limits;
    const reader = this.responseHeadReader;
    const response = this.response;
    for (;;) {
      const next = reader.read(chunk, start);
      if (next === HEAD_INCOMPLETE) return;
      if (next === HEAD_TOO_LARGE) return this.upstreamProtocolError(`response head larger than ${limits.maxHeaderBytes} bytes`);
      const parsed = parseResponseHead(reader.text, reader.bytes, reader.base, response, limits);
      reader.forgetBytes();
      if (parsed !== HEAD_OK) return this.upstreamProtocolError(response.error);
      const status = response.statusCode;
      if (status >= 200) return this.onFinalHead(chunk, next);
      if (status === 101) {
        if (!this.upgrade) return this.upstreamProtocolError('101 Switching Protocols to a request that asked for no upgrade');
        return this.startTunnel(chunk, next);
      }
      this.relayInterim();
      if (next >= chunk.length) return;
      start = next;
    }
  }

  /** 1xx (100 Continue, 103 Early Hints…) go to HTTP/1.1 clients before the final response (RFC 9110 §15.2). */
  private relayInterim(): void {
    if (this.conn.head.versionMinor === 0) return;
    const response = this.response;
    this.conn.socket.write(responseStatusLine(response) + keptFieldLines(response, forwardResponseField, this.explicitProxy, false, false) + '\r\n', 'latin1');
  }

  private onFinalHead(chunk: Buffer, bodyStart: number): void {
    const response = this.response;
    const conn = this.conn;
    if (this.destination !== undefined) {
      const status = response.statusCode;
      const outcome = statusOutcome(status);
      // A retried answer never goes downstream: its connection is dropped (the body unread) and the next attempt starts.
      if (this.plan !== undefined && this.plan.retry !== null && this.mayRetry(outcome, status)) return this.retry(outcome, undefined, status);
      this.recordAttempt(outcome);
      this.clearTimers();
      if (this.retriesExhausted) (this.obs as HttpObservation).addFlag('URX', `retries exhausted: ${status} from ${this.choice.endpointKey}`);
    }
    const obs = this.obs as HttpObservation;
    this.responseTimerArmed = false;
    obs.statusCode = response.statusCode;
    if (!this.responseBody.startResponse(response, obs.method, conn.limits.maxHeaderBytes)) {
      return this.upstreamProtocolError('chunked is not the last transfer coding');
    }
    const keepAliveHint = response.valueOf(H_KEEP_ALIVE);
    if (keepAliveHint !== undefined && this.upstream !== undefined) this.upstream.applyKeepAliveHint(keepAliveHint);
    const untilClose = this.responseBody.mode === BODY_UNTIL_CLOSE;
    this.upstreamReusable = !untilClose && !response.connectionClose && (response.versionMinor >= 1 || response.connectionKeepAlive);
    if (untilClose || !this.keepAlive || conn.clientEnded) this.closeAfter = true;
    let head = responseStatusLine(response);
    if (this.editsResponse) {
      const edit = headerEditLines((this.plan as RoutePlan).responseHeaders);
      head += keptFieldLinesExcept(response, forwardResponseField, this.explicitProxy, false, false, edit.drops, false) + edit.lines;
    } else {
      head += keptFieldLines(response, forwardResponseField, this.explicitProxy, false, false);
    }
    if (this.closeAfter) head += 'connection: close\r\n';
    else if (conn.head.versionMinor === 0) head += 'connection: keep-alive\r\n';
    this.finalHeadSent = true;
    this.phase = R_BODY;
    this.forwardResponseBody(chunk, bodyStart, head + '\r\n');
  }

  /** Body bytes at chunk[start…], preceded by the response head when it is still to be written. */
  private forwardResponseBody(chunk: Buffer, start: number, head: string): void {
    const framing = this.responseBody;
    let end = start;
    let complete: boolean;
    if (framing.mode === BODY_NONE) {
      complete = true;
    } else {
      const r = framing.consume(chunk, start, chunk.length);
      if (r === BODY_ERROR) {
        if (head !== '') this.conn.socket.write(head, 'latin1');
        return this.abortResponse('UPE', `malformed chunked response body: ${framing.error}`);
      }
      end = r === BODY_MORE ? chunk.length : r;
      complete = r !== BODY_MORE;
    }
    const down = this.conn.socket;
    let ok: boolean;
    if (head !== '') {
      ok = writeHeadAndBody(down, head, end > start ? chunk.subarray(start, end) : undefined);
      lendIfQueued(down, this.upstream);
    } else {
      ok = end > start ? forwardUpstreamBytes(down, this.upstream, start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end)) : true;
    }
    if (complete) this.responseComplete(end < chunk.length);
    else if (!ok) this.pauseUpstream();
  }

  private responseComplete(extraBytes: boolean): void {
    this.phase = R_DONE;
    const obs = this.obs as HttpObservation;
    obs.responseBytes = this.responseBody.bodyBytes;
    const up = this.upstream;
    this.upstream = undefined;
    const pool = this.conn.deps.pool;
    if (up !== undefined) {
      // A response that ended before its request did leaves the upstream mid-request: close both ways.
      if (!this.requestDone) {
        this.closeAfter = true;
        pool.discard(up);
      } else if (this.upstreamReusable && !extraBytes) {
        pool.release(up);
      } else {
        pool.discard(up);
      }
    }
    this.finish(undefined);
  }

  private upstreamProtocolError(reason: string): void {
    const key = this.choice.endpointKey;
    if (this.finalHeadSent) this.abortResponse('UPE', `${key}: ${reason}`);
    else this.answer(wireError('UPE', `${key}: ${reason}`), true);
  }

  // ---- ends ----------------------------------------------------------------

  /**
   * The proxy answers instead of the upstream (nothing of a final response
   * was sent yet). `endpointFailure` counts it against the endpoint.
   */
  private answer(err: WireError, endpointFailure: boolean, extraFields = ''): void {
    const obs = this.obs as HttpObservation;
    const conn = this.conn;
    if (this.upstream !== undefined) {
      conn.deps.pool.discard(this.upstream);
      this.upstream = undefined;
    }
    this.clearTimers();
    this.phase = R_DONE;
    obs.addFlag(err.flag, err.message);
    if (this.retriesExhausted) obs.addFlag('URX', err.message);
    obs.statusCode = err.httpStatus;
    this.closeAfter = err.closeDownstream || !this.requestDone || !this.keepAlive || conn.clientEnded;
    const isHead = obs.method === 'HEAD';
    obs.responseBytes = isHead ? 0 : wireErrorBody(err).length;
    conn.socket.write(errorResponse(err, this.closeAfter, isHead, extraFields), 'latin1');
    this.finish(endpointFailure ? err.message : undefined);
  }

  /** A route's redirect: the status and Location, no body, no flag. */
  private answerRedirect(status: number, location: string): void {
    const obs = this.obs as HttpObservation;
    const conn = this.conn;
    this.phase = R_DONE;
    obs.statusCode = status;
    obs.responseBytes = 0;
    this.closeAfter = !this.requestDone || !this.keepAlive || conn.clientEnded;
    conn.socket.write(redirectResponse(status, location, this.closeAfter), 'latin1');
    this.finish(undefined);
  }

  /** A failure after the response head went downstream: the client must see the body cut short, so the connection is destroyed. */
  private abortResponse(flag: ResponseFlag, message: string): void {
    const obs = this.obs as HttpObservation;
    obs.addFlag(flag, message);
    obs.responseBytes = this.responseBody.bodyBytes;
    this.phase = R_DONE;
    if (this.upstream !== undefined) {
      this.conn.deps.pool.discard(this.upstream);
      this.upstream = undefined;
    }
    this.closeAfter = true;
    this.conn.socket.destroy();
    this.finish(message);
  }

  /** The request itself turned out malformed after forwarding began (a bad chunk). */
  private failRequest(err: WireError): void {
    if (this.finalHeadSent) this.abortResponse(err.flag, err.message);
    else this.answer(err, false);
  }

  /** The client went away (FIN before the request ended, or the socket closed). */
  onDownstreamGone(reason: string): void {
    if (!this.active) return;
    if (this.phase === R_TUNNEL) {
      this.endTunnel(undefined);
      return;
    }
    const obs = this.obs as HttpObservation;
    obs.addFlag('DC', reason);
    if (!this.finalHeadSent) obs.statusCode = wireError('DC').httpStatus;
    obs.responseBytes = this.responseBody.bodyBytes;
    this.phase = R_DONE;
    if (this.upstream !== undefined) {
      this.conn.deps.pool.discard(this.upstream);
      this.upstream = undefined;
    }
    this.closeAfter = true;
    this.conn.socket.destroy();
    this.finish(undefined);
  }

  /** The client half-closed: fine once the request is complete (the response still goes out), else DC. */
  onDownstreamEnd(): void {
    if (!this.active) return;
    if (this.phase === R_TUNNEL) {
      if (this.upstream !== undefined) this.upstream.socket.end();
      return;
    }
    if (!this.requestDone) this.onDownstreamGone('downstream closed before the request ended');
  }

  /** No bytes either way for streamIdleTimeoutMs. */
  onStreamIdle(): void {
    if (!this.active) return;
    const message = `no bytes for ${this.conn.limits.streamIdleTimeoutMs} ms`;
    if (this.phase === R_TUNNEL) {
      (this.obs as HttpObservation).addFlag('SI', message);
      this.endTunnel(message);
    } else if (this.finalHeadSent) {
      this.abortResponse('SI', message);
    } else {
      this.answer(wireError('SI', message), false);
    }
  }

  private finish(endpointFailure: string | undefined): void {
    const obs = this.obs as HttpObservation;
    this.obs = undefined;
    this.active = false;
    this.responseTimerArmed = false;
    this.firstBody = undefined;
    this.upstreamHead = '';
    if (this.plan !== undefined) this.endPlan();
    if (obs.requestBytes === 0) obs.requestBytes = this.requestBody.bodyBytes;
    this.choice.end(endpointFailure);
    finishHttpObservation(this.conn.deps.telemetry, obs);
    this.conn.onExchangeDone(this.closeAfter);
  }

  /** The plan's timers, waits and counters end with the request. */
  private endPlan(): void {
    this.clearTimers();
    const destination = this.destination;
    if (destination !== undefined) {
      destination.limits.requestEnded();
      if (this.retryHeld) destination.limits.retryEnded();
    }
    this.plan = undefined;
    this.destination = undefined;
    this.retryHeld = false;
    this.retriesExhausted = false;
    this.failedEndpoint = undefined;
    this.attempt = 1;
    this.kept = undefined;
    this.keptBytes = 0;
    this.held = undefined;
    this.editsRequest = false;
    this.editsResponse = false;
    this.mirrored = false;
  }

  // ---- 101: raw pipe ---------------------------------------------------------

  private startTunnel(chunk: Buffer, next: number): void {
    const response = this.response;
    const conn = this.conn;
    if (this.destination !== undefined) {
      this.recordAttempt('success');
      this.clearTimers();
    }
    this.responseTimerArmed = false;
    (this.obs as HttpObservation).statusCode = 101;
    this.phase = R_TUNNEL;
    this.finalHeadSent = true;
    this.closeAfter = true;
    conn.state = D_TUNNEL;
    const head = responseStatusLine(response) + keptFieldLines(response, forwardResponseField, this.explicitProxy, true, false) + 'connection: upgrade\r\n\r\n';
    const ok = writeHeadAndBody(conn.socket, head, next < chunk.length ? chunk.subarray(next) : undefined);
    lendIfQueued(conn.socket, this.upstream);
    if (next < chunk.length) (this.obs as HttpObservation).responseBytes += chunk.length - next;
    if (!ok) this.pauseUpstream();
    // Bytes the client sent after its upgrade request, held while the answer was pending.
    const early = conn.takeStash();
    if (early !== undefined) this.tunnelToUpstream(early);
    conn.resumeReading();
  }

  tunnelToUpstream(chunk: Buffer): void {
    const up = this.upstream;
    if (up === undefined) return;
    (this.obs as HttpObservation).requestBytes += chunk.length;
    if (!up.socket.write(chunk)) this.conn.pauseReading();
  }

  /** The pipe ends with either side closing: a clean close lets the other side flush and end, a failed one resets it. */
  private endTunnel(error: string | undefined): void {
    if (!this.active) return;
    this.phase = R_DONE;
    if (this.upstream !== undefined) {
      this.conn.deps.pool.discard(this.upstream, error === undefined);
      this.upstream = undefined;
    }
    if (error !== undefined) this.conn.socket.destroy();
    this.finish(undefined);
  }
}

/** The request's own facts, copied to another observation of it (a retry's, a mirror's). */
function copyRequest(from: HttpObservation, to: HttpObservation): void {
  to.method = from.method;
  to.host = from.host;
  to.port = from.port;
  to.path = from.path;
  to.query = from.query;
  to.userAgent = from.userAgent;
  to.requestId = from.requestId;
  to.sourceService = from.sourceService;
  to.sourceNamespace = from.sourceNamespace;
  to.sourceVersion = from.sourceVersion;
  to.destinationService = from.destinationService;
  to.destinationNamespace = from.destinationNamespace;
  to.routeName = from.routeName;
  to.subset = from.subset;
}

/** `held` with `chunk` appended (a new list when there was none). */
function chunkHolder(held: Buffer[] | undefined, chunk: Buffer): Buffer[] {
  if (held === undefined) return [chunk];
  held.push(chunk);
  return held;
}
