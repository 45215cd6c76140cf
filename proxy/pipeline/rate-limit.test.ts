import { describe, expect, it } from 'vitest';
import type { RateLimitSpec, TokenBucket } from '../../src/config/types.js';
import { RateLimitBuckets, createRateLimiter, overflowBucketKey, rateLimitId, sharedBucketKey, sourceBucketKey } from './rate-limit.js';
import type { RateLimiter } from './types.js';

function bucket(maxTokens: number, tokensPerFill: number, fillIntervalMs: number): TokenBucket {
  return { maxTokens, tokensPerFill, fillIntervalMs };
}

function limit(overrides: Partial<RateLimitSpec> = {}): RateLimitSpec {
  return {
    name: 'reviews-limit',
    namespace: 'default',
    service: { name: 'reviews', namespace: 'default' },
    routes: [],
    bucket: bucket(3, 2, 1000),
    perSource: false,
    overrides: [],
    statusCode: 429,
    ...overrides,
  };
}

/** A clock the test moves. */
class Clock {
  ms = 0;
  readonly now = (): number => this.ms;
}

/** How many of `count` requests from a source are admitted. */
function admitted(limiter: RateLimiter, count: number, source = 'productpage', routeName = '', sourceNamespace = 'default'): number {
  let n = 0;
  for (let i = 0; i < count; i++) if (limiter.admit('reviews', 'default', routeName, source, sourceNamespace) === undefined) n++;
  return n;
}

describe('token bucket', () => {
  it('starts full and refuses with the limit name and status once empty', () => {
    const clock = new Clock();
    const limiter = createRateLimiter([limit({ statusCode: 503 })], new RateLimitBuckets(), clock.now);
    expect(admitted(limiter, 3)).toBe(3);
    const verdict = limiter.admit('reviews', 'default', '', 'productpage', 'default');
    expect(verdict).toEqual({ limitName: 'reviews-limit', statusCode: 503 });
    // The same object each time: refusing allocates nothing.
    expect(limiter.admit('reviews', 'default', '', 'productpage', 'default')).toBe(verdict);
  });

  it('refills tokensPerFill per whole interval, lazily, up to maxTokens', () => {
    const clock = new Clock();
    const limiter = createRateLimiter([limit()], new RateLimitBuckets(), clock.now);
    expect(admitted(limiter, 5)).toBe(3);
    clock.ms = 999;
    expect(admitted(limiter, 1)).toBe(0);
    clock.ms = 1000;
    expect(admitted(limiter, 5)).toBe(2);
    // 1.5 intervals later: one fill (the half interval carries over), then the second at 3000.
    clock.ms = 2500;
    expect(admitted(limiter, 5)).toBe(2);
    clock.ms = 2999;
    expect(admitted(limiter, 5)).toBe(0);
    clock.ms = 3000;
    expect(admitted(limiter, 5)).toBe(2);
    // A long pause fills it only to maxTokens.
    clock.ms = 60_000;
    expect(admitted(limiter, 10)).toBe(3);
  });

  it('survives a clock that steps back: no refill, the interval restarts', () => {
    const clock = new Clock();
    clock.ms = 10_000;
    const limiter = createRateLimiter([limit()], new RateLimitBuckets(), clock.now);
    expect(admitted(limiter, 3)).toBe(3);
    clock.ms = 5_000;
    expect(admitted(limiter, 1)).toBe(0);
    clock.ms = 6_000;
    expect(admitted(limiter, 5)).toBe(2);
  });
});

