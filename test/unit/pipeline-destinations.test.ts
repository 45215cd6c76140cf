/**
 * Destinations measured over real sockets: real HTTP backends on 127.0.0.1:0,
 * a TrafficConfig built from validated YAML, requests sent to the endpoint
 * each pick returns, outcomes recorded from the real answers. Clocks are
 * injected where a duration is the claim (ejection times), real where the
 * claim is about real timers (active health checks, polled with a deadline).
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClusterEndpoint } from '../../proxy/clusters/types.js';
import type { OutlierEvent } from '../../proxy/pipeline/outlier-detection.js';
import { createTrafficConfig } from '../../proxy/pipeline/traffic-config.js';
import { TrafficState } from '../../proxy/pipeline/traffic-state.js';
import type { AttemptOutcome, Destination, TrafficConfig } from '../../proxy/pipeline/types.js';
import { Random } from '../support/fuzz/random.js';
import { validMeshConfig } from '../support/mesh-yaml.js';
import { waitUntil } from '../support/wait-until.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

interface Backend {
  readonly port: number;
  status: number;
  requests: number;
  healthChecks: number;
  /** performance.now() at each health check's arrival, and its path. */
  readonly checkTimes: number[];
  readonly checkPaths: string[];
  /** Health-check answers by path, overriding `status`. */
  readonly checkStatus: Map<string, number>;
  /** Hold requests open until release() (least request). */
  hold: boolean;
  release(): void;
}

