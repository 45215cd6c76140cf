import { describe, expect, it } from 'vitest';
import type { ConnectionPool } from '../../src/config/types.js';
import { createDestinationLimits } from './limits.js';
import { LimitCounters } from './traffic-state.js';

const NO_LIMITS: ConnectionPool = { maxConnections: null, maxPendingRequests: null, maxRequests: null, maxRetries: null, connectTimeoutMs: null };

describe('destination limits', () => {
  it('refuses at each threshold and admits again after the paired end', () => {
    const limits = createDestinationLimits({ maxConnections: 2, maxPendingRequests: 1, maxRequests: 3, maxRetries: null, connectTimeoutMs: 250 }, new LimitCounters(), Date.now);
    expect(limits.connectTimeoutMs).toBe(250);
    expect([limits.tryStartRequest(), limits.tryStartRequest(), limits.tryStartRequest(), limits.tryStartRequest()]).toEqual([true, true, true, false]);
    limits.requestEnded();
    expect(limits.tryStartRequest()).toBe(true);
    expect([limits.tryOpenConnection(), limits.tryOpenConnection(), limits.tryOpenConnection()]).toEqual([true, true, false]);
    limits.connectionClosed();
    expect(limits.tryOpenConnection()).toBe(true);
    expect([limits.tryStartPending(), limits.tryStartPending()]).toEqual([true, false]);
    limits.pendingEnded();
    expect(limits.tryStartPending()).toBe(true);
  });

  it('never goes below zero on an unpaired end', () => {
    const counters = new LimitCounters();
    const limits = createDestinationLimits(NO_LIMITS, counters, Date.now);
    limits.requestEnded();
    limits.retryEnded();
    limits.connectionClosed();
    limits.pendingEnded();
    expect(counters.idle()).toBe(true);
    expect(counters.requests).toBe(0);
  });

  it('shares counters between versions: an old version ending a request frees the new version\'s slot', () => {
    const counters = new LimitCounters();
    const pool = { ...NO_LIMITS, maxRequests: 1 };
    const old = createDestinationLimits(pool, counters, Date.now);
    const next = createDestinationLimits(pool, counters, Date.now);
    expect(old.tryStartRequest()).toBe(true);
    expect(next.tryStartRequest()).toBe(false);
    old.requestEnded();
    expect(next.tryStartRequest()).toBe(true);
  });

  it('retry budget: percent of active requests, plus minRetriesPerSecond from a bucket refilled by the clock', () => {
    const clock = { now: 0 };
    const limits = createDestinationLimits(NO_LIMITS, new LimitCounters(), () => clock.now);
    const budget = { percent: 20, minRetriesPerSecond: 2 };
    for (let i = 0; i < 10; i++) limits.tryStartRequest();
    // 20 % of 10 active = 2 retries in flight, then the bucket's 2, then nothing.
    expect(Array.from({ length: 5 }, () => limits.tryStartRetry(budget))).toEqual([true, true, true, true, false]);
    clock.now += 499; // 0.998 of a token
    expect(limits.tryStartRetry(budget)).toBe(false);
    clock.now += 1;
    expect(limits.tryStartRetry(budget)).toBe(true);
    expect(limits.tryStartRetry(budget)).toBe(false);
    limits.retryEnded(); // 4 in flight: within 20 % of 10? no (4 > 2); bucket empty
    expect(limits.tryStartRetry(budget)).toBe(false);
    limits.retryEnded();
    limits.retryEnded();
    limits.retryEnded(); // 1 in flight: room for one under the percent
    expect(limits.tryStartRetry(budget)).toBe(true);
  });

  it('maxRetries caps retries in flight before the budget', () => {
    const limits = createDestinationLimits({ ...NO_LIMITS, maxRetries: 1 }, new LimitCounters(), Date.now);
    for (let i = 0; i < 100; i++) limits.tryStartRequest();
    const budget = { percent: 100, minRetriesPerSecond: 10 };
    expect([limits.tryStartRetry(budget), limits.tryStartRetry(budget)]).toEqual([true, false]);
  });

  it('a zero minRetriesPerSecond with no active requests allows no retry', () => {
    const limits = createDestinationLimits(NO_LIMITS, new LimitCounters(), Date.now);
    expect(limits.tryStartRetry({ percent: 20, minRetriesPerSecond: 0 })).toBe(false);
  });
});
