import { afterEach, describe, expect, it } from 'vitest';
import type { OutlierDetection, TrafficPolicy } from '../../src/config/types.js';
import { createStaticRegistry } from '../clusters/static-registry.js';
import type { Cluster } from '../clusters/types.js';
import { createDestination, DEFAULT_TRAFFIC_POLICY, type TrafficDestination } from './destination.js';
import type { OutlierEvent } from './outlier-detection.js';
import { TrafficState } from './traffic-state.js';

const opened: TrafficDestination[] = [];
afterEach(() => {
  for (const d of opened.splice(0)) d.close();
});

function cluster(count: number): Cluster {
  const endpoints = Array.from({ length: count }, (_, i) => ({ address: '127.0.0.1', port: 7001 + i, labels: { version: `v${i + 1}` } }));
  return createStaticRegistry([{ name: 'reviews', namespace: 'default', ports: [{ name: 'http', port: 9080, protocol: 'http' }], vips: [], endpoints }], 'v1').clusters[0]!;
}

const OUTLIER: OutlierDetection = { consecutive5xx: 3, consecutiveGatewayErrors: 0, intervalMs: 60_000, baseEjectionTimeMs: 1_000, maxEjectionPercent: 100 };

function setup(count: number, outlier: Partial<OutlierDetection> = {}, state = new TrafficState(), c = cluster(count)) {
  const clock = { now: 1_000_000 };
  const events: OutlierEvent[] = [];
  const policy: TrafficPolicy = { ...DEFAULT_TRAFFIC_POLICY, outlierDetection: { ...OUTLIER, ...outlier } };
  const destination = createDestination(c, { subset: '', labels: {}, policy }, {
    state,
    random: Math.random,
    now: () => clock.now,
    onEjection: (e) => events.push(e),
    healthChecks: false,
  });
  opened.push(destination);
  const picked = (n = 20) => new Set(Array.from({ length: n }, () => destination.pick(undefined, undefined)?.port));
  return { destination, clock, events, picked, state, cluster: c };
}

