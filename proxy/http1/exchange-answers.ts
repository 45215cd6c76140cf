/**
 * The proxy's own answers on an Exchange — no route, a rate limit, a
 * redirect, no rule matched, a fault abort, every failure through
 * errors-to-wire.ts — and the end of each request (its observation, the
 * plan's counters, the connection's next request). Functions of the
 * exchange, no closures per request.
 */
import { wireError, wireErrorBody, wireErrorWithStatus, type ResponseFlag, type WireError } from '../errors-to-wire.js';
import type { RoutePlan } from '../pipeline/types.js';
import { RATE_LIMITED_HEADER } from '../telemetry/attributes.js';
import { finishHttpObservation, type HttpObservation } from '../telemetry/http-observation.js';
import { clearTimers } from './exchange-attempts.js';
import { R_DONE } from './exchange-phase.js';
import type { Exchange } from './exchange.js';
import { httpStatusOfGrpc } from './grpc-http-status.js';
import { errorResponse, redirectResponse } from './head-writer.js';

/** Inbound: the RateLimit verdict; true when refused (answered 429 with flag RL). */
export function rateLimited(ex: Exchange, verdict: { readonly limitName: string; readonly statusCode: number } | undefined): boolean {
  if (verdict === undefined) return false;
  const obs = ex.obs as HttpObservation;
  obs.rateLimitName = verdict.limitName;
  ex.conn.deps.telemetry.metrics.recordRateLimited?.(verdict.limitName);
  answer(ex, wireErrorWithStatus('RL', verdict.statusCode, `rate limit ${verdict.limitName}`), false, `${RATE_LIMITED_HEADER}: ${verdict.limitName}\r\n`);
  return true;
}

/** The plan's local answers, in Istio's order: redirect, no rule matched (404 NR), fault abort (FI). */
export function answeredByPlan(ex: Exchange, plan: RoutePlan): boolean {
  const redirect = plan.redirect;
  if (redirect !== undefined) {
    answerRedirect(ex, redirect.status, redirect.location);
    return true;
  }
  if (plan.noRuleMatched === true) {
    answer(ex, wireError('NR', `no rule of the route for ${ex.target.host}:${ex.target.port} matched`), false);
    return true;
  }
  const abort = plan.fault.abort;
  if (abort !== undefined) {
    // A gRPC status means nothing to an HTTP/1 client: it gets the HTTP status that status stands for.
    const status = abort.grpc ? httpStatusOfGrpc(abort.status) : abort.status;
    answer(ex, wireErrorWithStatus('FI', status, abort.grpc ? `abort (gRPC status ${abort.status})` : 'abort'), false);
    return true;
  }
  return false;
}

/** The proxy answers before anything went upstream (no route, bad target…). */
export function answerEarly(ex: Exchange, err: WireError, buf: Buffer, bodyStart: number): number {
  answer(ex, err, false);
  // The connection stays only when the request had no body left unread.
  return ex.requestDone ? bodyStart : buf.length;
}

/**
 * The proxy answers instead of the upstream (nothing of a final response
 * was sent yet). `endpointFailure` counts it against the endpoint.
 */
export function answer(ex: Exchange, err: WireError, endpointFailure: boolean, extraFields = ''): void {
  const obs = ex.obs as HttpObservation;
  const conn = ex.conn;
  if (ex.upstream !== undefined) {
    conn.deps.pool.discard(ex.upstream);
    ex.upstream = undefined;
  }
  clearTimers(ex);
  ex.phase = R_DONE;
  obs.addFlag(err.flag, err.message);
  if (ex.retriesExhausted) obs.addFlag('URX', err.message);
  obs.statusCode = err.httpStatus;
  ex.closeAfter = err.closeDownstream || !ex.requestDone || !ex.keepAlive || conn.clientEnded;
  const isHead = obs.method === 'HEAD';
  obs.responseBytes = isHead ? 0 : wireErrorBody(err).length;
  conn.socket.write(errorResponse(err, ex.closeAfter, isHead, extraFields), 'latin1');
  finish(ex, endpointFailure ? err.message : undefined);
}

/** A route's redirect: the status and Location, no body, no flag. */
function answerRedirect(ex: Exchange, status: number, location: string): void {
  const obs = ex.obs as HttpObservation;
  const conn = ex.conn;
  ex.phase = R_DONE;
  obs.statusCode = status;
  obs.responseBytes = 0;
  ex.closeAfter = !ex.requestDone || !ex.keepAlive || conn.clientEnded;
  conn.socket.write(redirectResponse(status, location, ex.closeAfter), 'latin1');
  finish(ex, undefined);
}

/** A failure after the response head went downstream: the client must see the body cut short, so the connection is destroyed. */
export function abortResponse(ex: Exchange, flag: ResponseFlag, message: string): void {
  (ex.obs as HttpObservation).addFlag(flag, message);
  cutShort(ex);
  finish(ex, message);
}

/** The client went away (FIN before the request ended, or the socket closed). */
export function downstreamGone(ex: Exchange, reason: string): void {
  const obs = ex.obs as HttpObservation;
  obs.addFlag('DC', reason);
  if (!ex.finalHeadSent) obs.statusCode = wireError('DC').httpStatus;
  cutShort(ex);
  finish(ex, undefined);
}

function cutShort(ex: Exchange): void {
  (ex.obs as HttpObservation).responseBytes = ex.responseBody.bodyBytes;
  ex.phase = R_DONE;
  if (ex.upstream !== undefined) {
    ex.conn.deps.pool.discard(ex.upstream);
    ex.upstream = undefined;
  }
  ex.closeAfter = true;
  ex.conn.socket.destroy();
}

/** The request is over, however it ended: its observation goes out and the connection moves on. */
export function finish(ex: Exchange, endpointFailure: string | undefined): void {
  const obs = ex.obs as HttpObservation;
  ex.obs = undefined;
  ex.active = false;
  ex.responseTimerArmed = false;
  ex.firstBody = undefined;
  ex.upstreamHead = '';
  if (ex.plan !== undefined) endPlan(ex);
  if (obs.requestBytes === 0) obs.requestBytes = ex.requestBody.bodyBytes;
  ex.choice.end(endpointFailure);
  finishHttpObservation(ex.conn.deps.telemetry, obs);
  ex.conn.onExchangeDone(ex.closeAfter);
}

/** The plan's timers, waits and counters end with the request. */
function endPlan(ex: Exchange): void {
  clearTimers(ex);
  const destination = ex.destination;
  if (destination !== undefined) {
    destination.limits.requestEnded();
    if (ex.retryHeld) destination.limits.retryEnded();
  }
  ex.plan = undefined;
  ex.destination = undefined;
  ex.retryHeld = false;
  ex.retriesExhausted = false;
  ex.failedEndpoint = undefined;
  ex.attempt = 1;
  ex.kept = undefined;
  ex.keptBytes = 0;
  ex.held = undefined;
  ex.editsRequest = false;
  ex.editsResponse = false;
  ex.mirrored = false;
}
