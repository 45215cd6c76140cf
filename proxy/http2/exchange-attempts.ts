/**
 * Traffic management of one exchange (outbound, `direction.traffic`): the
 * route plan's local decisions in order (redirect, NR, fault abort FI, UH,
 * maxRequests UO, fault delay), then tries on the destination's endpoints,
 * each its own CLIENT span. A retriable answer is discarded before anything
 * of it went downstream (an HTTP/2 stream is cancelled alone, its session
 * stays); the request body is kept for the next try up to
 * MAX_RETRY_BODY_BYTES (past it: piped, no retry, no mirror). The route
 * timeout covers every try and backoff, from the end of the request until
 * the response, body and trailers, is complete (Envoy's route timeout);
 * perTryTimeout each try until its response head (Envoy ignores a per-try
 * timeout once the response has started downstream).
 *
 * Functions of the exchange (no closures per request); timers carry the
 * exchange as their argument.
 */
import { constants, type ClientHttp2Stream } from 'node:http2';
import { errorMessage } from '../../src/lib/errors.js';
import type { Cluster, ClusterEndpoint } from '../clusters/types.js';
import { wireError, type ResponseFlag } from '../errors-to-wire.js';
import { isRetriable, retryBackoffMs } from '../pipeline/retry.js';
import type { AttemptOutcome, Destination, DestinationLimits, RoutePlan, TrafficConfig } from '../pipeline/types.js';
import { finishHttpObservation, type HttpObservation } from '../telemetry/http-observation.js';
import { siblingObservation } from './attempt-observation.js';
import { answerRedirect } from './exchange-answers.js';
import { armDeadline, armResponseHead, clearDeadline, clearTryTimer, Deadline } from './exchange-deadlines.js';
import { tagStream } from './exchange-tag.js';
import type { Exchange } from './exchange.js';
import { httpStatusOfGrpc } from './grpc.js';
import { faultAbortError } from './local-answers.js';
import { planRequestHeaders } from './plan-headers.js';
import { ReplayableBody } from './request-body.js';
import { Http2RequestFacts } from './request-facts.js';
import { headerValue, upstreamRequestHeaders } from './request-headers.js';
import type { UpstreamSession } from './session-pool.js';

const { NGHTTP2_CANCEL } = constants;

/** The route plan's local decisions, in order, then the first try. */
export function routeExchange(ex: Exchange, config: TrafficConfig, cluster: Cluster): void {
  const obs = ex.obs;
  const self = ex.ctx.telemetry.identity;
  const facts = new Http2RequestFacts(
    ex.headers,
    obs.host,
    cluster.port.port,
    obs.method,
    headerValue(ex.headers, ':path') ?? '',
    self.service,
    self.namespace,
    ex.peer.clientAddress,
  );
  ex.facts = facts;
  ex.cluster = cluster;
  const plan = config.routes.select(cluster, facts);
  ex.plan = plan;
  obs.routeName = plan.routeName;
  const redirect = plan.redirect;
  if (redirect !== undefined) {
    answerRedirect(ex, redirect.status, redirect.location);
    return;
  }
  if (plan.noRuleMatched === true) {
    ex.fail('NR', `no rule of the routes for ${cluster.name} matches ${obs.method} ${obs.path}`);
    return;
  }
  const abort = plan.fault.abort;
  if (abort !== undefined) {
    ex.failWith(faultAbortError(abort));
    return;
  }
  const destination = plan.destination;
  if (destination === undefined) {
    ex.fail('UH', `route rule "${plan.routeName}" names no known destination`);
    return;
  }
  ex.destination = destination;
  obs.subset = destination.subset;
  if (!destination.limits.tryStartRequest()) {
    ex.fail('UO', `${destination.name}: maxRequests reached`);
    return;
  }
  ex.holdsRequest = true;
  if (!ex.endAfterHeaders && ((plan.retry !== null && plan.retry.attempts > 0) || plan.mirror !== undefined)) {
    ex.body = new ReplayableBody();
  }
  // The caller's deadline covers the whole call, delay and retries included.
  if (ex.callDeadlineMs >= 0) armDeadline(ex, Deadline.Call, ex.callDeadlineMs);
  const delayMs = plan.fault.delayMs;
  if (delayMs > 0) {
    obs.faultDelayMs = delayMs;
    // Nothing of the body moves until the first try exists (the pipe or the first write resumes it).
    ex.downstream.pause();
    ex.waitTimer = setTimeout(onWaitOver, delayMs, ex);
    ex.waitTimer.unref();
    return;
  }
  attempt(ex, undefined);
}

