/**
 * `tracemesh demo --duration 30 --no-ui` as a child process, the way CI (and
 * a person) runs it: the CLI and apps compiled from the sources into a temp
 * dir, data in another temp dir. While the scenario's last phase runs, the
 * collector's query API (its URL comes from the demo's output) must show
 * spans of every service, every edge of the application, reviews-v3's
 * injected failures and ratings' slowdown; then the demo must exit 0 with
 * its summary, and every process it started (pids from its state file, and
 * anything running from the build dir) must be gone.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';
import type { DemoState } from '../../src/demo/state-file.js';
import { DEMO_EDGES, REVIEWS_VERSIONS, WORKLOADS } from '../../src/demo/topology.js';

const DURATION_SECONDS = 30;
const RUN_DEADLINE_MS = 240_000;

let buildDir = '';
let dataDir = '';
let demo: ChildProcess | undefined;
let output = '';
let queryApi = '';
let exit: { code: number | null; signal: string | null } | undefined;
const readings: { services?: string[]; edges?: Array<{ client: string; server: string; requests: number; errors: number }>; red?: Record<string, RedPoint[]> } = {};

interface RedPoint {
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

async function getJson<T>(pathAndQuery: string): Promise<T> {
  const response = await fetch(`${queryApi}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`${pathAndQuery}: HTTP ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** Reads what the assertions need while the demo (and its collector) still runs. */
async function readAggregates(): Promise<void> {
  const services = await getJson<{ services: Array<{ name: string }> }>('/api/v1/services');
  readings.services = services.services.map((s) => s.name).sort();
  readings.edges = (await getJson<{ edges: Array<{ client: string; server: string; requests: number; errors: number }> }>('/api/v1/graph?since=10m')).edges;
  readings.red = {};
  for (const service of ['ratings', 'reviews-v1', 'reviews-v2', 'reviews-v3']) {
    readings.red[service] = (await getJson<{ series: RedPoint[] }>(`/api/v1/red?service=${service}&since=10m&step=60s`)).series;
  }
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `text` (the build dir), other than this one. */
function processesMentioning(text: string): string[] {
  const found: string[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry) || Number(entry) === process.pid) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').replace(/\0/g, ' ');
      if (cmdline.includes(text)) found.push(`${entry}: ${cmdline.slice(0, 200)}`);
    } catch {
      // exited meanwhile
    }
  }
  return found;
}

beforeAll(async () => {
  buildDir = compileTracemesh();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-demo-data-'));
  const child = spawn(
    process.execPath,
    [path.join(buildDir, 'src/cli/main.js'), 'demo', '--duration', String(DURATION_SECONDS), '--no-ui', '--data-dir', dataDir, '--rate', '20'],
    { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir() }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  demo = child;
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let readFailure: unknown;
  let reading: Promise<void> | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    output += `${line}\n`;
    const api = /^collector ready: query API (http:\/\/\S+),/.exec(line);
    if (api !== null) queryApi = api[1] as string;
    // The last phase has begun: every fault has been played and the collector still runs.
    if (/ s: phase healed:/.test(line) && reading === undefined) {
      reading = new Promise((resolve) => setTimeout(resolve, 4_000))
        .then(readAggregates)
        .catch((err: unknown) => {
          readFailure = err;
        });
    }
  });
  const timer = setTimeout(() => child.kill('SIGTERM'), RUN_DEADLINE_MS);
  exit = await exited;
  clearTimeout(timer);
  await reading;
  if (readFailure !== undefined) output += `\n(test) reading the aggregates failed: ${String(readFailure)}\n`;
}, RUN_DEADLINE_MS + 60_000);

afterAll(() => {
  if (demo !== undefined && demo.exitCode === null) demo.kill('SIGKILL');
  // Belt and braces: nothing of this run may outlive the test, even when it failed.
  try {
    const state = JSON.parse(readFileSync(path.join(dataDir, 'demo/state.json'), 'utf8')) as DemoState;
    for (const child of state.children) if (alive(child.pid)) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // no state file
  }
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
  if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
});