async function backend(status = 200): Promise<Backend> {
  const held: http.ServerResponse[] = [];
  const server = http.createServer((req, res) => {
    if (req.headers['x-tracemesh-health-check'] === '1') {
      b.healthChecks++;
      b.checkTimes.push(performance.now());
      b.checkPaths.push(req.url ?? '');
      res.writeHead(b.checkStatus.get(req.url ?? '') ?? b.status).end();
      return;
    }
    b.requests++;
    if (b.hold) held.push(res);
    else res.writeHead(b.status).end(`from ${b.port}`);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const b: Backend = {
    port: (server.address() as AddressInfo).port,
    status,
    requests: 0,
    healthChecks: 0,
    checkTimes: [],
    checkPaths: [],
    checkStatus: new Map(),
    hold: false,
    release: () => {
      for (const res of held.splice(0)) res.writeHead(b.status).end();
    },
  };
  closers.push(() => new Promise<void>((resolve) => {
    b.release();
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return b;
}

function outcomeOf(status: number): AttemptOutcome {
  if (status === 502 || status === 503 || status === 504) return 'gateway';
  return status >= 500 ? '5xx' : 'success';
}

/** One attempt as a protocol path makes it: pick, count, send, record. */
async function send(destination: Destination): Promise<{ port: number; status: number }> {
  const endpoint = destination.pick(undefined, undefined);
  if (endpoint === undefined) return { port: 0, status: 503 };
  destination.cluster.onRequestStart(endpoint);
  try {
    const status = await new Promise<number>((resolve, reject) => {
      const req = http.get({ host: endpoint.address, port: endpoint.port, path: '/', agent: false }, (res) => {
        res.resume();
        res.on('end', () => resolve(res.statusCode ?? 0));
      });
      req.on('error', reject);
    });
    destination.recordOutcome(endpoint, outcomeOf(status));
    destination.cluster.onRequestEnd(endpoint, status >= 500 ? String(status) : undefined);
    return { port: endpoint.port, status };
  } catch (err) {
    destination.recordOutcome(endpoint, 'connect-failure');
    destination.cluster.onRequestEnd(endpoint, String(err));
    return { port: endpoint.port, status: 503 };
  }
}

function yaml(ports: number[], policy: string, labels: (i: number) => string = () => '{}'): string {
  return `
apiVersion: tracemesh.dev/v1
kind: Service
metadata: { name: reviews }
spec:
  ports: [{ name: http, port: 9080, protocol: http }]
  endpoints:
${ports.map((port, i) => `    - { address: 127.0.0.1, port: ${port}, labels: ${labels(i)} }`).join('\n')}
---
apiVersion: tracemesh.dev/v1
kind: DestinationPolicy
metadata: { name: reviews }
spec:
  host: reviews
${policy}
`;
}

interface Built {
  traffic: TrafficConfig;
  state: TrafficState;
  destination: Destination;
  clock: { now: number };
  events: OutlierEvent[];
}

function build(text: string, options: { healthChecks?: boolean; seed?: number; state?: TrafficState; version?: string } = {}): Built {
  const clock = { now: 1_000_000 };
  const events: OutlierEvent[] = [];
  const rng = new Random(options.seed ?? 11);
  const state = options.state ?? new TrafficState();
  const traffic = createTrafficConfig(validMeshConfig(text, 'destinations.yaml'), options.version ?? 'v1', state, {
    now: () => clock.now,
    random: () => rng.float(),
    onEjection: (e) => events.push(e),
    healthChecks: options.healthChecks ?? false,
  });
  closers.push(() => traffic.close());
  const destination = traffic.destination(traffic.registry.resolve('reviews', 9080)!, '')!;
  return { traffic, state, destination, clock, events };
}

function picks(destination: Destination, n: number): Set<number> {
  return new Set(Array.from({ length: n }, () => destination.pick(undefined, undefined)?.port ?? 0));
}

describe('outlier detection over real backends', () => {
  it('ejects a backend answering 500 after N consecutive failures, returns it after the ejection time, and doubles the second', async () => {
    const good = await backend(200);
    const bad = await backend(500);
    const { destination, clock, events } = build(yaml([good.port, bad.port], '  outlierDetection: { consecutive5xx: 3, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 50 }'));
    const answers: number[] = [];
    for (let i = 0; i < 10; i++) answers.push((await send(destination)).status);
    // Round robin: the bad one answered its 3 failures on requests 2, 4, 6; after that only the good one.
    expect(answers).toEqual([200, 500, 200, 500, 200, 500, 200, 200, 200, 200]);
    expect(bad.requests).toBe(3);
    expect(picks(destination, 20)).toEqual(new Set([good.port]));
    expect(events).toMatchObject([{ kind: 'ejected', endpoint: `127.0.0.1:${bad.port}`, ejections: 1, durationMs: 30_000 }]);

    clock.now += 29_999;
    expect(picks(destination, 20)).toEqual(new Set([good.port]));
    clock.now += 1;
    expect(picks(destination, 20)).toEqual(new Set([good.port, bad.port]));

    // Still failing: ejected again after 3 more, now for 60 s.
    while (events.filter((e) => e.kind === 'ejected').length < 2) await send(destination);
    expect(bad.requests).toBe(6);
    expect(events.at(-1)).toMatchObject({ kind: 'ejected', ejections: 2, durationMs: 60_000 });
    clock.now += 59_999;
    expect(picks(destination, 20)).toEqual(new Set([good.port]));
    clock.now += 1;
    expect(picks(destination, 20).has(bad.port)).toBe(true);

    // Fixed: it stays in.
    bad.status = 200;
    for (let i = 0; i < 10; i++) expect((await send(destination)).status).toBe(200);
    expect(picks(destination, 20)).toEqual(new Set([good.port, bad.port]));
  });

  it('never ejects more than maxEjectionPercent of the endpoints', async () => {
    const backends = await Promise.all([backend(503), backend(503), backend(503), backend(503), backend(200)]);
    const { destination, events } = build(yaml(backends.map((b) => b.port), '  outlierDetection: { consecutiveGatewayErrors: 2, consecutive5xx: 0, baseEjectionTime: 1m, maxEjectionPercent: 40 }'));
    for (let i = 0; i < 40; i++) await send(destination);
    // 40 % of 5 endpoints: two ejected; the other two failing ones stay in (overflow).
    expect(events.filter((e) => e.kind === 'ejected')).toHaveLength(2);
    expect(events.some((e) => e.kind === 'overflow')).toBe(true);
    expect(picks(destination, 100).size).toBe(3);
  });
});

describe('active health checks over real backends', () => {
  it('marks an endpoint unhealthy after unhealthyThreshold failed checks and healthy after healthyThreshold good ones', async () => {
    const a = await backend(200);
    const b = await backend(200);
    const { destination } = build(yaml([a.port, b.port], '  healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 2, unhealthyThreshold: 3 }'), { healthChecks: true });
    // New endpoints start healthy: traffic flows before the first check.
    expect(picks(destination, 10)).toEqual(new Set([a.port, b.port]));
    await waitUntil('checks to run', () => b.healthChecks >= 2);
    b.status = 500;
    const checksAtSwitch = b.healthChecks;
    await waitUntil('b to be taken out', () => !picks(destination, 10).has(b.port));
    expect(b.healthChecks - checksAtSwitch).toBeGreaterThanOrEqual(3);
    expect(destination.status?.().endpoints[1]).toMatchObject({ healthy: false, lastCheckFailure: 'answered 500' });
    // Requests keep working on the healthy one.
    for (let i = 0; i < 5; i++) expect(await send(destination)).toEqual({ port: a.port, status: 200 });

    b.status = 200;
    const checksAtFix = b.healthChecks;
    await waitUntil('b to come back', () => picks(destination, 10).has(b.port));
    expect(b.healthChecks - checksAtFix).toBeGreaterThanOrEqual(2);
  });
});

/** The health checks' interval in the tests below. */
const CHECK_INTERVAL_MS = 100; // the schema's minimum
/**
 * Node's timer clock and performance.now() may disagree by a millisecond or
 * so. Two checkers on one endpoint would make some gap at most about half an
 * interval, far below interval − slack.
 */
const GAP_SLACK_MS = 5;

function gapsOf(times: readonly number[]): number[] {
  return times.slice(1).map((t, i) => t - times[i]!);
}

/** Reviews on three backends (v1, v2, v2) with subsets v1 and v2; `v2Overrides` replaces blocks of v2's policy. */
function subsetsYaml(ports: number[], check: string, v2Overrides = ''): string {
  const v2 = v2Overrides === '' ? '    - { name: v2, labels: { version: v2 } }' : `    - name: v2\n      labels: { version: v2 }\n      overrides: ${v2Overrides}`;
  return yaml(ports, `  healthCheck: ${check}\n  subsets:\n    - { name: v1, labels: { version: v1 } }\n${v2}`, (i) => (i === 0 ? '{ version: v1 }' : '{ version: v2 }'));
}

const CHECK = `{ path: /healthz, interval: ${CHECK_INTERVAL_MS}ms, timeout: ${CHECK_INTERVAL_MS}ms, healthyThreshold: 1, unhealthyThreshold: 1 }`;

describe('one active health check per endpoint', () => {
  it('the whole service and two subsets check each endpoint once per interval, not once per destination', async () => {
    const backends = await Promise.all([backend(), backend(), backend()]);
    const { traffic, state } = build(subsetsYaml(backends.map((b) => b.port), CHECK), { healthChecks: true });
    // Each endpoint is in two destinations (the whole service and its subset).
    expect(traffic.destinations.map((d) => `${d.name} ${d.endpoints.length}`)).toEqual(['reviews.default:9080 3', 'reviews.default:9080|v1 1', 'reviews.default:9080|v2 2']);
    expect(state.healthChecks.runningCount).toBe(3);
    await waitUntil('six checks on every endpoint', () => backends.every((b) => b.healthChecks >= 6));
    for (const b of backends) {
      const times = b.checkTimes.slice(0, 6);
      // Requests per interval at the server: six checks spread over at least five intervals.
      expect(Math.min(...gapsOf(times)), `gaps at ${b.port}: ${gapsOf(times).map(Math.round).join(', ')}`).toBeGreaterThanOrEqual(CHECK_INTERVAL_MS - GAP_SLACK_MS);
      expect(times.at(-1)! - times[0]!).toBeGreaterThanOrEqual(5 * (CHECK_INTERVAL_MS - GAP_SLACK_MS));
    }
  });

  it('a subset asking another path gets its own check; each destination obeys its own check\'s verdict', async () => {
    const backends = await Promise.all([backend(), backend(), backend()]);
    const [, b2, b3] = backends as [Backend, Backend, Backend];
    b3.checkStatus.set('/ready', 503); // ready fails on b3, healthz passes everywhere
    const ready = `{ healthCheck: { path: /ready, interval: ${CHECK_INTERVAL_MS}ms, timeout: ${CHECK_INTERVAL_MS}ms, healthyThreshold: 1, unhealthyThreshold: 1 } }`;
    const { traffic, state, destination: whole } = build(subsetsYaml(backends.map((b) => b.port), CHECK, ready), { healthChecks: true });
    expect(state.healthChecks.runningCount).toBe(5); // /healthz on all three, /ready on the two v2 endpoints
    const v2 = traffic.destination(whole.cluster, 'v2')!;
    await waitUntil('b3 out of v2', () => v2.status?.().endpoints[1]?.healthy === false);
    await waitUntil('four /healthz checks everywhere', () => backends.every((b) => b.checkPaths.filter((p) => p === '/healthz').length >= 4));
    expect(picks(v2, 20)).toEqual(new Set([b2.port]));
    expect(picks(whole, 30)).toEqual(new Set(backends.map((b) => b.port)));
    expect(whole.status?.().endpoints.every((e) => e.healthy)).toBe(true);
    expect(v2.status?.().endpoints[1]).toMatchObject({ healthy: false, lastCheckFailure: 'answered 503' });
    // Once per interval per path: b1 only sees /healthz, b2 and b3 both paths.
    expect(new Set(backends[0]!.checkPaths)).toEqual(new Set(['/healthz']));
    for (const b of [b2, b3]) {
      expect(new Set(b.checkPaths)).toEqual(new Set(['/healthz', '/ready']));
      for (const path of ['/healthz', '/ready']) {
        const times = b.checkTimes.filter((_, i) => b.checkPaths[i] === path);
        expect(Math.min(...gapsOf(times))).toBeGreaterThanOrEqual(CHECK_INTERVAL_MS - GAP_SLACK_MS);
      }
    }
  });

  it('a configuration swap neither restarts nor doubles the checks, and keeps their verdicts', async () => {
    const backends = await Promise.all([backend(), backend(), backend()]);
    backends[1]!.checkStatus.set('/healthz', 500);
    const text = subsetsYaml(backends.map((b) => b.port), CHECK);
    const state = new TrafficState();
    const first = build(text, { healthChecks: true, state });
    await waitUntil('b2 unhealthy', () => first.destination.status?.().endpoints[1]?.healthy === false && backends.every((b) => b.healthChecks >= 2));
    const before = backends.map((b) => b.healthChecks);
    const second = build(text, { healthChecks: true, state, version: 'v2' });
    first.traffic.close();
    // The new version sees the verdict at once, before any check of its own.
    expect(second.destination.status?.().endpoints[1]?.healthy).toBe(false);
    expect(picks(second.destination, 30)).toEqual(new Set([backends[0]!.port, backends[2]!.port]));
    expect(state.healthChecks.runningCount).toBe(3);
    await waitUntil('four more checks everywhere', () => backends.every((b, i) => b.healthChecks >= before[i]! + 4));
    for (const b of backends) expect(Math.min(...gapsOf(b.checkTimes))).toBeGreaterThanOrEqual(CHECK_INTERVAL_MS - GAP_SLACK_MS);
    second.traffic.close();
    expect(state.healthChecks.runningCount).toBe(0);
  });
});

describe('panic threshold over real backends', () => {
  it('when checks fail on 3 of 4 endpoints, traffic goes to all four instead of 503; below 50 % only', async () => {
    const backends = await Promise.all([backend(), backend(), backend(), backend()]);
    for (const b of backends.slice(1)) b.checkStatus.set('/healthz', 500); // the apps answer; only their checks fail
    const { destination } = build(yaml(backends.map((b) => b.port), `  healthCheck: ${CHECK}`), { healthChecks: true });
    await waitUntil('panic', () => destination.status?.().panic === true);
    expect(destination.status?.().endpoints.map((e) => e.healthy)).toEqual([true, false, false, false]);
    const answers: number[] = [];
    let panicked = 0;
    for (let i = 0; i < 100; i++) {
      answers.push((await send(destination)).status);
      if (destination.lastPickPanicked === true) panicked++;
    }
    expect(answers.every((status) => status === 200)).toBe(true);
    expect(panicked).toBe(100);
    expect(backends.map((b) => b.requests)).toEqual([25, 25, 25, 25]);

    // One more passes its checks: 2 of 4 healthy is 50 %, not below it.
    backends[1]!.checkStatus.delete('/healthz');
    await waitUntil('the end of panic', () => destination.status?.().panic === false);
    for (let i = 0; i < 100; i++) await send(destination);
    expect(destination.lastPickPanicked).toBe(false);
    expect(backends.map((b) => b.requests)).toEqual([75, 75, 25, 25]);
  });
});

describe('balancing', () => {
  it('least request prefers the endpoint with fewer requests in flight (1,000 picks)', async () => {
    const busy = await backend(200);
    const idle = await backend(200);
    const { destination } = build(yaml([busy.port, idle.port], '  loadBalancer: { simple: leastRequest }'));
    busy.hold = true;
    const inFlight: Promise<unknown>[] = [];
    // Send to `busy` until it holds 5 real requests open.
    const busyEndpoint = destination.endpoints.find((e) => e.port === busy.port)!;
    for (let i = 0; i < 5; i++) inFlight.push(sendTo(destination, busyEndpoint));
    await waitUntil('five requests held', () => busy.requests === 5 && busyEndpoint.activeRequests === 5);
    const counts = new Map<number, number>();
    for (let i = 0; i < 1_000; i++) {
      const port = destination.pick(undefined, undefined)!.port;
      counts.set(port, (counts.get(port) ?? 0) + 1);
    }
    // Two endpoints: both draws always cover both, so the idle one always wins.
    expect(counts.get(idle.port)).toBe(1_000);
    busy.release();
    await Promise.all(inFlight);
    expect(busyEndpoint.activeRequests).toBe(0);
  });

  it('least request among three: the idle one wins two draws in three', async () => {
    const backends = await Promise.all([backend(), backend(), backend()]);
    const { destination } = build(yaml(backends.map((b) => b.port), '  loadBalancer: { simple: leastRequest }'));
    destination.endpoints[0]!.activeRequests = 4;
    destination.endpoints[2]!.activeRequests = 4;
    let idleWins = 0;
    for (let i = 0; i < 1_000; i++) if (destination.pick(undefined, undefined) === destination.endpoints[1]) idleWins++;
    expect(Math.abs(idleWins / 10 - 66.7)).toBeLessThan(5);
    destination.endpoints[0]!.activeRequests = 0;
    destination.endpoints[2]!.activeRequests = 0;
  });

  for (const lb of ['roundRobin', 'random', 'leastRequest'] as const) {
    it(`${lb}: endpoint weights 1:2:5 give shares within 3 points over 10,000 picks`, async () => {
      const backends = await Promise.all([backend(), backend(), backend()]);
      const policy = `  loadBalancer: { simple: ${lb} }\n  endpointWeights:\n    - { labels: { tier: big }, weight: 5 }\n    - { address: 127.0.0.1, port: ${backends[1]!.port}, weight: 2 }`;
      const { destination } = build(yaml(backends.map((b) => b.port), policy, (i) => (i === 2 ? '{ tier: big }' : '{}')));
      const counts = [0, 0, 0];
      for (let i = 0; i < 10_000; i++) {
        const port = destination.pick(undefined, undefined)!.port;
        counts[backends.findIndex((b) => b.port === port)]!++;
      }
      const expected = [12.5, 25, 62.5];
      for (let i = 0; i < 3; i++) expect(Math.abs(counts[i]! / 100 - expected[i]!)).toBeLessThan(3);
      // And the picks are real endpoints that answer.
      expect((await send(destination)).status).toBe(200);
    });
  }
});

async function sendTo(destination: Destination, endpoint: ClusterEndpoint): Promise<number> {
  destination.cluster.onRequestStart(endpoint);
  const status = await new Promise<number>((resolve, reject) => {
    http.get({ host: endpoint.address, port: endpoint.port, path: '/', agent: false }, (res) => {
      res.resume();
      res.on('end', () => resolve(res.statusCode ?? 0));
    }).on('error', reject);
  });
  destination.cluster.onRequestEnd(endpoint, undefined);
  return status;
}
