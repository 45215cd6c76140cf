/**
 * One request/response forwarded from a downstream connection to an upstream
 * endpoint. One Exchange per downstream connection, reused for each of its
 * requests (they are served in order), so a request allocates only its
 * observation, its strings and its upstream writes.
 *
 * This file holds the exchange's state, the start of a request and the
 * events that reach it (from serve.ts, the pool and timers). Its logic lives
 * by concern in files of their own, as functions of the exchange (no
 * closures per request):
 * - exchange-request.ts: the upstream head, the request body (raw, with
 *   backpressure, kept for a resend), the mirror copy, the request timeout;
 * - exchange-attempts.ts: the destination's limits and the attempt loop —
 *   retries, backoff, per-try and route timeouts, the keep-alive race;
 * - exchange-response.ts: interim and final response heads, the body, the
 *   keep-alive decision, the raw pipe after a 101;
 * - exchange-answers.ts: the proxy's own answers (no route, rate limit,
 *   redirect, fault abort, every failure through errors-to-wire.ts) and the
 *   end of a request.
 *
 * Traffic management (outbound, proxy/pipeline): the route plan's local
 * answers, then the fault delay, then the destination's limits and
 * attempts, each its own CLIENT span. Timers exist only for plans that ask
 * for them: a plan without retry, timeout, fault, mirror or edits costs a
 * pick and the limit counters, no buffering and no timer.
 */
import { wireError } from '../errors-to-wire.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { isEmptyHeaderEdit } from '../pipeline/header-edits.js';
import type { Destination, RoutePlan } from '../pipeline/types.js';
import type { HttpObservation } from '../telemetry/http-observation.js';
import { BODY_ERROR, BODY_MORE, BODY_NONE, BODY_UNTIL_CLOSE, BodyFraming } from './body-framing.js';
import { D_BODY, D_WAIT } from './conn-state.js';
import { abortResponse, answer, answerEarly, answeredByPlan, downstreamGone, rateLimited } from './exchange-answers.js';
import { beginForwarding, connectionReady, connectionWaitExpired, onWaitOver, recordAttempt, upstreamLost } from './exchange-attempts.js';
import { R_BODY, R_DONE, R_HEAD, R_TUNNEL, R_WAIT, W_DELAY, W_NONE } from './exchange-phase.js';
import { keep, observeRequest, onRequestComplete, requestBodyBytes, sendHead } from './exchange-request.js';
import { endTunnel, forwardResponseBody, forwardUpstreamBytes, pauseUpstream, readResponseHead, responseComplete } from './exchange-response.js';
import { HttpHead } from './head.js';
import { HeadReader } from './head-reader.js';
import { H_ROUTE, H_UPGRADE } from './header-kinds.js';
import { Http1RequestFacts } from './request-facts.js';
import { RequestTarget } from './request-target.js';
import type { ResponseDrain } from './response-drain.js';
import { RouteChoice, routeRequest } from './routing.js';
import type { DownstreamConnection } from './serve.js';
import type { UpstreamClient, UpstreamConnection } from './upstream-pool.js';
import { planEditsRequest, upstreamRequestHead, type UpstreamRequestOptions } from './upstream-request.js';

/**
 * The state of one downstream connection's current request. Its fields are
 * read and written by exchange-*.ts beside it (the logic by concern) and by
 * nothing else.
 */
