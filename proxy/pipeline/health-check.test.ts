import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { HealthCheck } from '../../src/config/types.js';
import { HEALTH_CHECK_HEADER, HealthCheckPool, type HealthChange, type HealthCheckTarget } from './health-check.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

interface Backend {
  port: number;
  /** What the next checks get: a status, or 'hang' (never answers). */
  mode: number | 'hang';
  seen: Array<{ path: string; headers: http.IncomingHttpHeaders }>;
  /** Check connections the server saw closed by the client while it held them ('hang'). */
  abandoned: number;
}

async function backend(): Promise<Backend> {
  const state: Backend = { port: 0, mode: 200, seen: [], abandoned: 0 };
  const server = http.createServer((req, res) => {
    state.seen.push({ path: req.url ?? '', headers: req.headers });
    if (state.mode === 'hang') {
      res.on('close', () => state.abandoned++);
      return;
    }
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

function target(port: number, authority = 'reviews.default:9080'): HealthCheckTarget {
  return { address: '127.0.0.1', port, key: `127.0.0.1:${port}`, authority };
}

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 5));
  }
}

const SPEC: HealthCheck = { path: '/healthz', intervalMs: 20, timeoutMs: 100, healthyThreshold: 2, unhealthyThreshold: 3 };

function pool() {
  const changes: HealthChange[] = [];
  const checks = new HealthCheckPool((change) => changes.push(change));
  closers.push(() => checks.close());
  return { checks, changes };
}

