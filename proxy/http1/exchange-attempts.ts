/**
 * The attempt loop of an Exchange with a route plan: the destination's
 * maxRequests, one attempt per endpoint pick (its own CLIENT span), a
 * connection or a wait for one (pool limits), and a failed attempt that the
 * plan's retry policy covers retried on another endpoint after a backoff,
 * within the attempts, maxRetries and the budget (else the last attempt's
 * answer goes down with flag URX). The route timeout spans every attempt
 * and backoff, from the end of the request until the response (body
 * included) is complete, as Envoy's route timeout does; the per-try
 * timeout one attempt until its response head (Envoy ignores a per-try
 * timeout once the response has started downstream). Also the keep-alive
 * race: a request that met a stale pooled connection goes again on a fresh
 * one. Functions of the exchange; timers carry the exchange as their
 * argument (no closures).
 */
import { upstreamSocketFlag, wireError, type ResponseFlag, type WireError } from '../errors-to-wire.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { isRetriable, retryBackoffMs } from '../pipeline/retry.js';
import type { AttemptOutcome, Destination, RoutePlan } from '../pipeline/types.js';
import { finishHttpObservation, type HttpObservation } from '../telemetry/http-observation.js';
import { BODY_NONE } from './body-framing.js';
import { abortResponse, answer } from './exchange-answers.js';
import { R_BODY, R_HEAD, R_WAIT, W_BACKOFF, W_CONNECTION, W_DELAY, W_NONE } from './exchange-phase.js';
import { onRequestComplete, sendHead } from './exchange-request.js';
import type { Exchange } from './exchange.js';
import { newHttp1Observation } from './refusal.js';
import { observeEndpoint } from './routing.js';
import type { UpstreamConnection } from './upstream-pool.js';
import { plannedRequestHead, upstreamRequestHead } from './upstream-request.js';

/** Timer callback: a fault delay or a retry backoff is over. */
export function onWaitOver(ex: Exchange): void {
  ex.waitTimer = undefined;
  const waited = ex.waitingFor;
  if (!ex.active || ex.phase !== R_WAIT || (waited !== W_DELAY && waited !== W_BACKOFF)) return;
  ex.waitingFor = W_NONE;
  if (waited === W_DELAY) beginForwarding(ex);
  else startAttempt(ex);
}

/** How a response status counts for outlier detection and retries. */
export function statusOutcome(status: number): AttemptOutcome {
  if (status < 500) return 'success';
  return status >= 502 && status <= 504 ? 'gateway' : '5xx';
}

function flagOutcome(flag: ResponseFlag): AttemptOutcome {
  if (flag === 'UF') return 'connect-failure';
  if (flag === 'UT') return 'timeout';
  return 'reset';
}

/** Methods whose retry on a fresh connection cannot repeat a side effect (RFC 9110 §9.2.2). */
function isIdempotent(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'PUT' || method === 'DELETE' || method === 'TRACE';
}

/** After the plan's local answers and fault delay: the destination, its maxRequests, then the first attempt. */
export function beginForwarding(ex: Exchange): void {
  const plan = ex.plan as RoutePlan;
  const destination = plan.destination;
  if (destination === undefined) return answer(ex, wireError('UH', `route rule ${plan.routeName} names a destination this configuration does not define`), false);
  if (!destination.limits.tryStartRequest()) {
    ex.conn.deps.telemetry.metrics.recordOverflow?.(destination.name);
    return answer(ex, wireError('UO', `${destination.name}: maxRequests reached`), false);
  }
  ex.destination = destination;
  ex.choice.destination = destination;
  if (ex.requestDone) onRequestComplete(ex);
  startAttempt(ex);
}

/** One attempt: an endpoint (avoiding the one that just failed), the head, a connection (or a wait for one). */
export function startAttempt(ex: Exchange): void {
  const destination = ex.destination as Destination;
  const plan = ex.plan as RoutePlan;
  const obs = ex.obs as HttpObservation;
  const endpoint = destination.pick(ex.facts, ex.failedEndpoint);
  if (endpoint === undefined) return answer(ex, wireError('UH', destination.name), false);
  // The endpoint's live counters (least request reads them; the admin page shows them): start here, end with the attempt.
  ex.choice.cluster = destination.cluster;
  ex.choice.endpoint = endpoint;
  destination.cluster.onRequestStart(endpoint);
  ex.outcomeRecorded = false;
  ex.retried = false;
  observeEndpoint(obs, endpoint);
  obs.lbPanic = destination.lastPickPanicked === true;
  const head = ex.conn.head;
  ex.upstreamHead = ex.editsRequest ? plannedRequestHead(head, ex.target, obs, ex, plan, undefined, '') : upstreamRequestHead(head, ex.target, obs, ex);
  const pool = ex.conn.deps.pool;
  const up = pool.acquire(endpoint, ex, destination.limits, ex.clientAddress);
  if (up !== undefined) return attach(ex, up);
  const waitMs = destination.limits.connectTimeoutMs ?? ex.conn.limits.connectTimeoutMs;
  if (!pool.wait(endpoint, ex, destination.limits, waitMs, ex.clientAddress)) {
    ex.conn.deps.telemetry.metrics.recordOverflow?.(destination.name);
    return answer(ex, wireError('UO', `${destination.name}: maxConnections and maxPendingRequests reached`), false);
  }
  ex.phase = R_WAIT;
  ex.waitingFor = W_CONNECTION;
  if (!ex.requestDone) ex.conn.pauseReading();
}

