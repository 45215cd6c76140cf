import { describe, expect, it } from 'vitest';
import type { RetryCondition, RetryPolicy } from '../../src/config/types.js';
import { isRetriable, retryBackoffMs } from './retry.js';
import type { AttemptOutcome } from './types.js';

function policy(retryOn: RetryCondition[], retriableStatusCodes: number[] = [], backoff = { baseMs: 25, maxMs: 250 }): RetryPolicy {
  return { attempts: 3, perTryTimeoutMs: null, retryOn, retriableStatusCodes, backoff, budget: { percent: 20, minRetriesPerSecond: 3 } };
}

// How tries end: [outcome, status] pairs, named.
const TRIES: Record<string, [AttemptOutcome, number]> = {
  ok: ['success', 200],
  notFound: ['success', 404],
  conflict: ['success', 409],
  internal: ['5xx', 500],
  notImplemented: ['5xx', 501],
  badGateway: ['gateway', 502],
  unavailable: ['gateway', 503],
  gatewayTimeout: ['gateway', 504],
  grpcUnavailable: ['gateway', 200],
  connectFailure: ['connect-failure', 0],
  reset: ['reset', 0],
  perTryTimeout: ['timeout', 0],
};

function retriedUnder(p: RetryPolicy): string[] {
  return Object.entries(TRIES)
    .filter(([, [outcome, status]]) => isRetriable(p, outcome, status))
    .map(([name]) => name);
}

describe('isRetriable: Envoy retry_on meanings', () => {
  it('5xx: every 5xx and every try without a response', () => {
    expect(retriedUnder(policy(['5xx']))).toEqual([
      'internal',
      'notImplemented',
      'badGateway',
      'unavailable',
      'gatewayTimeout',
      'grpcUnavailable',
      'connectFailure',
      'reset',
      'perTryTimeout',
    ]);
  });

  it('gateway-error: 502, 503, 504 and tries without a response, not 500 or 501', () => {
    expect(retriedUnder(policy(['gateway-error']))).toEqual(['badGateway', 'unavailable', 'gatewayTimeout', 'grpcUnavailable', 'connectFailure', 'reset', 'perTryTimeout']);
  });

  it('reset: no response at all (connect failures and per-try timeouts included)', () => {
    expect(retriedUnder(policy(['reset']))).toEqual(['connectFailure', 'reset', 'perTryTimeout']);
  });

  it('connect-failure: only failed connects', () => {
    expect(retriedUnder(policy(['connect-failure']))).toEqual(['connectFailure']);
  });

  it('retriable-status-codes: exactly the listed statuses', () => {
    expect(retriedUnder(policy(['retriable-status-codes'], [409, 501]))).toEqual(['conflict', 'notImplemented']);
    expect(retriedUnder(policy(['retriable-status-codes'], []))).toEqual([]);
  });

  it('conditions add up; a success is never retried unless its status is listed', () => {
    expect(retriedUnder(policy(['connect-failure', 'retriable-status-codes'], [409]))).toEqual(['conflict', 'connectFailure']);
    expect(isRetriable(policy(['5xx', 'gateway-error', 'reset', 'connect-failure']), 'success', 200)).toBe(false);
    expect(isRetriable(policy([]), 'reset', 0)).toBe(false);
  });

  it('reads the status even when the outcome says success (a 503 classified loosely)', () => {
    expect(isRetriable(policy(['gateway-error']), 'success', 503)).toBe(true);
    expect(isRetriable(policy(['5xx']), 'success', 500)).toBe(true);
    expect(isRetriable(policy(['gateway-error']), 'success', 500)).toBe(false);
  });
});

describe('retryBackoffMs: fully jittered exponential', () => {
  const p = policy(['5xx'], [], { baseMs: 25, maxMs: 250 });

  it('the window doubles from base and stops at max', () => {
    // A draw just below 1 gives the top of the window.
    const top = (): number => 0.999_999_9;
    expect([1, 2, 3, 4, 5, 6, 20, 1000].map((n) => retryBackoffMs(p, n, top))).toEqual([25, 50, 100, 200, 250, 250, 250, 250]);
  });

  it('draws uniformly over the whole numbers 0..window', () => {
    expect(retryBackoffMs(p, 1, () => 0)).toBe(0);
    expect(retryBackoffMs(p, 1, () => 0.5)).toBe(13);
    expect(retryBackoffMs(p, 3, () => 0.25)).toBe(25);
    const seen = new Set<number>();
    for (let i = 0; i <= 2600; i++) seen.add(retryBackoffMs(p, 1, () => i / 2601));
    expect([...seen].sort((a, b) => a - b)).toEqual(Array.from({ length: 26 }, (_, i) => i));
  });

  it('a retry number below 1 is treated as the first retry; a zero base waits 0', () => {
    expect(retryBackoffMs(p, 0, () => 0.999_999)).toBe(25);
    expect(retryBackoffMs(p, -3, () => 0.999_999)).toBe(25);
    expect(retryBackoffMs(policy(['5xx'], [], { baseMs: 0, maxMs: 0 }), 4, () => 0.9)).toBe(0);
  });

  it('never exceeds max even with a huge retry number (no overflow to Infinity or NaN)', () => {
    const big = policy(['5xx'], [], { baseMs: 60_000, maxMs: 600_000 });
    expect(retryBackoffMs(big, 10_000, () => 0.999_999_99)).toBe(600_000);
  });
});
