import { afterEach, describe, expect, it } from 'vitest';
import type { MeshConfig } from '../../src/config/types.js';
import { singleEndpointCluster } from '../clusters/static-registry.js';
import type { OutlierEvent } from './outlier-detection.js';
import { createTrafficConfig } from './traffic-config.js';
import { TrafficState } from './traffic-state.js';
import type { RequestFacts, TrafficConfig } from './types.js';
import { validMeshConfig } from '../../test/support/mesh-yaml.js';

const YAML = `
apiVersion: tracemesh.dev/v1
kind: Service
metadata: { name: reviews }
spec:
  ports: [{ name: http, port: 9080, protocol: http }]
  endpoints:
    - { address: 127.0.0.1, port: 7001, labels: { version: v1 } }
    - { address: 127.0.0.1, port: 7002, labels: { version: v2 } }
    - { address: 127.0.0.1, port: 7003, labels: { version: v2 } }
---
apiVersion: tracemesh.dev/v1
kind: Service
metadata: { name: ratings }
spec:
  ports: [{ name: http, port: 9080, protocol: http }]
  endpoints: [{ address: 127.0.0.1, port: 7101, labels: {} }]
---
apiVersion: tracemesh.dev/v1
kind: DestinationPolicy
metadata: { name: reviews }
spec:
  host: reviews
  loadBalancer: { simple: leastRequest }
  connectionPool: { maxRequests: 7, connectTimeout: 300ms }
  outlierDetection: { consecutive5xx: 2, baseEjectionTime: 1s, maxEjectionPercent: 100 }
  subsets:
    - { name: v1, labels: { version: v1 } }
    - name: v2
      labels: { version: v2 }
      overrides: { loadBalancer: { consistentHash: { header: x-user } } }
---
apiVersion: tracemesh.dev/v1
kind: Route
metadata: { name: reviews }
spec:
  hosts: [reviews]
  http:
    - name: to-v2
      destinations: [{ service: reviews, subset: v2 }]
`;

function meshConfig(text = YAML): MeshConfig {
  return validMeshConfig(text, 'traffic.yaml');
}

const built: TrafficConfig[] = [];
afterEach(() => {
  for (const c of built.splice(0)) c.close();
});

function build(state: TrafficState, config = meshConfig(), version = 'v1', events: OutlierEvent[] = []): TrafficConfig {
  const traffic = createTrafficConfig(config, version, state, { healthChecks: false, onEjection: (e) => events.push(e), random: () => 0.5 });
  built.push(traffic);
  return traffic;
}

const FACTS: RequestFacts = { host: 'reviews', port: 9080, method: 'GET', path: '/', query: '', header: () => undefined, sourceService: 'web', sourceNamespace: 'default', sourceAddress: '127.0.0.1' };