/** One try on an endpoint of the plan's destination; `exclude` is the endpoint the previous try failed on. */
function attempt(ex: Exchange, exclude: ClusterEndpoint | undefined): void {
  if (ex.failed || ex.finished) return;
  const destination = ex.destination as Destination;
  const plan = ex.plan as RoutePlan;
  const endpoint = destination.pick(ex.facts, exclude);
  if (endpoint === undefined) {
    ex.fail('UH', destination.name);
    return;
  }
  ex.obs.lbPanic = destination.lastPickPanicked === true;
  const limits = destination.limits;
  let session: UpstreamSession | undefined;
  try {
    session = ex.ctx.pool.sessionWithin(endpoint, destination, ex.peer.clientAddress);
  } catch (err) {
    ex.fail('UF', errorMessage(err));
    return;
  }
  if (session === undefined) {
    ex.fail('UO', `${destination.name}: maxConnections reached`);
    return;
  }
  // maxPendingRequests: for HTTP/2, the streams waiting for a session being opened.
  let pending: DestinationLimits | undefined;
  if (!session.connected) {
    if (!limits.tryStartPending()) {
      ex.fail('UO', `${destination.name}: maxPendingRequests reached`);
      return;
    }
    pending = limits;
  }
  ex.useEndpoint(endpoint);
  destination.cluster.onRequestStart(endpoint);
  const outgoing = upstreamRequestHeaders(ex.headers, ex.obs, ex.ctx.requestOptions);
  planRequestHeaders(plan, outgoing);
  const endStream = ex.endAfterHeaders;
  if (!ex.openStream(session, outgoing, endStream, pending)) return;
  const up = ex.upstream as ClientHttp2Stream;
  const body = ex.body;
  if (!endStream) {
    if (body === undefined || !body.replayable) ex.downstream.pipe(up);
    else {
      body.writeTo(up);
      if (ex.requestEnded) up.end();
      else ex.downstream.resume();
    }
  }
  if (endStream || ex.requestEnded) requestSent(ex);
  sendMirror(ex);
}

/**
 * The whole request went to the current try: the route's timeout starts
 * (once, like Envoy's, at the end of the request, also when the response
 * has started already), the try's own timeout too; without a route timeout
 * the proxy's default response-head deadline applies to each try (and to
 * the only one without traffic management).
 */
export function requestSent(ex: Exchange): void {
  const plan = ex.plan;
  if (plan === undefined) {
    armResponseHead(ex);
    return;
  }
  if (ex.failed || ex.finished || ex.responseDone) return;
  if (plan.timeoutMs > 0) {
    if (ex.routeTimer === undefined) {
      ex.routeTimer = setTimeout(onRouteTimeout, plan.timeoutMs, ex);
      ex.routeTimer.unref();
    }
  } else armResponseHead(ex);
  if (ex.downstream.headersSent) return;
  const perTry = plan.retry?.perTryTimeoutMs ?? null;
  if (perTry !== null && perTry > 0 && !ex.tryTimerArmed && ex.upstream !== undefined) {
    ex.tryTimerArmed = true;
    ex.tryTimer = setTimeout(onTryTimeout, perTry, ex);
    ex.tryTimer.unref();
  }
}