describe(`tracemesh demo --duration ${DURATION_SECONDS} --no-ui`, () => {
  it('exits 0 after the run with a summary: requests sent, spans stored, errors by service', () => {
    expect(exit, output).toEqual({ code: 0, signal: null });
    const sent = Number(/requests sent: (\d+)/.exec(output)?.[1]);
    const spans = Number(/spans stored: (\d+)\n/.exec(output)?.[1]);
    // 20 req/s for 30 s: the generator sends exactly the requests due within the duration (fewer only if it had to skip).
    expect(sent, output).toBeGreaterThanOrEqual(550);
    expect(sent, output).toBeLessThanOrEqual(600);
    expect(spans, output).toBeGreaterThan(sent * 10);
    expect(output).toMatch(/errors by service:\n(\s+\S+\s+\d+ of \d+\n)+/);
    expect(Number(/ reviews-v3\s+(\d+) of/.exec(output)?.[1]), output).toBeGreaterThan(0);
    expect(Number(/ reviews-v1\s+(\d+) of/.exec(output)?.[1]), output).toBe(0);
  });

  it('stored spans of every service and every edge of the application', () => {
    expect(readings.services, output).toBeDefined();
    const names = new Set(WORKLOADS.flatMap((w) => [w.service, w.name]));
    expect(readings.services).toEqual(expect.arrayContaining([...names]));
    for (const [client, server] of DEMO_EDGES) {
      const edge = readings.edges?.find((e) => e.client === client && e.server === server);
      expect(edge, `edge ${client} → ${server} in ${JSON.stringify(readings.edges)}`).toBeDefined();
      expect(edge!.requests).toBeGreaterThan(100);
    }
  });

  it("shows the scenario: reviews-v3's failures and ratings' slowdown in the aggregates", () => {
    const total = (service: string, field: 'requests' | 'errors'): number => (readings.red?.[service] ?? []).reduce((sum, p) => sum + p[field], 0);
    // Every version served. How many each gets depends on whether the proxies enforce the Route's 60/30/10
    // split and the outlier detection that ejects a failing v3 (both in examples/demo/traffic.yaml) yet.
    for (const version of REVIEWS_VERSIONS) expect(total(`reviews-${version}`, 'requests'), version).toBeGreaterThanOrEqual(5);
    // v3 failed every request for 40% of the run; v1 and v2 never.
    expect(total('reviews-v3', 'errors'), JSON.stringify(readings.red)).toBeGreaterThanOrEqual(3);
    expect(total('reviews-v1', 'errors')).toBe(0);
    expect(total('reviews-v2', 'errors')).toBe(0);
    const failing = readings.edges?.find((e) => e.client === 'catalog' && e.server === 'reviews');
    expect(failing!.errors).toBeGreaterThan(0);
    // ratings is sub-millisecond when healthy and 300 ms slower for a quarter of the run.
    const ratings = readings.red?.['ratings'] ?? [];
    expect(Math.max(...ratings.map((p) => p.p99Ms)), JSON.stringify(ratings)).toBeGreaterThanOrEqual(250);
    expect(Math.min(...ratings.filter((p) => p.requests > 0).map((p) => p.p50Ms)), JSON.stringify(ratings)).toBeLessThan(100);
  });

  it('leaves no process running: every pid in its state file has exited, nothing runs from the build dir', () => {
    const state = JSON.parse(readFileSync(path.join(dataDir, 'demo/state.json'), 'utf8')) as DemoState;
    expect(state.running).toBe(false);
    // collector, control plane, and an app and a sidecar per workload.
    expect(state.children).toHaveLength(2 + WORKLOADS.length * 2);
    expect(state.children.filter((c) => alive(c.pid))).toEqual([]);
    expect(processesMentioning(buildDir)).toEqual([]);
  });
});
