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
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';
import { REVIEWS_VERSIONS } from '../../src/demo/topology.js';
import {
  DemoCliRun,
  expectDemoStopped,
  expectDemoSummary,
  expectEveryServiceAndEdge,
  killDemoChildren,
  queryJson,
  readServicesAndEdges,
  type DemoEdge,
  type DemoExit,
} from '../support/demo-run.js';

const DURATION_SECONDS = 30;
const RUN_DEADLINE_MS = 240_000;

let buildDir = '';
let dataDir = '';
let demo: DemoCliRun | undefined;
let exit: DemoExit | undefined;
const readings: { services?: string[]; edges?: DemoEdge[]; red?: Record<string, RedPoint[]> } = {};

interface RedPoint {
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

/** Reads what the assertions need while the demo (and its collector) still runs. */
async function readAggregates(queryApi: string): Promise<void> {
  Object.assign(readings, await readServicesAndEdges(queryApi));
  readings.red = {};
  for (const service of ['ratings', 'reviews-v1', 'reviews-v2', 'reviews-v3']) {
    readings.red[service] = (await queryJson<{ series: RedPoint[] }>(queryApi, `/api/v1/red?service=${service}&since=10m&step=60s`)).series;
  }
}

const output = (): string => demo?.output ?? '';

beforeAll(async () => {
  buildDir = compileTracemesh();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-demo-data-'));
  demo = new DemoCliRun(buildDir, ['--duration', String(DURATION_SECONDS), '--no-ui', '--data-dir', dataDir, '--rate', '20'], '/usr/bin:/bin', readAggregates);
  exit = await demo.finished(RUN_DEADLINE_MS);
}, RUN_DEADLINE_MS + 60_000);

afterAll(() => {
  demo?.kill();
  // Belt and braces: nothing of this run may outlive the test, even when it failed.
  if (dataDir !== '') killDemoChildren(dataDir);
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
  if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
});

describe(`tracemesh demo --duration ${DURATION_SECONDS} --no-ui`, () => {
  it('exits 0 after the run with a summary: requests sent, spans stored, errors by service', () => {
    expectDemoSummary(exit, output());
    expect(output()).toMatch(/errors by service:\n(\s+\S+\s+\d+ of \d+\n)+/);
  });

  it('stored spans of every service and every edge of the application', () => {
    expectEveryServiceAndEdge(readings, output());
  });

  it("shows the scenario: reviews-v3's failures and ratings' slowdown in the aggregates", () => {
    const total = (service: string, field: 'requests' | 'errors'): number => (readings.red?.[service] ?? []).reduce((sum, p) => sum + p[field], 0);
    // Every version served, in the Route's 60/30/10 split (examples/demo/traffic.yaml). Outlier detection
    // ejects v3 while it fails, which moves part of its 10 % to v1 and v2 in their own 2:1 ratio.
    for (const version of REVIEWS_VERSIONS) expect(total(`reviews-${version}`, 'requests'), version).toBeGreaterThanOrEqual(5);
    const [v1, v2, v3] = REVIEWS_VERSIONS.map((version) => total(`reviews-${version}`, 'requests'));
    const shares = JSON.stringify({ v1, v2, v3 });
    expect(v1! / (v1! + v2!), shares).toBeGreaterThan(0.55);
    expect(v1! / (v1! + v2!), shares).toBeLessThan(0.78);
    expect(v3! / (v1! + v2! + v3!), shares).toBeLessThan(0.2);
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
    expectDemoStopped(dataDir, buildDir);
  });
});