/** Sends the mirror's copy once the body is whole (a copy of part of a body would be a different request). */
export function sendMirror(ex: Exchange): void {
  const plan = ex.plan;
  if (plan === undefined || plan.mirror === undefined || ex.mirrored) return;
  const body = ex.body;
  if (!ex.endAfterHeaders && (body === undefined || !body.replayable || !ex.requestEnded)) return;
  ex.mirrored = true;
  const target = plan.mirror;
  if (ex.ctx.mirrors.send(target, plan, ex.facts as Http2RequestFacts, ex.headers, body, ex.obs, ex.incoming, ex.requestTrailers)) {
    ex.obs.mirroredTo = target.name;
  }
}

/**
 * How the current try ended, for outlier detection: from its flags, else
 * its status (a gRPC status read as the HTTP status it stands for, as
 * Envoy does). Undefined when the upstream gave no verdict (the caller left).
 */
export function attemptOutcome(ex: Exchange): AttemptOutcome | undefined {
  const obs = ex.obs;
  const flags = obs.flags;
  for (let i = 0; i < flags.length; i++) {
    const flag = flags[i];
    if (flag === 'UF') return 'connect-failure';
    if (flag === 'UC' || flag === 'UPE') return 'reset';
    // A timeout after the head (the route's, or the caller's grpc-timeout) cut a response the endpoint had begun: its head is the verdict, as Envoy counts it.
    if (flag === 'UT') return ex.downstream.headersSent ? outcomeOfStatus(obs.statusCode) : 'timeout';
  }
  if (obs.statusCode === 0 || ex.upstream === undefined) return undefined;
  if (obs.grpcStatus >= 0) return outcomeOfStatus(httpStatusOfGrpc(obs.grpcStatus));
  if (!ex.upstreamEnded && flags.length > 0) return undefined; // cut short by the caller (DC, SI)
  return outcomeOfStatus(obs.statusCode);
}

/**
 * A retry, when the policy, the attempts left, the body and the budget all
 * allow it: the current try is abandoned (its span ends with `flag` when
 * it had no response) and the next starts after the backoff. False: the
 * caller answers with what this try gave (URX when only the limits said no).
 */
export function retry(ex: Exchange, outcome: AttemptOutcome, statusCode: number, flag: ResponseFlag | undefined, detail: string): boolean {
  const plan = ex.plan;
  const policy = plan?.retry ?? null;
  if (policy === null || ex.failed || ex.finished || ex.downstream.headersSent) return false;
  if (!isRetriable(policy, outcome, statusCode)) return false;
  const body = ex.body;
  if (!ex.endAfterHeaders && (body === undefined || !body.replayable)) return false;
  const done = ex.obs.attempt - 1;
  if (done >= policy.attempts) {
    ex.retryRefused = `${policy.attempts} retries used`;
    return false;
  }
  const destination = ex.destination as Destination;
  // The try that just failed was a retry: it is over, so it no longer counts against the budget.
  if (ex.holdsRetry) {
    ex.holdsRetry = false;
    destination.limits.retryEnded();
  }
  if (!destination.limits.tryStartRetry(policy.budget)) {
    ex.retryRefused = 'retry budget or maxRetries exhausted';
    return false;
  }
  const failedOn = ex.endpoint;
  endAttempt(ex, outcome, flag, detail);
  ex.holdsRetry = true;
  const next = siblingObservation(ex.obs, ex.incoming);
  next.attempt = ex.obs.attempt + 1;
  next.requestBytes = body === undefined ? 0 : body.size;
  ex.obs = next;
  if (!ex.requestEnded) ex.downstream.pause();
  ex.exclude = failedOn;
  ex.waitTimer = setTimeout(onWaitOver, retryBackoffMs(policy, done + 1, ex.ctx.random), ex);
  ex.waitTimer.unref();
  return true;
}

/** No retry was made although the try was retriable (attempts or budget used up): the answer carries URX. */
export function flagRefusedRetry(ex: Exchange): void {
  if (ex.retryRefused !== '') ex.obs.addFlag('URX', wireError('URX', ex.retryRefused).message);
}

