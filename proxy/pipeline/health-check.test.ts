import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheck } from '../../src/config/types.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { HEALTH_CHECK_HEADER, startHealthChecks, type HealthChecker } from './health-check.js';
import { DestinationTrafficState } from './traffic-state.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

interface Backend {
  port: number;
  /** What the next checks get: a status, or 'hang' (never answers). */
  mode: number | 'hang';
  seen: http.IncomingHttpHeaders[];
}

async function backend(): Promise<Backend> {
  const state: Backend = { port: 0, mode: 200, seen: [] };
  const server = http.createServer((req, res) => {
    state.seen.push(req.headers);
    if (state.mode === 'hang') return;
    res.writeHead(state.mode).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  state.port = (server.address() as AddressInfo).port;
  return state;
}

function endpoint(port: number): ClusterEndpoint {
  return { address: '127.0.0.1', port, labels: {}, version: '', key: `127.0.0.1:${port}`, activeRequests: 0, totalRequests: 0, failedRequests: 0, consecutiveFailures: 0, lastFailure: '' };
}

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const SPEC: HealthCheck = { path: '/healthz', intervalMs: 20, timeoutMs: 100, healthyThreshold: 2, unhealthyThreshold: 3 };

function check(ports: number[], spec: HealthCheck = SPEC) {
  const shared = new DestinationTrafficState();
  const endpoints = ports.map(endpoint);
  const states = endpoints.map((e) => shared.endpoint(e.key));
  const flips: string[] = [];
  const checker: HealthChecker = startHealthChecks({ spec, endpoints, states, shared, authority: 'reviews.default:9080', random: () => 0, onChange: (e, healthy) => flips.push(`${e.port} ${healthy ? 'healthy' : 'unhealthy'}`) });
  closers.push(() => checker.close());
  return { shared, states, flips, checker };
}

describe('active health checks', () => {
  it('starts healthy, goes unhealthy after unhealthyThreshold failures and back after healthyThreshold successes', async () => {
    const b = await backend();
    const { states, flips, shared } = check([b.port]);
    const state = states[0]!;
    expect(state.healthy).toBe(true);
    await waitFor(() => b.seen.length >= 2, 'two checks');
    expect(b.seen[0]![HEALTH_CHECK_HEADER]).toBe('1');
    expect(b.seen[0]!.host).toBe('reviews.default:9080');
    expect(state.healthy).toBe(true);

    b.mode = 503;
    const before = b.seen.length;
    await waitFor(() => !state.healthy, 'unhealthy');
    // Exactly unhealthyThreshold failures were needed (the check in flight at the switch may have passed).
    expect(state.checkFailures).toBe(3);
    expect(b.seen.length - before).toBeGreaterThanOrEqual(3);
    expect(state.lastCheckFailure).toBe('answered 503');
    const generation = shared.generation;

    b.mode = 204;
    await waitFor(() => state.healthy, 'healthy again');
    expect(state.checkSuccesses).toBe(2);
    expect(shared.generation).toBe(generation + 1);
    expect(flips).toEqual([`${b.port} unhealthy`, `${b.port} healthy`]);
  });

  it('a check that times out or cannot connect is a failure', async () => {
    const slow = await backend();
    slow.mode = 'hang';
    const closed = await backend();
    await closers.pop()!(); // its port is closed now
    const { states } = check([slow.port, closed.port], { ...SPEC, timeoutMs: 30, unhealthyThreshold: 2 });
    await waitFor(() => !states[0]!.healthy && !states[1]!.healthy, 'both unhealthy');
    expect(states[0]!.lastCheckFailure).toContain('timed out after 30 ms');
    expect(states[1]!.lastCheckFailure).toContain('ECONNREFUSED');
  });

  it('close() stops checking', async () => {
    const b = await backend();
    const { checker } = check([b.port]);
    await waitFor(() => b.seen.length >= 1, 'a check');
    checker.close();
    const count = b.seen.length;
    await new Promise((resolve) => setTimeout(resolve, 100)); // five intervals: none may run
    expect(b.seen.length).toBe(count);
  });
});