/** The attempt has its connection: the head and the body so far go out, the per-try timeout starts. */
export function attach(ex: Exchange, up: UpstreamConnection): void {
  ex.upstream = up;
  ex.phase = R_HEAD;
  ex.waitingFor = W_NONE;
  ex.upstreamBytes = 0;
  ex.responseHeadReader.reset();
  sendHead(ex);
  const retry = (ex.plan as RoutePlan).retry;
  if (retry !== null && retry.perTryTimeoutMs !== null && retry.perTryTimeoutMs > 0) ex.tryTimer = setTimeout(onTryTimeout, retry.perTryTimeoutMs, ex);
}

/** A pending request's connection (pool limits); one for a request that moved on goes back. */
export function connectionReady(ex: Exchange, up: UpstreamConnection): void {
  if (!ex.active || ex.phase !== R_WAIT || ex.waitingFor !== W_CONNECTION) {
    ex.conn.deps.pool.release(up);
    return;
  }
  attach(ex, up);
}

/** A pending request got no connection in time: 503 UO. */
export function connectionWaitExpired(ex: Exchange, waitedMs: number): void {
  if (!ex.active || ex.waitingFor !== W_CONNECTION) return;
  ex.waitingFor = W_NONE;
  const name = ex.destination === undefined ? '' : ex.destination.name;
  ex.conn.deps.telemetry.metrics.recordOverflow?.(name);
  answer(ex, wireError('UO', `${name}: no connection within ${waitedMs} ms`), false);
}

/** Whether a failed attempt is retried; a retriable one that is not marks the request URX. */
export function mayRetry(ex: Exchange, outcome: AttemptOutcome, status: number): boolean {
  const plan = ex.plan;
  const policy = plan === undefined ? null : plan.retry;
  if (policy === null || ex.destination === undefined || ex.finalHeadSent) return false;
  if (!isRetriable(policy, outcome, status)) return false;
  if (ex.kept === undefined && ex.requestBody.mode !== BODY_NONE) return false;
  if (ex.attempt > policy.attempts || !ex.destination.limits.tryStartRetry(policy.budget)) {
    ex.retriesExhausted = true;
    return false;
  }
  return true;
}

/** The attempt's outcome, once, to the destination's outlier detection; an ejection it caused (or that was refused) goes on the attempt's span. */
export function recordAttempt(ex: Exchange, outcome: AttemptOutcome): void {
  if (ex.outcomeRecorded || ex.destination === undefined || ex.choice.endpoint === undefined) return;
  ex.outcomeRecorded = true;
  const decision = ex.destination.recordOutcome(ex.choice.endpoint, outcome);
  if (decision !== undefined && ex.obs !== undefined) ex.obs.noteOutlierDecision(decision);
}

/**
 * Ends the failed attempt (its span says how: `status` from the upstream,
 * or `err`) and starts the next after the backoff. mayRetry said yes, so
 * the retry counters are taken. The caller has dealt with the attempt's
 * connection when it could be kept (a drained response); any still
 * attached is discarded.
 */
export function retry(ex: Exchange, outcome: AttemptOutcome, err: WireError | undefined, status: number): void {
  const destination = ex.destination as Destination;
  const policy = (ex.plan as RoutePlan).retry as NonNullable<RoutePlan['retry']>;
  const telemetry = ex.conn.deps.telemetry;
  recordAttempt(ex, outcome);
  if (ex.upstream !== undefined) {
    ex.conn.deps.pool.discard(ex.upstream);
    ex.upstream = undefined;
  }
  clearTryTimer(ex);
  const failed = ex.obs as HttpObservation;
  const endpoint = ex.choice.endpoint as ClusterEndpoint;
  destination.cluster.onRequestEnd(endpoint, err === undefined ? `${status} from ${endpoint.key}` : err.message);
  ex.choice.cluster = undefined;
  if (err !== undefined) failed.addFlag(err.flag, err.message);
  failed.statusCode = status;
  failed.requestBytes = ex.requestBody.bodyBytes;
  finishHttpObservation(telemetry, failed);
  telemetry.metrics.recordRetry?.(destination.name);
  if (ex.retryHeld) destination.limits.retryEnded();
  ex.retryHeld = true;
  ex.failedEndpoint = endpoint;
  ex.attempt++;
  ex.obs = nextAttemptObservation(ex, failed);
  ex.phase = R_WAIT;
  const backoffMs = retryBackoffMs(policy, ex.attempt - 1, ex.random);
  if (backoffMs > 0) {
    ex.waitingFor = W_BACKOFF;
    ex.waitTimer = setTimeout(onWaitOver, backoffMs, ex);
  } else {
    startAttempt(ex);
  }
}

