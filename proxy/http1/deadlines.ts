/**
 * Coarse deadlines for many connections: one unref'd interval per proxy and
 * direction looks at every connection's deadlines, instead of a Node timer
 * per connection that is refreshed on every request and every read and
 * write (a refresh re-links the timer and reads the loop clock; at a few
 * per request that was measurable). On its hot path a connection only sets
 * flags ("armed", "bytes moved"); the sweep stamps the time it first sees
 * a flag and compares later sweeps with that stamp, so no clock is read
 * per request either.
 *
 * Granularity: the first sweep after arming (or after the last byte) starts
 * the count, and the deadline fires at the first sweep at least the timeout
 * after that: between the timeout and the timeout plus two periods, never
 * early. The period is a tenth of the shortest timeout the limits set, from
 * 10 ms to 1 s (1 s with the default limits: the 15 s request timeout fires
 * within 15-17 s, the 10 s head timeout within 10-12 s). The interval runs
 * only while connections are registered.
 */
import type { ProxyLimits } from '../limits.js';

const MIN_PERIOD_MS = 10;
const MAX_PERIOD_MS = 1000;

/** Something with deadlines: called by every sweep with performance.now(). */
export interface SweptConnection {
  sweep(now: number): void;
}

/** The sweep period for connections under these limits: a tenth of the shortest enabled timeout, within [10 ms, 1 s]. */
export function sweepPeriodMs(limits: ProxyLimits): number {
  let shortest = Infinity;
  for (const ms of [limits.requestHeaderTimeoutMs, limits.idleTimeoutMs, limits.streamIdleTimeoutMs, limits.requestTimeoutMs]) {
    if (ms > 0 && ms < shortest) shortest = ms;
  }
  if (shortest === Infinity) return MAX_PERIOD_MS;
  return Math.min(MAX_PERIOD_MS, Math.max(MIN_PERIOD_MS, Math.floor(shortest / 10)));
}

function onTick(sweeper: DeadlineSweeper): void {
  sweeper.sweep();
}

export class DeadlineSweeper {
  private readonly members = new Set<SweptConnection>();
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(readonly periodMs: number) {}

  get size(): number {
    return this.members.size;
  }

  /** Whether the interval is running (it stops at the first sweep that finds no member). */
  get running(): boolean {
    return this.timer !== undefined;
  }

  add(member: SweptConnection): void {
    this.members.add(member);
    // Started by the first member; stopped by the first sweep that finds none, so connection churn does not churn the interval.
    if (this.timer === undefined) this.timer = setInterval(onTick, this.periodMs, this).unref();
  }

  delete(member: SweptConnection): void {
    this.members.delete(member);
  }

  sweep(): void {
    if (this.members.size === 0) {
      this.stop();
      return;
    }
    const now = performance.now();
    // A member that closes during its sweep is deleted later ('close' is asynchronous); deleting while iterating is safe for a Set anyway.
    for (const member of this.members) member.sweep(now);
  }

  /** Stops the interval and forgets every member (the proxy is shutting down). Safe twice. */
  close(): void {
    this.members.clear();
    this.stop();
  }

  private stop(): void {
    if (this.timer !== undefined) {
      clearInterval(this.timer);
      this.timer = undefined;
    }
  }
}
