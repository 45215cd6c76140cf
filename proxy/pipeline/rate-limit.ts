/**
 * Local rate limits (`RateLimit`; Envoy's local_ratelimit filter): a token
 * bucket in front of a service, applied on the INBOUND side before the app.
 * A limit covers every request to its service, or only the requests the
 * caller's route rule (x-tracemesh-route) names; one bucket shared by all
 * callers, or one per calling service (perSource), and listed callers may get
 * a bucket of their own size (overrides).
 *
 * Buckets outlive configuration versions (RateLimitBuckets, held by the
 * proxy's TrafficState): a config swap that leaves a limit as it was must not
 * hand every caller a fresh, full bucket. The limiter built per version
 * (createRateLimiter) only maps a request to its buckets.
 *
 * Refill is lazy and discrete like Envoy's: `tokensPerFill` tokens are added
 * for every whole `fillIntervalMs` that has passed since the last fill,
 * computed from `now()` when a bucket is used; no timers. A bucket starts full.
 */
import type { RateLimitSpec, TokenBucket } from '../../src/config/types.js';
import type { RateLimiter, RateLimitVerdict } from './types.js';

/** One token bucket; `spec` is the size it was filled for (a changed size starts it over). */
export class RateLimitBucket {
  tokens: number;
  /** When the last whole fill interval ended. */
  lastFillAt: number;

  constructor(
    readonly limitId: string,
    readonly spec: TokenBucket,
    now: number,
  ) {
    this.tokens = spec.maxTokens;
    this.lastFillAt = now;
  }

  /** Adds the fills due by `now`. */
  refill(now: number): void {
    const interval = this.spec.fillIntervalMs;
    const elapsed = now - this.lastFillAt;
    if (elapsed < interval) {
      // A clock that went backwards (a test clock reset, a restored snapshot): restart the interval from now.
      if (elapsed < 0) this.lastFillAt = now;
      return;
    }
    const fills = Math.floor(elapsed / interval);
    this.tokens = Math.min(this.spec.maxTokens, this.tokens + fills * this.spec.tokensPerFill);
    this.lastFillAt += fills * interval;
  }

  /** Takes a token when there is one (after refilling). */
  take(now: number): boolean {
    this.refill(now);
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }

  /** A bucket that would be full now carries no information: forgetting it changes nothing. */
  wouldBeFull(now: number): boolean {
    this.refill(now);
    return this.tokens >= this.spec.maxTokens;
  }
}

function sameBucketSpec(a: TokenBucket, b: TokenBucket): boolean {
  return a.maxTokens === b.maxTokens && a.tokensPerFill === b.tokensPerFill && a.fillIntervalMs === b.fillIntervalMs;
}

/** What the table needs to know about the limit a bucket belongs to. */
export interface BucketOwner {
  /** rateLimitId() of the document. */
  readonly id: string;
  readonly overflowKey: string;
  /** The limit's own bucket size (the overflow bucket's). */
  readonly bucket: TokenBucket;
}

/**
 * Per-source buckets are keyed by the caller's peer metadata, which callers
 * write themselves: without a bound, a caller inventing a new name per
 * request would grow the map without end (and get a full bucket each time).
 */
export const DEFAULT_MAX_RATE_LIMIT_BUCKETS = 10_000;

/** Sweeping a full table costs O(buckets): at most once per this many milliseconds. */
const SWEEP_INTERVAL_MS = 1_000;

/**
 * The buckets of every limit, surviving configuration swaps. At most
 * `maxBuckets` (10,000 by default) are kept. When a new bucket is needed and
 * the table is full, buckets that would be full by now are forgotten first
 * (recreating one gives exactly the same answers); if none can go, the
 * request is counted against one overflow bucket per limit, shared by every
 * source without a bucket of its own and sized like the limit's bucket. So
 * a flood of invented source names shares one bucket instead of evicting the
 * buckets of real callers or getting fresh tokens.
 */
