import { describe, expect, it } from 'vitest';
import { RateLimitBuckets } from './rate-limit.js';
import { TrafficState } from './traffic-state.js';

describe('TrafficState', () => {
  it('forgets destinations and endpoints the current version does not name', () => {
    const state = new TrafficState();
    state.destination('a:80').endpoint('10.0.0.1:80').ejected = true;
    state.destination('a:80').endpoint('10.0.0.2:80');
    state.destination('b:80').endpoint('10.0.0.3:80');
    state.retain(new Map([['a:80', ['10.0.0.1:80']]]));
    expect(state.destinationCount).toBe(1);
    expect([...state.peek('a:80')!.endpoints.keys()]).toEqual(['10.0.0.1:80']);
    expect(state.peek('a:80')!.endpoints.get('10.0.0.1:80')!.ejected).toBe(true);
    expect(state.peek('b:80')).toBeUndefined();
  });

  it('keeps a removed destination while its counters are in flight, and drops it at the first swap after', () => {
    const state = new TrafficState();
    const counters = state.destination('gone:80').limits;
    counters.requests = 1;
    state.retain(new Map());
    expect(state.destination('gone:80').limits).toBe(counters);
    counters.requests = 0;
    state.retain(new Map());
    expect(state.peek('gone:80')).toBeUndefined();
  });

  it('forgets at retain the health checks no destination holds, and keeps the held ones', () => {
    const state = new TrafficState();
    const spec = { path: '/healthz', intervalMs: 60_000, timeoutMs: 1_000, healthyThreshold: 1, unhealthyThreshold: 1 };
    // random 0.99: the first check is ~1 s away; both are released or closed before it.
    const held = state.healthChecks.acquire({ address: '127.0.0.1', port: 1, key: '127.0.0.1:1', authority: 'a.default:80' }, spec, () => 0.99);
    const dropped = state.healthChecks.acquire({ address: '127.0.0.1', port: 2, key: '127.0.0.1:2', authority: 'a.default:80' }, spec, () => 0.99);
    state.healthChecks.release(dropped);
    expect(state.healthChecks.size).toBe(2);
    state.retain(new Map());
    expect(state.healthChecks.size).toBe(1);
    expect(held.probe.running).toBe(true);
    state.healthChecks.close();
    expect(state.healthChecks.runningCount).toBe(0);
  });

  it('holds the rate-limit buckets it is given, or its own', () => {
    const buckets = new RateLimitBuckets(5);
    expect(new TrafficState(buckets).rateLimitBuckets).toBe(buckets);
    expect(new TrafficState().rateLimitBuckets).toBeInstanceOf(RateLimitBuckets);
  });
});
