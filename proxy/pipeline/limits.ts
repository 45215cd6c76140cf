/**
 * A destination's connection-pool limits and retry budget (Envoy's circuit
 * breakers, per proxy and destination). The counters live in TrafficState
 * (LimitCounters, one per destination name) so that requests started under
 * an older configuration version end on the counters the new version checks;
 * this object only holds the version's thresholds.
 *
 * Retry budget: a retry may start while retries in flight stay within
 * `percent` of the destination's active requests (the requests counted by
 * tryStartRequest, the retrying one included), as Envoy's
 * retry_budget.budget_percent. Beyond that, `minRetriesPerSecond` retries per
 * second are still allowed: a token bucket of that size, refilled
 * continuously from the clock, so that a destination with little traffic can
 * retry at all (Envoy's min_retry_concurrency, expressed as a rate as our
 * configuration does). maxRetries, when set, caps retries in flight first.
 */
import type { ConnectionPool, RetryPolicy } from '../../src/config/types.js';
import type { LimitCounters } from './traffic-state.js';
import type { DestinationLimits } from './types.js';

export class DestinationLimitCounters implements DestinationLimits {
  readonly connectTimeoutMs: number | null;
  private readonly maxConnections: number;
  private readonly maxPending: number;
  private readonly maxRequests: number;
  private readonly maxRetries: number;

  constructor(
    pool: ConnectionPool,
    readonly counters: LimitCounters,
    private readonly now: () => number,
  ) {
    this.connectTimeoutMs = pool.connectTimeoutMs;
    this.maxConnections = pool.maxConnections ?? Number.POSITIVE_INFINITY;
    this.maxPending = pool.maxPendingRequests ?? Number.POSITIVE_INFINITY;
    this.maxRequests = pool.maxRequests ?? Number.POSITIVE_INFINITY;
    this.maxRetries = pool.maxRetries ?? Number.POSITIVE_INFINITY;
  }

  tryStartRequest(): boolean {
    const counters = this.counters;
    if (counters.requests >= this.maxRequests) return false;
    counters.requests++;
    return true;
  }

  requestEnded(): void {
    if (this.counters.requests > 0) this.counters.requests--;
  }

  tryStartRetry(budget: RetryPolicy['budget']): boolean {
    const counters = this.counters;
    if (counters.retries >= this.maxRetries) return false;
    if (counters.retries + 1 <= (budget.percent / 100) * counters.requests || this.takeRetryToken(budget.minRetriesPerSecond)) {
      counters.retries++;
      return true;
    }
    return false;
  }

  retryEnded(): void {
    if (this.counters.retries > 0) this.counters.retries--;
  }

  tryOpenConnection(): boolean {
    const counters = this.counters;
    if (counters.connections >= this.maxConnections) return false;
    counters.connections++;
    return true;
  }

  connectionClosed(): void {
    if (this.counters.connections > 0) this.counters.connections--;
  }

  tryStartPending(): boolean {
    const counters = this.counters;
    if (counters.pending >= this.maxPending) return false;
    counters.pending++;
    return true;
  }

  pendingEnded(): void {
    if (this.counters.pending > 0) this.counters.pending--;
  }

  /** The minRetriesPerSecond bucket: starts full, refills at that rate, holds at most one second's worth. */
  private takeRetryToken(perSecond: number): boolean {
    if (perSecond <= 0) return false;
    const counters = this.counters;
    const now = this.now();
    if (Number.isNaN(counters.retryTokens)) {
      counters.retryTokens = perSecond;
    } else {
      const elapsed = now - counters.retryTokensAtMs;
      if (elapsed > 0) counters.retryTokens = Math.min(perSecond, counters.retryTokens + (elapsed * perSecond) / 1000);
    }
    counters.retryTokensAtMs = now;
    if (counters.retryTokens < 1) return false;
    counters.retryTokens -= 1;
    return true;
  }
}

export function createDestinationLimits(pool: ConnectionPool, counters: LimitCounters, now: () => number): DestinationLimitCounters {
  return new DestinationLimitCounters(pool, counters, now);
}