describe('outlier detection', () => {
  it('ejects after consecutive5xx failures, un-ejects lazily when the time is up, and doubles the second ejection', () => {
    const { destination, clock, events, picked } = setup(3);
    const bad = destination.endpoints[0]!;
    destination.recordOutcome(bad, '5xx');
    destination.recordOutcome(bad, 'reset');
    expect(picked()).toEqual(new Set([7001, 7002, 7003]));
    destination.recordOutcome(bad, 'timeout');
    expect(picked()).toEqual(new Set([7002, 7003]));
    expect(events).toEqual([{ kind: 'ejected', destination: 'reviews.default:9080', endpoint: '127.0.0.1:7001', reason: 'consecutive-5xx', ejections: 1, durationMs: 1_000 }]);

    clock.now += 999;
    expect(picked().has(7001)).toBe(false);
    clock.now += 1;
    expect(picked().has(7001)).toBe(true);
    expect(events[1]).toEqual({ kind: 'unejected', destination: 'reviews.default:9080', endpoint: '127.0.0.1:7001', ejectedForMs: 1_000 });

    for (let i = 0; i < 3; i++) destination.recordOutcome(bad, '5xx');
    expect(events[2]).toMatchObject({ kind: 'ejected', ejections: 2, durationMs: 2_000 });
    clock.now += 1_999;
    expect(picked().has(7001)).toBe(false);
    clock.now += 1;
    expect(picked().has(7001)).toBe(true);
  });

  it('a success resets the count; a plain 5xx resets only the gateway count', () => {
    const { destination, events } = setup(3, { consecutive5xx: 3, consecutiveGatewayErrors: 2 });
    const ep = destination.endpoints[1]!;
    destination.recordOutcome(ep, '5xx');
    destination.recordOutcome(ep, '5xx');
    destination.recordOutcome(ep, 'success');
    destination.recordOutcome(ep, '5xx');
    destination.recordOutcome(ep, 'gateway');
    destination.recordOutcome(ep, '5xx'); // 5xx count 3 → ejected by consecutive-5xx
    expect(events).toMatchObject([{ kind: 'ejected', reason: 'consecutive-5xx', endpoint: '127.0.0.1:7002' }]);

    const other = destination.endpoints[2]!;
    destination.recordOutcome(other, 'gateway');
    destination.recordOutcome(other, 'connect-failure');
    expect(events[1]).toMatchObject({ kind: 'ejected', reason: 'consecutive-gateway', endpoint: '127.0.0.1:7003' });
  });

  it('holds maxEjectionPercent, but always lets one endpoint go when the percent is above 0', () => {
    const { destination, events, picked } = setup(4, { maxEjectionPercent: 50 });
    for (const ep of destination.endpoints) for (let i = 0; i < 3; i++) destination.recordOutcome(ep, '5xx');
    expect(events.filter((e) => e.kind === 'ejected')).toHaveLength(2);
    expect(events.filter((e) => e.kind === 'overflow')).toHaveLength(2);
    expect(picked(40)).toEqual(new Set([7003, 7004]));

    const small = setup(3, { maxEjectionPercent: 10 });
    for (const ep of small.destination.endpoints) for (let i = 0; i < 3; i++) small.destination.recordOutcome(ep, '5xx');
    expect(small.events.filter((e) => e.kind === 'ejected')).toHaveLength(1);
    expect(small.picked(40).size).toBe(2);

    const never = setup(3, { maxEjectionPercent: 0 });
    for (let i = 0; i < 10; i++) never.destination.recordOutcome(never.destination.endpoints[0]!, '5xx');
    expect(never.events.every((e) => e.kind === 'overflow')).toBe(true);
    expect(never.picked(40).size).toBe(3);
  });

  it('an ejection whose time is up does not count against maxEjectionPercent before the next pick or sweep', () => {
    // Two endpoints, 50 %: one ejection at a time. A's ends at +1 s; B's
    // failures are recorded after that (an attempt that was in flight) with
    // no pick in between: B must be ejected, not refused as an overflow.
    const { destination, clock, events, picked } = setup(2, { maxEjectionPercent: 50 });
    const [a, b] = destination.endpoints;
    for (let i = 0; i < 3; i++) destination.recordOutcome(a!, '5xx');
    clock.now += 1_000;
    for (let i = 0; i < 3; i++) destination.recordOutcome(b!, '5xx');
    expect(events.map((e) => `${e.kind} ${e.endpoint}`)).toEqual(['ejected 127.0.0.1:7001', 'unejected 127.0.0.1:7001', 'ejected 127.0.0.1:7002']);
    expect(picked()).toEqual(new Set([7001]));
  });

  it('the interval sweep un-ejects and lowers the multiplier of an endpoint that stayed back a base ejection time', () => {
    const { destination, clock, state } = setup(2);
    const ep = destination.endpoints[0]!;
    for (let i = 0; i < 3; i++) destination.recordOutcome(ep, '5xx');
    const endpointState = state.peek('reviews.default:9080')!.endpoints.get(ep.key)!;
    expect(endpointState.ejected).toBe(true);
    clock.now += 1_000;
    (destination as unknown as { outlier: { sweep(): void } }).outlier.sweep();
    expect(endpointState.ejected).toBe(false);
    expect(endpointState.ejections).toBe(1);
    clock.now += 1_000;
    (destination as unknown as { outlier: { sweep(): void } }).outlier.sweep();
    expect(endpointState.ejections).toBe(0);
  });

  it('ejections survive a configuration swap: the next version shares the state by name', () => {
    const state = new TrafficState();
    // Four endpoints: two ejected leave 50 %, not below the panic threshold.
    const first = setup(4, {}, state);
    for (let i = 0; i < 3; i++) first.destination.recordOutcome(first.destination.endpoints[0]!, '5xx');
    const second = setup(4, {}, state); // new cluster and endpoint objects, same names
    expect(second.picked()).toEqual(new Set([7002, 7003, 7004]));
    // An attempt of the old version ending now still counts for the new one.
    for (let i = 0; i < 3; i++) first.destination.recordOutcome(first.destination.endpoints[1]!, '5xx');
    expect(second.picked()).toEqual(new Set([7003, 7004]));
  });

  it('without outlier detection nothing is ejected', () => {
    const destination = createDestination(cluster(2), { subset: '', labels: {}, policy: DEFAULT_TRAFFIC_POLICY }, { state: new TrafficState(), random: Math.random, now: Date.now, onEjection: undefined, healthChecks: false });
    for (let i = 0; i < 50; i++) destination.recordOutcome(destination.endpoints[0]!, 'gateway');
    expect(new Set(Array.from({ length: 10 }, () => destination.pick(undefined, undefined)?.port))).toEqual(new Set([7001, 7002]));
  });
});