describe('which requests a limit covers', () => {
  it('routes: only the named rules; empty: every request', () => {
    const clock = new Clock();
    const limiter = createRateLimiter([limit({ routes: ['api'] })], new RateLimitBuckets(), clock.now);
    expect(admitted(limiter, 10, 'productpage', 'default')).toBe(10);
    expect(admitted(limiter, 10, 'productpage', '')).toBe(10);
    expect(admitted(limiter, 10, 'productpage', 'api')).toBe(3);
  });

  it('only the target service in its namespace', () => {
    const limiter = createRateLimiter([limit({ bucket: bucket(1, 1, 1000) })], new RateLimitBuckets(), new Clock().now);
    expect(limiter.admit('ratings', 'default', '', 'a', 'default')).toBeUndefined();
    expect(limiter.admit('ratings', 'default', '', 'a', 'default')).toBeUndefined();
    expect(limiter.admit('reviews', 'shop', '', 'a', 'default')).toBeUndefined();
    expect(limiter.admit('reviews', 'shop', '', 'a', 'default')).toBeUndefined();
    expect(limiter.admit('reviews', 'default', '', 'a', 'default')).toBeUndefined();
    expect(limiter.admit('reviews', 'default', '', 'a', 'default')).toBeDefined();
  });

  it('shared: every caller draws from one bucket', () => {
    const limiter = createRateLimiter([limit()], new RateLimitBuckets(), new Clock().now);
    expect(admitted(limiter, 2, 'web')).toBe(2);
    expect(admitted(limiter, 2, 'productpage')).toBe(1);
  });

  it('perSource: a bucket per calling service and namespace; callers without metadata share one', () => {
    const limiter = createRateLimiter([limit({ perSource: true })], new RateLimitBuckets(), new Clock().now);
    expect(admitted(limiter, 5, 'web')).toBe(3);
    expect(admitted(limiter, 5, 'productpage')).toBe(3);
    expect(admitted(limiter, 5, 'web', '', 'shop')).toBe(3);
    expect(admitted(limiter, 5, '', '', '')).toBe(3);
    expect(admitted(limiter, 5, '', '', '')).toBe(0);
  });

  it('overrides: a listed caller gets a bucket of its own size, shared or per source', () => {
    const override = { source: { name: 'productpage', namespace: 'default' }, bucket: bucket(10, 5, 1000) };
    for (const perSource of [false, true]) {
      const limiter = createRateLimiter([limit({ perSource, overrides: [override] })], new RateLimitBuckets(), new Clock().now);
      expect(admitted(limiter, 20, 'productpage')).toBe(10);
      // The same name in another namespace is another caller.
      expect(admitted(limiter, 20, 'productpage', '', 'shop')).toBe(3);
      expect(admitted(limiter, 20, 'web')).toBe(perSource ? 3 : 0);
    }
  });

  it('several limits: each takes a token; the first without one refuses', () => {
    const wide = limit({ name: 'wide', bucket: bucket(5, 1, 1000) });
    const api = limit({ name: 'api-only', routes: ['api'], bucket: bucket(2, 1, 1000), statusCode: 503 });
    const limiter = createRateLimiter([wide, api], new RateLimitBuckets(), new Clock().now);
    expect(admitted(limiter, 2, 'web', 'api')).toBe(2);
    expect(limiter.admit('reviews', 'default', 'api', 'web', 'default')).toEqual({ limitName: 'api-only', statusCode: 503 });
    // The refused request still spent a token of `wide`: 5 - 3 = 2 left.
    expect(admitted(limiter, 5, 'web', 'other')).toBe(2);
    expect(limiter.admit('reviews', 'default', 'other', 'web', 'default')).toEqual({ limitName: 'wide', statusCode: 429 });
  });
});

