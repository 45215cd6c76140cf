/**
 * The exchange's own deadline (one timer): requestTimeoutMs from the end of
 * the request to the response head, or a gRPC call's grpc-timeout from its
 * start to its end. The timers of traffic management (the route's timeout,
 * perTryTimeout, a fault delay or retry backoff) are armed in
 * exchange-attempts.ts and cleared here, with the rest.
 */
import type { Exchange } from './exchange.js';

/** Which deadline the exchange's timer enforces. */
export const Deadline = {
  None: 0,
  /** requestTimeoutMs, from the end of the request to the response head. */
  ResponseHead: 1,
  /** grpc-timeout, from the start of the call to its end. */
  Call: 2,
} as const;
export type Deadline = (typeof Deadline)[keyof typeof Deadline];

export function armDeadline(ex: Exchange, kind: Deadline, ms: number): void {
  ex.timerKind = kind;
  ex.timer = setTimeout(onDeadline, ms, ex);
  ex.timer.unref();
}

/** requestTimeoutMs runs from the end of the request (a streaming upload may take as long as it needs). */
export function armResponseHead(ex: Exchange): void {
  const ms = ex.ctx.limits.requestTimeoutMs;
  if (ms <= 0 || ex.timerKind !== Deadline.None || ex.upstream === undefined || ex.failed || ex.finished) return;
  if (!ex.downstream.headersSent) armDeadline(ex, Deadline.ResponseHead, ms);
}

export function clearDeadline(ex: Exchange): void {
  if (ex.timer !== undefined) clearTimeout(ex.timer);
  ex.timer = undefined;
  ex.timerKind = Deadline.None;
}

function onDeadline(ex: Exchange): void {
  ex.timer = undefined;
  const call = ex.timerKind === Deadline.Call;
  ex.timerKind = Deadline.None;
  ex.fail('UT', call ? `grpc-timeout of ${ex.callDeadlineMs} ms exceeded` : `no response within ${ex.ctx.limits.requestTimeoutMs} ms`);
}

export function clearTryTimer(ex: Exchange): void {
  if (ex.tryTimer !== undefined) clearTimeout(ex.tryTimer);
  ex.tryTimer = undefined;
  ex.tryTimerArmed = false;
}

export function clearTrafficTimers(ex: Exchange): void {
  if (ex.routeTimer !== undefined) clearTimeout(ex.routeTimer);
  ex.routeTimer = undefined;
  if (ex.waitTimer !== undefined) clearTimeout(ex.waitTimer);
  ex.waitTimer = undefined;
  clearTryTimer(ex);
}