export class Exchange implements UpstreamClient, UpstreamRequestOptions {
  active = false;
  obs: HttpObservation | undefined = undefined;
  readonly target = new RequestTarget();
  readonly response = new HttpHead();
  readonly responseHeadReader: HeadReader;
  readonly requestBody: BodyFraming;
  readonly responseBody: BodyFraming;
  readonly choice = new RouteChoice();
  readonly facts: Http1RequestFacts;
  /** Retry backoff jitter (Http1Deps.random, else Math.random). */
  readonly random: () => number;
  upstream: UpstreamConnection | undefined = undefined;
  // Traffic management, per request (see the file comment); all unset without a plan.
  plan: RoutePlan | undefined = undefined;
  /** Set once the destination's maxRequests admitted the request (requestEnded() is then owed). */
  destination: Destination | undefined = undefined;
  attempt = 1;
  /** A retry holds the destination's retry counters (retryEnded() is owed). */
  retryHeld = false;
  /** The current attempt's outcome went to outlier detection already. */
  outcomeRecorded = false;
  /** A retriable failure was not retried (attempts, maxRetries or the budget): flag URX. */
  retriesExhausted = false;
  failedEndpoint: ClusterEndpoint | undefined = undefined;
  /** Every request body byte so far, while a retry or mirror may resend them; undefined: not kept. */
  kept: Buffer[] | undefined = undefined;
  keptBytes = 0;
  /** Body bytes that arrived while no upstream was attached (not kept): they go out on attach. */
  held: Buffer[] | undefined = undefined;
  editsRequest = false;
  editsResponse = false;
  mirrored = false;
  waitingFor = W_NONE;
  waitTimer: NodeJS.Timeout | undefined = undefined;
  tryTimer: NodeJS.Timeout | undefined = undefined;
  routeTimer: NodeJS.Timeout | undefined = undefined;
  /** Reads a retried response's small body to its end so its connection goes back to the pool; made on first use. */
  drain: ResponseDrain | undefined = undefined;
  upstreamHead = '';
  /** The request body bytes sent along with the head; kept so a retry can send them again. */
  firstBody: Buffer | undefined = undefined;
  /** Body bytes went out after the first write: a retry could not repeat them. */
  moreBodySent = false;
  retried = false;
  requestDone = false;
  phase = R_DONE;
  finalHeadSent = false;
  upstreamBytes = 0;
  upstreamReusable = false;
  upstreamPaused = false;
  /** The downstream connection closes after this exchange. */
  closeAfter = false;
  /** The client wants the connection kept (HTTP/1.1 default, or 1.0 with keep-alive). */
  keepAlive = true;
  /** Waiting for the response head; the connection's sweep stamps responseSince (-1 until then) and checks it. */
  responseTimerArmed = false;
  responseSince = -1;

  // UpstreamRequestOptions, read by upstreamRequestHead.
  explicitProxy = false;
  upgrade = false;
  readonly rewriteTraceContext: boolean;
  /** Inbound with tracing on: a GET marked as an active health check is not traced (telemetry/health-check-trace.ts). */
  readonly untracedHealthChecks: boolean;
  newRequestId = '';
  readonly peerFields: string;
  /** The downstream client's address: the pool keys connections by it when they come from it (TPROXY). */
  readonly clientAddress: string;