export class RateLimitBuckets {
  private readonly buckets = new Map<string, RateLimitBucket>();
  private lastSweepAt = Number.NEGATIVE_INFINITY;
  /** Requests counted against an overflow bucket because the table was full (for the admin page). */
  overflowed = 0;

  constructor(readonly maxBuckets: number = DEFAULT_MAX_RATE_LIMIT_BUCKETS) {
    if (!Number.isInteger(maxBuckets) || maxBuckets < 1) throw new RangeError(`RateLimitBuckets: maxBuckets must be a positive integer, got ${maxBuckets}`);
  }

  get size(): number {
    return this.buckets.size;
  }

  /**
   * The bucket under `key`, of size `spec`, for `limit`; created full when
   * missing or when its size changed (a changed spec for the same limit
   * starts over). When the table is full, the limit's overflow bucket.
   */
  bucket(key: string, spec: TokenBucket, limit: BucketOwner, now: number): RateLimitBucket {
    const existing = this.buckets.get(key);
    if (existing !== undefined && sameBucketSpec(existing.spec, spec)) return existing;
    if (existing === undefined && this.buckets.size >= this.maxBuckets && !this.sweep(now)) {
      this.overflowed++;
      const overflow = this.buckets.get(limit.overflowKey);
      if (overflow !== undefined && sameBucketSpec(overflow.spec, limit.bucket)) return overflow;
      // The overflow bucket itself may go past the bound: one per limit, and limits are few.
      const created = new RateLimitBucket(limit.id, limit.bucket, now);
      this.buckets.set(limit.overflowKey, created);
      return created;
    }
    const created = new RateLimitBucket(limit.id, spec, now);
    this.buckets.set(key, created);
    return created;
  }

  /** Forgets the buckets that would be full now; true when room was made. */
  private sweep(now: number): boolean {
    if (now - this.lastSweepAt < SWEEP_INTERVAL_MS) return false;
    this.lastSweepAt = now;
    for (const [key, bucket] of this.buckets) {
      if (bucket.wouldBeFull(now)) this.buckets.delete(key);
    }
    return this.buckets.size < this.maxBuckets;
  }

  /** Forgets the buckets of limits that the current configuration no longer has. */
  retainLimits(limitIds: ReadonlySet<string>): void {
    for (const [key, bucket] of this.buckets) {
      if (!limitIds.has(bucket.limitId)) this.buckets.delete(key);
    }
  }

  /** Tokens left in a bucket (after refilling at `now`), undefined when it does not exist; for tests and the admin page. */
  tokensOf(key: string, now: number): number | undefined {
    const bucket = this.buckets.get(key);
    if (bucket === undefined) return undefined;
    bucket.refill(now);
    return bucket.tokens;
  }
}

/** "namespace/name": a RateLimit document's identity across versions. */
export function rateLimitId(spec: Pick<RateLimitSpec, 'name' | 'namespace'>): string {
  return `${spec.namespace}/${spec.name}`;
}

// Bucket keys. Document names cannot hold tabs (DNS labels); a caller writing tabs into its own
// peer metadata can only collide with a name it could have written anyway.
/** The bucket every caller shares. */
export function sharedBucketKey(limitId: string): string {
  return `${limitId}\tshared`;
}

/** A caller's own bucket under perSource. */
export function sourceBucketKey(limitId: string, sourceService: string, sourceNamespace: string): string {
  return `${limitId}\tsource\t${sourceNamespace}\t${sourceService}`;
}

/** A caller's bucket from `overrides`. */
export function overrideBucketKey(limitId: string, sourceService: string, sourceNamespace: string): string {
  return `${limitId}\toverride\t${sourceNamespace}\t${sourceService}`;
}

/** Where per-source requests go when the table is full. */
export function overflowBucketKey(limitId: string): string {
  return `${limitId}\toverflow`;
}

/** One RateLimit document, compiled for this configuration version. */
class CompiledLimit implements BucketOwner {
  readonly id: string;
  readonly sharedKey: string;
  readonly overflowKey: string;
  /** Route rule names; undefined: every request. */
  readonly routes: ReadonlySet<string> | undefined;
  readonly bucket: TokenBucket;
  readonly perSource: boolean;
  /** namespace → service → bucket size. */
  readonly overrides: ReadonlyMap<string, ReadonlyMap<string, TokenBucket>>;
  /** Shared by every refusal: nothing is allocated to say no. */
  readonly verdict: RateLimitVerdict;