describe('RateLimitBuckets across configuration versions', () => {
  it('an unchanged limit keeps its tokens through a swap', () => {
    const clock = new Clock();
    const buckets = new RateLimitBuckets();
    expect(admitted(createRateLimiter([limit()], buckets, clock.now), 2)).toBe(2);
    expect(admitted(createRateLimiter([limit()], buckets, clock.now), 5)).toBe(1);
  });

  it('a changed bucket size starts the bucket over, full at the new size', () => {
    const clock = new Clock();
    const buckets = new RateLimitBuckets();
    expect(admitted(createRateLimiter([limit()], buckets, clock.now), 5)).toBe(3);
    expect(admitted(createRateLimiter([limit({ bucket: bucket(4, 2, 1000) })], buckets, clock.now), 10)).toBe(4);
    // A change of the fill alone counts too.
    expect(admitted(createRateLimiter([limit({ bucket: bucket(4, 1, 1000) })], buckets, clock.now), 10)).toBe(4);
  });

  it('the buckets of a limit that is gone are forgotten', () => {
    const buckets = new RateLimitBuckets();
    const clock = new Clock();
    admitted(createRateLimiter([limit({ perSource: true }), limit({ name: 'other' })], buckets, clock.now), 1, 'web');
    admitted(createRateLimiter([limit({ perSource: true }), limit({ name: 'other' })], buckets, clock.now), 1, 'productpage');
    expect(buckets.size).toBe(3);
    createRateLimiter([limit({ name: 'other' })], buckets, clock.now);
    expect(buckets.size).toBe(1);
    expect(buckets.tokensOf(sharedBucketKey(rateLimitId(limit({ name: 'other' }))), 0)).toBe(1);
    createRateLimiter([], buckets, clock.now);
    expect(buckets.size).toBe(0);
  });
});

describe('RateLimitBuckets bound', () => {
  const id = rateLimitId(limit());

  it('beyond maxBuckets, new sources share the overflow bucket; real callers keep theirs', () => {
    const clock = new Clock();
    const buckets = new RateLimitBuckets(3);
    const limiter = createRateLimiter([limit({ perSource: true })], buckets, clock.now);
    for (const source of ['a', 'b', 'c']) expect(admitted(limiter, 1, source)).toBe(1);
    expect(buckets.size).toBe(3);
    // Invented names do not get fresh buckets: together they get one bucket's worth.
    let admittedInvented = 0;
    for (let i = 0; i < 100; i++) admittedInvented += admitted(limiter, 1, `invented-${i}`);
    expect(admittedInvented).toBe(3);
    expect(buckets.overflowed).toBe(100);
    expect(buckets.tokensOf(overflowBucketKey(id), clock.ms)).toBe(0);
    // The real callers' buckets were not evicted: each still has 2 of its 3 tokens.
    expect(buckets.tokensOf(sourceBucketKey(id, 'a', 'default'), clock.ms)).toBe(2);
    expect(admitted(limiter, 5, 'a')).toBe(2);
  });

  it('buckets that have refilled completely are swept to make room (at most once a second)', () => {
    const clock = new Clock();
    const buckets = new RateLimitBuckets(2);
    const limiter = createRateLimiter([limit({ perSource: true, bucket: bucket(1, 1, 1000) })], buckets, clock.now);
    expect(admitted(limiter, 1, 'a')).toBe(1);
    expect(admitted(limiter, 1, 'b')).toBe(1);
    // Full table, nothing refilled: the first newcomer sweeps in vain and lands in overflow.
    expect(admitted(limiter, 1, 'c')).toBe(1);
    expect(buckets.tokensOf(sourceBucketKey(id, 'c', 'default'), clock.ms)).toBeUndefined();
    // At 999 the last sweep (at 0) is under a second ago: no sweep, the empty overflow bucket refuses.
    clock.ms = 999;
    expect(admitted(limiter, 1, 'd')).toBe(0);
    // At 1000 'a' and 'b' are full again: swept, and 'e' gets a bucket of its own.
    clock.ms = 1000;
    expect(admitted(limiter, 1, 'e')).toBe(1);
    expect(buckets.tokensOf(sourceBucketKey(id, 'e', 'default'), clock.ms)).toBe(0);
    expect(buckets.tokensOf(sourceBucketKey(id, 'a', 'default'), clock.ms)).toBeUndefined();
  });

  it('rejects a bound that is not a positive integer', () => {
    expect(() => new RateLimitBuckets(0)).toThrow(/maxBuckets must be a positive integer, got 0/);
    expect(() => new RateLimitBuckets(1.5)).toThrow(/got 1.5/);
  });
});
