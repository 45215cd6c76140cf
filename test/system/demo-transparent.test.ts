/**
 * `tracemesh demo --transparent --duration 30 --no-ui` as root, as a child
 * process: the CLI and apps compiled from the sources into a temp dir, data
 * in another. While the last phase runs, the collector's query API (forwarded
 * out of the infra pod; its URL comes from the demo's output) must show
 * spans of every service and every edge: the apps call each other by name
 * with no proxy setting, so those edges exist only if iptables capture and
 * the transparent sidecars work. Then the demo must exit 0 with its summary,
 * and nothing of the run may be left: no namespace, /etc/netns dir, veth,
 * process or sidecar state dir.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdtempSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';
import { WORKLOADS } from '../../src/demo/topology.js';
import { TRANSPARENT_BASE } from '../../src/demo/transparent-stack.js';
import { listNamespaces } from '../../src/netns/namespaces.js';
import { assertRoot } from '../../src/netns/root-check.js';
import {
  DemoCliRun,
  expectDemoStopped,
  expectDemoSummary,
  expectEveryServiceAndEdge,
  killDemoChildren,
  processesMentioning,
  readServicesAndEdges,
  type DemoEdge,
  type DemoExit,
} from '../support/demo-run.js';

const DURATION_SECONDS = 30;
const RUN_DEADLINE_MS = 300_000;

let buildDir = '';
let dataDir = '';
let demo: DemoCliRun | undefined;
let demoPid = 0;
let exit: DemoExit | undefined;
const readings: { services?: string[]; edges?: DemoEdge[] } = {};

const prefix = (): string => `${TRANSPARENT_BASE}${demoPid}`;
const output = (): string => demo?.output ?? '';

beforeAll(async () => {
  assertRoot();
  buildDir = compileTracemesh();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-demo-transparent-data-'));
  const args = ['--transparent', '--duration', String(DURATION_SECONDS), '--no-ui', '--data-dir', dataDir, '--rate', '20'];
  demo = new DemoCliRun(buildDir, args, '/usr/sbin:/usr/bin:/sbin:/bin', async (queryApi) => {
    Object.assign(readings, await readServicesAndEdges(queryApi));
  });
  demoPid = demo.pid;
  exit = await demo.finished(RUN_DEADLINE_MS);
}, RUN_DEADLINE_MS + 60_000);

afterAll(() => {
  demo?.kill();
  // Belt and braces when a test failed: the demo's pod processes die with it (parent-death signal); its namespaces are removed here.
  if (dataDir !== '') killDemoChildren(dataDir);
  if (demoPid > 0) {
    for (const name of listNamespaces().filter((n) => n.startsWith(`${prefix()}-`))) execFileSync('ip', ['netns', 'delete', name]);
    rmSync(path.join(tmpdir(), `tracemesh-demo-${demoPid}-proxies`), { recursive: true, force: true });
  }
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
  if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
});

describe(`tracemesh demo --transparent --duration ${DURATION_SECONDS} --no-ui`, () => {
  it('exits 0 after the run with a summary: requests sent, spans stored, errors by service', () => {
    expectDemoSummary(exit, output());
  });

  it('ran the pods in namespaces of its own, with REDIRECT capture and sidecars as uid 1337', () => {
    expect(output()).toContain(`namespaces ${prefix()}-*`);
    for (const workload of WORKLOADS) expect(output(), workload.name).toMatch(new RegExp(`^${workload.name}: pod 10\\.77\\.\\d+\\.\\d+, app :${workload.port}, sidecar \\(uid 1337\\)`, 'm'));
  });

  it('stored spans of every service and every edge of the application (the apps call by name; only capture makes these edges)', () => {
    expectEveryServiceAndEdge(readings, output());
    expect(readings.services).not.toContain('passthrough');
  });

  it('leaves nothing behind: no namespace, /etc/netns dir, veth, process or sidecar state dir of the run', () => {
    expect(demoPid).toBeGreaterThan(0);
    expect(listNamespaces().filter((name) => name.startsWith(`${prefix()}-`))).toEqual([]);
    expect(existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((name) => name.startsWith(`${prefix()}-`)) : []).toEqual([]);
    // The veths were made inside the run's switch namespace and never appear in the host's; none may be there now.
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    expect(links.split('\n').filter((line) => /^\d+: vp\d+[@:]/.test(line))).toEqual([]);
    expectDemoStopped(dataDir, buildDir);
    expect(processesMentioning(`${prefix()}-`)).toEqual([]);
    expect(existsSync(path.join(tmpdir(), `tracemesh-demo-${demoPid}-proxies`))).toBe(false);
  });
});