/** The next attempt's observation: its own span under the same parent, the request's facts copied. */
function nextAttemptObservation(ex: Exchange, prev: HttpObservation): HttpObservation {
  const obs = newHttp1Observation(ex.conn, { traceId: prev.traceId, spanId: prev.parentSpanId, sampled: prev.sampled, traceState: prev.traceState });
  copyRequest(prev, obs);
  obs.attempt = ex.attempt;
  return obs;
}

/** Timer callback: the per-try timeout passed without a response head; retried when the policy covers timeouts, else 504 UT. */
function onTryTimeout(ex: Exchange): void {
  ex.tryTimer = undefined;
  if (!ex.active || ex.phase !== R_HEAD) return;
  const policy = (ex.plan as RoutePlan).retry;
  const err = wireError('UT', `no response from ${ex.choice.endpointKey} within the per-try timeout of ${policy === null ? 0 : (policy.perTryTimeoutMs ?? 0)} ms`);
  if (mayRetry(ex, 'timeout', 0)) return retry(ex, 'timeout', err, 0);
  recordAttempt(ex, 'timeout');
  answer(ex, err, true);
}

/**
 * Timer callback: the route's timeout (all attempts, backoffs and the
 * response body) passed. Before the response head: 504 UT. After it went
 * downstream: the response is cut (the connection destroyed, so the client
 * sees the body short) and the span says UT.
 */
export function onRouteTimeout(ex: Exchange): void {
  ex.routeTimer = undefined;
  if (!ex.active) return;
  const timeoutMs = (ex.plan as RoutePlan).timeoutMs;
  if (ex.phase === R_BODY) return abortResponse(ex, 'UT', `response not complete within the route timeout of ${timeoutMs} ms`);
  if (ex.phase !== R_HEAD && ex.phase !== R_WAIT) return;
  if (ex.phase === R_HEAD) recordAttempt(ex, 'timeout');
  answer(ex, wireError('UT', `no response within the route timeout of ${timeoutMs} ms`), ex.phase === R_HEAD);
}

/** The response head arrived: the attempt's own timers end; the route's timeout runs on until the response is complete. */
export function clearAttemptTimers(ex: Exchange): void {
  clearTryTimer(ex);
  if (ex.waitTimer !== undefined) {
    clearTimeout(ex.waitTimer);
    ex.waitTimer = undefined;
  }
}

function clearTryTimer(ex: Exchange): void {
  if (ex.tryTimer !== undefined) {
    clearTimeout(ex.tryTimer);
    ex.tryTimer = undefined;
  }
}

/** Every timer and wait of the request. */
export function clearTimers(ex: Exchange): void {
  clearTryTimer(ex);
  if (ex.waitTimer !== undefined) {
    clearTimeout(ex.waitTimer);
    ex.waitTimer = undefined;
  }
  if (ex.routeTimer !== undefined) {
    clearTimeout(ex.routeTimer);
    ex.routeTimer = undefined;
  }
  if (ex.waitingFor === W_CONNECTION) ex.conn.deps.pool.cancelWait(ex);
  ex.waitingFor = W_NONE;
}

/** The upstream connection ended or failed before the response did. */
export function upstreamLost(ex: Exchange, up: UpstreamConnection, err: Error | undefined): void {
  if (ex.phase === R_HEAD && ex.upstreamBytes === 0 && up.completedRequests > 0 && !ex.retried && canResend(ex)) {
    // The keep-alive race: the server closed the pooled connection as we sent on it.
    ex.retried = true;
    if (ex.upstream !== undefined) ex.conn.deps.pool.discard(ex.upstream);
    const destination = ex.destination;
    ex.upstream = ex.conn.deps.pool.connectFresh(ex.choice.endpoint as ClusterEndpoint, ex, destination === undefined ? undefined : destination.limits, ex.clientAddress);
    if (ex.upstream !== undefined) {
      sendHead(ex);
      return;
    }
  }
  const key = ex.choice.endpointKey;
  const detail = err === undefined ? `${key} closed the connection` : `${key}: ${err.message}`;
  if (ex.phase === R_HEAD) {
    const flag: ResponseFlag = err === undefined ? (up.connected ? 'UC' : 'UF') : upstreamSocketFlag(err as NodeJS.ErrnoException, up.connected);
    if (ex.destination !== undefined) {
      const outcome = flagOutcome(flag);
      if (mayRetry(ex, outcome, 0)) return retry(ex, outcome, wireError(flag, detail), 0);
      recordAttempt(ex, outcome);
    }
    answer(ex, wireError(flag, detail), true);
  } else if (ex.phase === R_BODY) {
    abortResponse(ex, 'UC', `response body cut short: ${detail}`);
  }
}

/** Whether the request can go again on a fresh connection: all of its body is still here, or repeating it is harmless. */
function canResend(ex: Exchange): boolean {
  const bodyAgain = ex.kept !== undefined ? ex.keptBytes === 0 : ex.firstBody === undefined;
  return (ex.kept !== undefined || !ex.moreBodySent) && (bodyAgain || isIdempotent((ex.obs as HttpObservation).method));
}

/** The request's own facts, copied to another observation of it (a retry's, a mirror's). */
export function copyRequest(from: HttpObservation, to: HttpObservation): void {
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