  constructor(spec: RateLimitSpec) {
    this.id = rateLimitId(spec);
    this.sharedKey = sharedBucketKey(this.id);
    this.overflowKey = overflowBucketKey(this.id);
    this.routes = spec.routes.length === 0 ? undefined : new Set(spec.routes);
    this.bucket = spec.bucket;
    this.perSource = spec.perSource;
    const overrides = new Map<string, Map<string, TokenBucket>>();
    for (const override of spec.overrides) {
      let byService = overrides.get(override.source.namespace);
      if (byService === undefined) overrides.set(override.source.namespace, (byService = new Map()));
      // The first entry for a source counts (validation rejects duplicates anyway).
      if (!byService.has(override.source.name)) byService.set(override.source.name, override.bucket);
    }
    this.overrides = overrides;
    this.verdict = Object.freeze({ limitName: spec.name, statusCode: spec.statusCode });
  }
}

class Limiter implements RateLimiter {
  /** namespace → service → the limits in front of it, in document order. */
  private readonly byService = new Map<string, Map<string, CompiledLimit[]>>();

  constructor(
    specs: readonly RateLimitSpec[],
    private readonly buckets: RateLimitBuckets,
    private readonly now: () => number,
  ) {
    const ids = new Set<string>();
    for (const spec of specs) {
      const limit = new CompiledLimit(spec);
      ids.add(limit.id);
      let byName = this.byService.get(spec.service.namespace);
      if (byName === undefined) this.byService.set(spec.service.namespace, (byName = new Map()));
      let limits = byName.get(spec.service.name);
      if (limits === undefined) byName.set(spec.service.name, (limits = []));
      limits.push(limit);
    }
    buckets.retainLimits(ids);
  }

  /**
   * Every limit in front of the service that covers the request takes a
   * token, in document order; the first that has none refuses (tokens the
   * earlier limits gave are spent, as with Envoy's descriptors).
   */
  admit(service: string, namespace: string, routeName: string, sourceService: string, sourceNamespace: string): RateLimitVerdict | undefined {
    const limits = this.byService.get(namespace)?.get(service);
    if (limits === undefined) return undefined;
    const now = this.now();
    for (let i = 0; i < limits.length; i++) {
      const limit = limits[i] as CompiledLimit;
      if (limit.routes !== undefined && !limit.routes.has(routeName)) continue;
      if (!this.bucketFor(limit, sourceService, sourceNamespace, now).take(now)) return limit.verdict;
    }
    return undefined;
  }

  private bucketFor(limit: CompiledLimit, sourceService: string, sourceNamespace: string, now: number): RateLimitBucket {
    const override = limit.overrides.get(sourceNamespace)?.get(sourceService);
    if (override !== undefined) {
      return this.buckets.bucket(overrideBucketKey(limit.id, sourceService, sourceNamespace), override, limit, now);
    }
    if (limit.perSource) {
      // Callers without peer metadata ('' service) share one bucket of their own.
      return this.buckets.bucket(sourceBucketKey(limit.id, sourceService, sourceNamespace), limit.bucket, limit, now);
    }
    return this.buckets.bucket(limit.sharedKey, limit.bucket, limit, now);
  }
}

/** Monotonic milliseconds: a wall-clock step must not refill or drain buckets. */
function monotonicNow(): number {
  return performance.now();
}

/**
 * The limiter for one configuration version. Building it forgets the
 * buckets of limits that `specs` no longer contains (so the state stays the
 * size of the current configuration); buckets of limits that remain keep
 * their tokens unless their size changed.
 */
export function createRateLimiter(specs: readonly RateLimitSpec[], buckets: RateLimitBuckets, now: () => number = monotonicNow): RateLimiter {
  return new Limiter(specs, buckets, now);
}
