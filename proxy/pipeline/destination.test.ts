import { afterEach, describe, expect, it } from 'vitest';
import type { OutlierDetection, TrafficPolicy } from '../../src/config/types.js';
import { createStaticRegistry } from '../clusters/static-registry.js';
import type { Cluster } from '../clusters/types.js';
import { createDestination, DEFAULT_TRAFFIC_POLICY, type TrafficDestination } from './destination.js';
import { TrafficState } from './traffic-state.js';

const opened: TrafficDestination[] = [];
afterEach(() => {
  for (const d of opened.splice(0)) d.close();
});

function cluster(count: number): Cluster {
  const endpoints = Array.from({ length: count }, (_, i) => ({ address: '127.0.0.1', port: 7001 + i, labels: {} }));
  return createStaticRegistry([{ name: 'reviews', namespace: 'default', ports: [{ name: 'http', port: 9080, protocol: 'http' }], vips: [], endpoints }], 'v1').clusters[0]!;
}

/** One failure ejects; the percent does not hold anyone in, so the panic threshold is what is tested. */
const EJECT_ON_FIRST: OutlierDetection = { consecutive5xx: 1, consecutiveGatewayErrors: 0, intervalMs: 60_000, baseEjectionTimeMs: 1_000, maxEjectionPercent: 100 };

function setup(count: number, options: { outlier?: Partial<OutlierDetection>; panicThresholdPercent?: number; policyPanicThreshold?: number } = {}) {
  const clock = { now: 1_000_000 };
  const policy: TrafficPolicy = {
    ...DEFAULT_TRAFFIC_POLICY,
    outlierDetection: { ...EJECT_ON_FIRST, ...options.outlier },
    panicThresholdPercent: options.policyPanicThreshold ?? null,
  };
  const destination = createDestination(cluster(count), { subset: '', labels: {}, policy }, {
    state: new TrafficState(),
    random: Math.random,
    now: () => clock.now,
    onEjection: undefined,
    healthChecks: false,
    ...(options.panicThresholdPercent === undefined ? {} : { panicThresholdPercent: options.panicThresholdPercent }),
  });
  opened.push(destination);
  /** Round robin: n picks → how many each port got, and whether every pick was made in panic. */
  const counts = (n: number) => {
    const byPort: Record<number, number> = {};
    let panicked = 0;
    for (let i = 0; i < n; i++) {
      const port = destination.pick(undefined, undefined)?.port ?? 0;
      byPort[port] = (byPort[port] ?? 0) + 1;
      if (destination.lastPickPanicked) panicked++;
    }
    return { byPort, panicked };
  };
  const eject = (index: number) => destination.recordOutcome(destination.endpoints[index]!, '5xx');
  return { destination, clock, counts, eject };
}

describe('panic threshold', () => {
  it('balances over usable endpoints down to 50 %, over all of them below, and back when one returns', () => {
    const { destination, clock, counts, eject } = setup(4);
    eject(0);
    expect(counts(300)).toEqual({ byPort: { 7002: 100, 7003: 100, 7004: 100 }, panicked: 0 });
    clock.now += 100;
    eject(1);
    // 2 of 4 usable = 50 %: not below the threshold (Envoy: panic when healthy % < threshold).
    expect(counts(300)).toEqual({ byPort: { 7003: 150, 7004: 150 }, panicked: 0 });
    expect(destination.status().panic).toBe(false);
    clock.now += 100;
    eject(2);
    // 1 of 4 = 25 %: every endpoint, ejected ones included, in equal shares.
    expect(counts(400)).toEqual({ byPort: { 7001: 100, 7002: 100, 7003: 100, 7004: 100 }, panicked: 400 });
    expect(destination.status()).toMatchObject({ panic: true, panicPicks: 400 });
    // Answers from ejected endpoints in panic neither extend nor repeat their ejection.
    eject(0);
    expect(destination.status().endpoints[0]!.ejectedUntilMs).toBe(1_000_000 + 1_000);
    // 7001's ejection (1 s) ends first: 2 of 4 usable again.
    clock.now = 1_000_000 + 1_000;
    expect(counts(300)).toEqual({ byPort: { 7001: 150, 7004: 150 }, panicked: 0 });
    expect(destination.status()).toMatchObject({ panic: false, panicPicks: 400 });
  });

  it('a one-endpoint destination whose endpoint is ejected still sends to it, unless the threshold is 0', () => {
    const panicking = setup(1);
    panicking.eject(0);
    expect(panicking.counts(10)).toEqual({ byPort: { 7001: 10 }, panicked: 10 });

    const strict = setup(1, { panicThresholdPercent: 0 });
    strict.eject(0);
    expect(strict.counts(10)).toEqual({ byPort: { 0: 10 }, panicked: 0 }); // undefined → 503 UH
  });

  it('the policy\'s panicThreshold wins over the proxy\'s default: 0 refuses instead, 80 panics at 3 of 4', () => {
    const off = setup(4, { policyPanicThreshold: 0 });
    for (const index of [0, 1, 2]) off.eject(index);
    expect(off.counts(10)).toEqual({ byPort: { 7004: 10 }, panicked: 0 });
    const early = setup(4, { policyPanicThreshold: 80, panicThresholdPercent: 0 });
    early.eject(3);
    expect(early.counts(400)).toEqual({ byPort: { 7001: 100, 7002: 100, 7003: 100, 7004: 100 }, panicked: 400 });
  });

  it('a higher threshold panics earlier: 3 of 4 usable is below 80 %', () => {
    const { counts, eject } = setup(4, { panicThresholdPercent: 80 });
    eject(3);
    expect(counts(400)).toEqual({ byPort: { 7001: 100, 7002: 100, 7003: 100, 7004: 100 }, panicked: 400 });
  });

  it('with maxEjectionPercent ≤ 50, ejections alone never reach panic: all failing, half stay in', () => {
    for (const endpoints of [2, 3, 4, 5, 10]) {
      const { destination, counts } = setup(endpoints, { outlier: { maxEjectionPercent: 50 } });
      for (const endpoint of destination.endpoints) destination.recordOutcome(endpoint, '5xx');
      const ejected = destination.status().endpoints.filter((e) => e.ejectedUntilMs > 0).length;
      expect(ejected).toBe(Math.max(1, Math.floor(endpoints / 2)));
      const { byPort, panicked } = counts(endpoints * 10);
      expect(panicked).toBe(0);
      expect(Object.keys(byPort)).toHaveLength(endpoints - ejected);
    }
  });

  it('an exclude (a retry) still avoids the endpoint in panic mode', () => {
    const { destination, eject } = setup(2);
    eject(0);
    eject(1);
    const first = destination.endpoints[0]!;
    for (let i = 0; i < 10; i++) expect(destination.pick(undefined, first)).toBe(destination.endpoints[1]);
    expect(destination.lastPickPanicked).toBe(true);
  });
});
