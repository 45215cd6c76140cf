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

  it('holds the rate-limit buckets it is given, or its own', () => {
    const buckets = new RateLimitBuckets(5);
    expect(new TrafficState(buckets).rateLimitBuckets).toBe(buckets);
    expect(new TrafficState().rateLimitBuckets).toBeInstanceOf(RateLimitBuckets);
  });
});