describe('active health checks', () => {
  it('starts healthy, goes unhealthy after unhealthyThreshold failures and back after healthyThreshold successes', async () => {
    const b = await backend();
    const { checks, changes } = pool();
    const verdict = checks.acquire(target(b.port), SPEC, () => 0);
    expect(verdict.healthy).toBe(true);
    await waitFor(() => b.seen.length >= 2, 'two checks');
    expect(b.seen[0]!.headers[HEALTH_CHECK_HEADER]).toBe('1');
    expect(b.seen[0]!.headers.host).toBe('reviews.default:9080');
    expect(b.seen[0]!.path).toBe('/healthz');
    expect(verdict.healthy).toBe(true);

    b.mode = 503;
    const before = b.seen.length;
    const generation = checks.generation;
    await waitFor(() => !verdict.healthy, 'unhealthy');
    // Exactly unhealthyThreshold failures were needed (the check in flight at the switch may have passed).
    expect(verdict.probe.consecutiveFailures).toBe(3);
    expect(b.seen.length - before).toBeGreaterThanOrEqual(3);
    expect(verdict.probe.lastCheckFailure).toBe('answered 503');
    expect(checks.generation).toBe(generation + 1);

    b.mode = 204;
    await waitFor(() => verdict.healthy, 'healthy again');
    expect(verdict.probe.consecutiveSuccesses).toBe(2);
    expect(checks.generation).toBe(generation + 2);
    expect(changes.map((c) => `${c.endpoint} ${c.healthy}`)).toEqual([`127.0.0.1:${b.port} false`, `127.0.0.1:${b.port} true`]);
  });

  it('a check that times out or cannot connect is a failure', async () => {
    const slow = await backend();
    slow.mode = 'hang';
    const closed = await backend();
    await closers.pop()!(); // its port is closed now
    const { checks } = pool();
    const spec = { ...SPEC, timeoutMs: 30, unhealthyThreshold: 2 };
    const hanging = checks.acquire(target(slow.port), spec, () => 0);
    const refused = checks.acquire(target(closed.port), spec, () => 0);
    await waitFor(() => !hanging.healthy && !refused.healthy, 'both unhealthy');
    expect(hanging.probe.lastCheckFailure).toContain('timed out after 30 ms');
    expect(refused.probe.lastCheckFailure).toContain('ECONNREFUSED');
  });

  it('one probe per endpoint and check: holders share it, thresholds keep a verdict each, another path or cluster is another probe', async () => {
    const b = await backend();
    const { checks } = pool();
    const t = target(b.port);
    const first = checks.acquire(t, SPEC, () => 0);
    const second = checks.acquire(t, SPEC, () => 0);
    const strict = checks.acquire(t, { ...SPEC, unhealthyThreshold: 1 }, () => 0);
    expect(second).toBe(first);
    expect(strict.probe).toBe(first.probe);
    expect(checks.size).toBe(1);
    const other = checks.acquire(t, { ...SPEC, path: '/ready' }, () => 0);
    const otherCluster = checks.acquire(target(b.port, 'reviews.default:9081'), SPEC, () => 0);
    expect(other.probe).not.toBe(first.probe);
    expect(otherCluster.probe).not.toBe(first.probe);
    expect(checks.size).toBe(3);

    // One failure: the strict verdict flips, the default one (3 needed) does not.
    b.mode = 500;
    const failures = first.probe.consecutiveFailures;
    await waitFor(() => first.probe.consecutiveFailures > failures, 'a failed check');
    expect(strict.healthy).toBe(false);
    expect(first.healthy).toBe(first.probe.consecutiveFailures < 3);

    // Releasing one of two holders keeps it running; the last one stops it; prune forgets it.
    checks.release(first);
    expect(checks.runningCount).toBe(3);
    checks.release(second);
    checks.release(strict);
    expect(checks.runningCount).toBe(2);
    checks.prune();
    expect(checks.size).toBe(2);
  });

  it('releasing the last holder stops the probe: no check after it, the one in flight is abandoned', async () => {
    // Two probes on two servers with the same interval. After `stopped` is
    // released, the other, still running, is the clock: its server seeing
    // five more checks means at least five intervals went by, in which the
    // stopped probe would have checked again. No fixed sleep.
    const a = await backend();
    const clock = await backend();
    const { checks } = pool();
    // A long timeout: the held check ends only by the release.
    const stopped = checks.acquire(target(a.port), { ...SPEC, timeoutMs: 5_000 }, () => 0);
    checks.acquire(target(clock.port), SPEC, () => 0);
    await waitFor(() => a.seen.length >= 2, 'checks on a');
    a.mode = 'hang'; // the next check stays in flight until the probe stops
    const held = a.seen.length + 1;
    await waitFor(() => a.seen.length === held, 'a check held in flight');
    checks.release(stopped);
    await waitFor(() => a.abandoned === 1, 'the check in flight to be abandoned');
    const ticks = clock.seen.length;
    await waitFor(() => clock.seen.length >= ticks + 5, 'five more checks on the other probe');
    expect(a.seen.length).toBe(held);
    expect(stopped.probe.completed).toBe(held - 1); // the abandoned one never counted
    expect(stopped.probe.running).toBe(false);
  });

  it('re-acquiring a stopped probe restarts it with its history', async () => {
    const b = await backend();
    b.mode = 500;
    const { checks } = pool();
    const verdict = checks.acquire(target(b.port), { ...SPEC, unhealthyThreshold: 1 }, () => 0);
    await waitFor(() => !verdict.healthy, 'unhealthy');
    checks.release(verdict);
    // A new version acquiring after the old one released: same verdict, still unhealthy, checking again.
    const again = checks.acquire(target(b.port), { ...SPEC, unhealthyThreshold: 1 }, () => 0);
    expect(again).toBe(verdict);
    expect(again.healthy).toBe(false);
    // A new threshold pair on a probe with a failing history starts unhealthy when the history says so.
    const lenient = checks.acquire(target(b.port), { ...SPEC, unhealthyThreshold: 1, healthyThreshold: 5 }, () => 0);
    expect(lenient.healthy).toBe(false);
    b.mode = 200;
    await waitFor(() => again.healthy, 'healthy after two successes');
    expect(lenient.healthy).toBe(again.probe.consecutiveSuccesses >= 5);
  });
});