  constructor(
    readonly conn: DownstreamConnection,
    peerFields: string,
  ) {
    const maxMeta = conn.limits.maxHeaderBytes;
    this.responseHeadReader = new HeadReader(maxMeta);
    this.requestBody = new BodyFraming(maxMeta);
    this.responseBody = new BodyFraming(maxMeta);
    this.peerFields = peerFields;
    this.clientAddress = conn.remoteAddress;
    this.rewriteTraceContext = conn.deps.telemetry.tracing;
    this.untracedHealthChecks = this.rewriteTraceContext && conn.deps.direction.direction === 'inbound';
    this.facts = new Http1RequestFacts(conn.head);
    this.random = conn.deps.random ?? Math.random;
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
    const obs = observeRequest(this, head);

    const failure = routeRequest(conn, head, this.target, obs, this.choice, this.facts);
    // Proxy-Authorization / Proxy-Authenticate were for this proxy only when the client used it as its forward proxy.
    this.explicitProxy = this.target.absolute && conn.deps.direction.direction === 'outbound';
    if (failure !== undefined) return answerEarly(this, failure, buf, bodyStart);
    const rateLimits = conn.deps.direction.rateLimits;
    if (rateLimits !== undefined && rateLimited(this, rateLimits().admit(conn.deps.telemetry.identity.service, conn.deps.telemetry.identity.namespace, head.valueOf(H_ROUTE) ?? '', conn.peer.service, conn.peer.namespace))) {
      return this.requestDone ? bodyStart : buf.length;
    }
    const plan = this.choice.plan;
    if (plan !== undefined) {
      if (answeredByPlan(this, plan)) return this.requestDone ? bodyStart : buf.length;
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
      if (r === BODY_ERROR) return answerEarly(this, wireError('DPE', this.requestBody.error), buf, bodyStart);
      end = r === BODY_MORE ? buf.length : r;
      if (end > bodyStart) {
        this.firstBody = buf.subarray(bodyStart, end);
        if (this.kept !== undefined) keep(this, this.firstBody);
      }
      if (r !== BODY_MORE) this.requestDone = true;
    }
    conn.state = this.requestDone ? D_WAIT : D_BODY;
    if (plan === undefined) {
      this.upstream = conn.deps.pool.acquire(this.choice.endpoint as ClusterEndpoint, this, undefined, this.clientAddress);
      sendHead(this);
      if (this.requestDone) onRequestComplete(this);
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
    beginForwarding(this);
    return end;
  }

  // ---- downstream events -----------------------------------------------

  /** Request body bytes at buf[start…]; returns the offset just past those consumed. */
  onRequestBody(buf: Buffer, start: number): number {
    return requestBodyBytes(this, buf, start);
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
    if (this.phase === R_HEAD) recordAttempt(this, 'timeout');
    answer(this, wireError('UT', `no response from ${key} within ${this.conn.limits.requestTimeoutMs} ms`), this.phase === R_HEAD);
  }

  /** The client went away (FIN before the request ended, or the socket closed). */
  onDownstreamGone(reason: string): void {
    if (!this.active) return;
    if (this.phase === R_TUNNEL) {
      endTunnel(this, undefined);
      return;
    }
    downstreamGone(this, reason);
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
      endTunnel(this, message);
    } else if (this.finalHeadSent) {
      abortResponse(this, 'SI', message);
    } else {
      answer(this, wireError('SI', message), false);
    }
  }

  onDownstreamDrain(): void {
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      if (this.upstream !== undefined) this.upstream.socket.resume();
    }
  }

  /** After a 101: client bytes go upstream raw. */
  tunnelToUpstream(chunk: Buffer): void {
    const up = this.upstream;
    if (up === undefined) return;
    (this.obs as HttpObservation).requestBytes += chunk.length;
    if (!up.socket.write(chunk)) this.conn.pauseReading();
  }

  // ---- upstream events (UpstreamClient) ----------------------------------

  onUpstreamData(up: UpstreamConnection, chunk: Buffer): void {
    if (up !== this.upstream) return;
    this.conn.heard = true;
    this.upstreamBytes += chunk.length;
    switch (this.phase) {
      case R_HEAD:
        readResponseHead(this, chunk, 0);
        return;
      case R_BODY:
        forwardResponseBody(this, chunk, 0, '');
        return;
      case R_TUNNEL:
        if (this.obs !== undefined) this.obs.responseBytes += chunk.length;
        if (!forwardUpstreamBytes(this.conn.socket, up, chunk)) pauseUpstream(this);
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
      responseComplete(this, false);
      return;
    }
    upstreamLost(this, up, undefined);
  }

  onUpstreamClose(up: UpstreamConnection, err: Error | undefined): void {
    if (up !== this.upstream) return;
    this.upstream = undefined;
    if (this.phase === R_TUNNEL) {
      if (err === undefined) {
        endTunnel(this, undefined);
      } else {
        const message = `${this.choice.endpointKey}: ${err.message}`;
        (this.obs as HttpObservation).addFlag('UC', message);
        endTunnel(this, message);
      }
      return;
    }
    upstreamLost(this, up, err);
  }

  onUpstreamDrain(up: UpstreamConnection): void {
    if (up !== this.upstream) return;
    this.conn.heard = true;
    this.conn.resumeReading();
  }

  /** A pending request's connection (pool limits). */
  onUpstreamReady(up: UpstreamConnection): void {
    connectionReady(this, up);
  }

  onUpstreamWaitExpired(waitedMs: number): void {
    connectionWaitExpired(this, waitedMs);
  }
}
