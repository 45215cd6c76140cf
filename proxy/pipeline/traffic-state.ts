/**
 * What traffic management must remember across configuration versions: a
 * TrafficConfig is rebuilt whole on every swap, but an ejected endpoint stays
 * ejected, a failing health check stays failing, requests in flight from the
 * old version still end on the same limit counters, token buckets keep
 * their tokens, and a health check keeps running without a restart. One TrafficState lives as long as the proxy; the configs
 * built from it look their entries up by name (destination name, endpoint
 * key), never by object identity, because every version has new objects.
 *
 * Bounded: `retain` (called by createTrafficConfig after building a version)
 * forgets the destinations and endpoints the new version does not have. A
 * destination whose limit counters are not all zero (requests of an older
 * version still in flight) is kept until a later `retain` finds it idle, so
 * its counters never restart from zero under live traffic; the number of
 * such entries is bounded by the destinations of the versions that still
 * have work in flight.
 */
import { HealthCheckPool } from './health-check.js';
import { RateLimitBuckets } from './rate-limit.js';

/**
 * Passive health (outlier detection) of one endpoint of one destination.
 * Active health is not here: one check runs per endpoint and check, shared
 * by every destination containing the endpoint (HealthCheckPool).
 */
export class EndpointTrafficState {
  // Outlier detection (Envoy's DetectorHostMonitor).
  consecutive5xx = 0;
  consecutiveGateway = 0;
  ejected = false;
  ejectedAtMs = 0;
  ejectedUntilMs = 0;
  /** Envoy's ejection multiplier: ejections so far, lowered by one per interval spent healthy after a base ejection time back. */
  ejections = 0;
  /** -1: never un-ejected. */
  unejectedAtMs = -1;
}

/** DestinationLimits' counters (limits.ts); shared by every version's Destination of the same name. */
export class LimitCounters {
  requests = 0;
  pending = 0;
  connections = 0;
  retries = 0;
  /** Retry budget's minRetriesPerSecond bucket; NaN until first used (it starts full). */
  retryTokens = Number.NaN;
  retryTokensAtMs = 0;

  /** Nothing in flight: safe to forget. */
  idle(): boolean {
    return this.requests === 0 && this.pending === 0 && this.connections === 0 && this.retries === 0;
  }
}

/** Everything kept for one destination name ("reviews.default:9080|v2"). */
export class DestinationTrafficState {
  readonly endpoints = new Map<string, EndpointTrafficState>();
  readonly limits = new LimitCounters();
  /**
   * Bumped whenever an endpoint's ejection changes (ejected, un-ejected;
   * health flips bump HealthCheckPool.generation). Every Destination object of this name, old versions'
   * included, compares it with the one its usable list was built at, so an
   * ejection recorded by an in-flight request of the old version shows in
   * the new version's picks too.
   */
  generation = 0;
  /** The earliest ejectedUntilMs among ejected endpoints; Infinity when none (lets pick skip the clock). */
  nextUnejectMs = Number.POSITIVE_INFINITY;
  /** Picks made in panic mode by every version's Destination of this name (the panic-picks counter reads it at scrape time). */
  panicPicks = 0;

  endpoint(key: string): EndpointTrafficState {
    let state = this.endpoints.get(key);
    if (state === undefined) {
      state = new EndpointTrafficState();
      this.endpoints.set(key, state);
    }
    return state;
  }
}

/** The names a version uses: destination name → its endpoint keys. */
export type RetainedNames = ReadonlyMap<string, readonly string[]>;

export class TrafficState {
  private readonly destinations = new Map<string, DestinationTrafficState>();
  /** The active health checks, one per endpoint and check, shared by destinations and versions. */
  readonly healthChecks = new HealthCheckPool();

  /** The RateLimit token buckets (rate-limit.ts), kept here so they outlive swaps. */
  constructor(readonly rateLimitBuckets: RateLimitBuckets = new RateLimitBuckets()) {}

  destination(name: string): DestinationTrafficState {
    let state = this.destinations.get(name);
    if (state === undefined) {
      state = new DestinationTrafficState();
      this.destinations.set(name, state);
    }
    return state;
  }

  /** Read-only lookup (admin pages, tests); undefined when never used. */
  peek(name: string): DestinationTrafficState | undefined {
    return this.destinations.get(name);
  }

  get destinationCount(): number {
    return this.destinations.size;
  }

  /**
   * Forgets every destination and endpoint the current version does not
   * name, except destinations with counters still in flight (they stay
   * whole until a later call finds them idle), and the health checks no
   * destination holds (the new version acquired its own before this call).
   */
  retain(names: RetainedNames): void {
    for (const [name, state] of this.destinations) {
      const keys = names.get(name);
      if (keys === undefined) {
        if (state.limits.idle()) this.destinations.delete(name);
        continue;
      }
      const keep = new Set(keys);
      for (const key of state.endpoints.keys()) if (!keep.has(key)) state.endpoints.delete(key);
    }
    this.healthChecks.prune();
  }
}