describe('createTrafficConfig', () => {
  it('builds a destination per cluster and per subset with the subset\'s effective policy', () => {
    const traffic = build(new TrafficState());
    expect(traffic.version).toBe('v1');
    expect(traffic.destinations.map((d) => d.name)).toEqual(['reviews.default:9080', 'reviews.default:9080|v1', 'reviews.default:9080|v2', 'ratings.default:9080']);
    const reviews = traffic.registry.resolve('reviews', 9080)!;
    const v2 = traffic.destination(reviews, 'v2')!;
    expect(v2.endpoints.map((e) => e.port)).toEqual([7002, 7003]);
    expect(v2.endpoints[0]).toBe(reviews.endpoints[1]); // the cluster's own objects: shared live counters
    expect(v2.limits.connectTimeoutMs).toBe(300);
    expect(v2.status?.().loadBalancer).toBe('consistentHash');
    expect(traffic.destination(reviews, '')!.status?.().loadBalancer).toBe('leastRequest');
    expect(traffic.destination(reviews, 'v9')).toBeUndefined();
    const ratings = traffic.destination(traffic.registry.resolve('ratings', 9080)!, '')!;
    expect(ratings.status?.().loadBalancer).toBe('roundRobin');
    expect(ratings.limits.tryStartRequest()).toBe(true);
  });

  it('routes through its own destinations and applies limits', () => {
    const traffic = build(new TrafficState());
    const reviews = traffic.registry.resolve('reviews', 9080)!;
    const plan = traffic.routes.select(reviews, FACTS);
    expect(plan.routeName).toBe('to-v2');
    expect(plan.destination).toBe(traffic.destination(reviews, 'v2'));
    const limits = plan.destination!.limits;
    expect(Array.from({ length: 8 }, () => limits.tryStartRequest()).filter(Boolean)).toHaveLength(7);
  });

  it('keeps ejections and limit counters across versions and forgets what a version drops', () => {
    const state = new TrafficState();
    const events: OutlierEvent[] = [];
    const first = build(state, meshConfig(), 'v1', events);
    const reviews1 = first.registry.resolve('reviews', 9080)!;
    const whole1 = first.destination(reviews1, '')!;
    whole1.recordOutcome(reviews1.endpoints[0]!, '5xx');
    whole1.recordOutcome(reviews1.endpoints[0]!, '5xx');
    expect(events).toMatchObject([{ kind: 'ejected', endpoint: '127.0.0.1:7001' }]);
    expect(whole1.limits.tryStartRequest()).toBe(true); // in flight across the swap

    const second = build(state, meshConfig(), 'v2');
    first.close();
    const reviews2 = second.registry.resolve('reviews', 9080)!;
    const whole2 = second.destination(reviews2, '')!;
    const picks = new Set(Array.from({ length: 30 }, () => whole2.pick(FACTS, undefined)?.port));
    expect(picks.has(7001)).toBe(false);
    expect(whole2.status?.().activeRequests).toBe(1);
    whole1.limits.requestEnded();
    expect(whole2.status?.().activeRequests).toBe(0);
    // A cluster object of the previous version finds this version's destination by name.
    expect(second.destination(reviews1, 'v2')).toBe(second.destination(reviews2, 'v2'));

    // A version without ratings: its state goes.
    state.destination('ratings.default:9080').endpoint('127.0.0.1:7101').ejected = true;
    build(state, meshConfig(YAML.replace(/---\napiVersion: tracemesh.dev\/v1\nkind: Service\nmetadata: \{ name: ratings \}[\s\S]*?(?=---)/, '')), 'v3');
    expect(state.peek('ratings.default:9080')).toBeUndefined();
    expect(state.peek('reviews.default:9080|v2')).toBeDefined();
  });

  it('applies the panic threshold it is given to every destination (default 50 %, 0: off)', () => {
    for (const [threshold, expected] of [[undefined, [7001, 7002, 7003]], [0, [7003]]] as const) {
      // Least request's draws cycle through all three endpoints: 0.1/0.5 → 7001, 0.9/0.1 → 7003, 0.5/0.9 → 7002.
      let draw = 0;
      const random = () => [0.1, 0.5, 0.9][draw++ % 3]!;
      const traffic = createTrafficConfig(meshConfig(), 'v1', new TrafficState(), { healthChecks: false, random, ...(threshold === undefined ? {} : { panicThresholdPercent: threshold }) });
      built.push(traffic);
      const reviews = traffic.registry.resolve('reviews', 9080)!;
      const whole = traffic.destination(reviews, '')!;
      for (const endpoint of reviews.endpoints.slice(0, 2)) for (let i = 0; i < 2; i++) whole.recordOutcome(endpoint, '5xx');
      // 1 of 3 usable (33 %).
      expect([...new Set(Array.from({ length: 30 }, () => whole.pick(FACTS, undefined)!.port))].sort()).toEqual(expected);
      expect(whole.status?.().panic).toBe(threshold === undefined);
    }
  });

  it('gives a cluster outside the configuration a default destination with state of its own', () => {
    const state = new TrafficState();
    const traffic = build(state);
    const passthrough = singleEndpointCluster('', '', { name: 'tcp', port: 5432, protocol: 'tcp' }, { address: '10.1.2.3', port: 5432, labels: {} });
    const destination = traffic.destination(passthrough, '')!;
    expect(destination.pick(undefined, undefined)?.key).toBe('10.1.2.3:5432');
    expect(traffic.destination(passthrough, '')).toBe(destination);
    expect(traffic.destination(passthrough, 'v1')).toBeUndefined();
    expect(state.peek(destination.name)).toBeUndefined();
  });

  it('a config without policies, routes or limits still builds (services only)', () => {
    const traffic = build(new TrafficState(), { services: meshConfig().services });
    expect(traffic.destinations).toHaveLength(2);
    expect(traffic.rateLimits.admit('reviews', 'default', '', 'web', 'default')).toBeUndefined();
    traffic.close();
    traffic.close(); // safe twice
  });
});