/** Abandons the current try: its stream is cancelled, its outcome recorded, its span ended. */
function endAttempt(ex: Exchange, outcome: AttemptOutcome, flag: ResponseFlag | undefined, detail: string): void {
  const up = ex.upstream;
  const down = ex.downstream;
  if (up !== undefined) {
    tagStream(up, undefined);
    up.unpipe(down);
    down.unpipe(up);
    if (!up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
  }
  ex.upstream = undefined;
  ex.upstreamSession = undefined;
  ex.upstreamEnded = false;
  ex.upstreamError = '';
  ex.responseTrailers = undefined;
  clearTryTimer(ex);
  if (ex.timerKind === Deadline.ResponseHead) clearDeadline(ex);
  const obs = ex.obs;
  if (flag !== undefined) obs.addFlag(flag, wireError(flag, detail).message);
  releaseTry(ex, outcome);
  finishHttpObservation(ex.ctx.telemetry, obs);
}

/** Gives back what the current try holds, ends its endpoint's books and records its outcome. */
export function releaseTry(ex: Exchange, outcome: AttemptOutcome | undefined): void {
  const destination = ex.destination;
  if (destination === undefined) return;
  if (ex.holdsRetry) {
    ex.holdsRetry = false;
    destination.limits.retryEnded();
  }
  const endpoint = ex.endpoint;
  if (endpoint === undefined) return;
  ex.endpoint = undefined;
  destination.cluster.onRequestEnd(endpoint, upstreamFailure(ex.obs));
  // An ejection this try's failure caused (or that was refused) goes on the try's own span (ex.obs until endAttempt moves on).
  if (outcome !== undefined) ex.obs.noteOutlierDecision(destination.recordOutcome(endpoint, outcome));
}

/** gateway for 502/503/504, 5xx for any other 5xx, else success. */
export function outcomeOfStatus(status: number): AttemptOutcome {
  if (status === 502 || status === 503 || status === 504) return 'gateway';
  return status >= 500 ? '5xx' : 'success';
}

/** What the endpoint's books record as a failure: the upstream's fault, not the caller's. */
export function upstreamFailure(obs: HttpObservation): string | undefined {
  for (const flag of obs.flags) {
    if (flag === 'UF' || flag === 'UC' || flag === 'UT' || flag === 'UPE') return obs.errorMessage;
  }
  if (obs.statusCode >= 500) return `HTTP ${obs.statusCode}`;
  return undefined;
}

/**
 * The route's timeout: every try and backoff, and the response to its end.
 * Before the head: the proxy's answer (504, gRPC DEADLINE_EXCEEDED). After
 * it: failExchange cuts the response (RST_STREAM; a gRPC call whose
 * upstream sent no trailers yet ends with DEADLINE_EXCEEDED trailers).
 */
function onRouteTimeout(ex: Exchange): void {
  ex.routeTimer = undefined;
  const timeoutMs = ex.plan?.timeoutMs ?? 0;
  ex.fail('UT', ex.downstream.headersSent ? `response not complete within the route timeout of ${timeoutMs} ms` : `route timeout of ${timeoutMs} ms exceeded`);
}

/** The current try's perTryTimeout: retried like a try without a response, else the request times out. */
function onTryTimeout(ex: Exchange): void {
  ex.tryTimer = undefined;
  const detail = `per-try timeout of ${ex.plan?.retry?.perTryTimeoutMs ?? 0} ms exceeded`;
  if (retry(ex, 'timeout', 0, 'UT', detail)) return;
  flagRefusedRetry(ex);
  ex.fail('UT', detail);
}

/** A fault delay or a retry backoff is over: the next try starts. */
function onWaitOver(ex: Exchange): void {
  ex.waitTimer = undefined;
  const exclude = ex.exclude;
  ex.exclude = undefined;
  attempt(ex, exclude);
}
