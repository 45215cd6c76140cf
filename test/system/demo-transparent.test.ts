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
import { execFileSync, spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';
import type { DemoState } from '../../src/demo/state-file.js';
import { DEMO_EDGES, WORKLOADS } from '../../src/demo/topology.js';
import { TRANSPARENT_BASE } from '../../src/demo/transparent-stack.js';
import { listNamespaces } from '../../src/netns/namespaces.js';
import { assertRoot } from '../../src/netns/root-check.js';

const DURATION_SECONDS = 30;
const RUN_DEADLINE_MS = 300_000;

let buildDir = '';
let dataDir = '';
let demo: ChildProcess | undefined;
let demoPid = 0;
let output = '';
let queryApi = '';
let exit: { code: number | null; signal: string | null } | undefined;
const readings: { services?: string[]; edges?: Array<{ client: string; server: string; requests: number; errors: number }> } = {};

const prefix = (): string => `${TRANSPARENT_BASE}${demoPid}`;

async function getJson<T>(pathAndQuery: string): Promise<T> {
  const response = await fetch(`${queryApi}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`${pathAndQuery}: HTTP ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

async function readAggregates(): Promise<void> {
  const services = await getJson<{ services: Array<{ name: string }> }>('/api/v1/services');
  readings.services = services.services.map((s) => s.name).sort();
  readings.edges = (await getJson<{ edges: Array<{ client: string; server: string; requests: number; errors: number }> }>('/api/v1/graph?since=10m')).edges;
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `text`, other than this one. */
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
  assertRoot();
  buildDir = compileTracemesh();
  dataDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-demo-transparent-data-'));
  const child = spawn(
    process.execPath,
    [path.join(buildDir, 'src/cli/main.js'), 'demo', '--transparent', '--duration', String(DURATION_SECONDS), '--no-ui', '--data-dir', dataDir, '--rate', '20'],
    { env: { PATH: process.env['PATH'] ?? '/usr/sbin:/usr/bin:/sbin:/bin', HOME: process.env['HOME'] ?? tmpdir() }, stdio: ['ignore', 'pipe', 'pipe'] },
  );
  demo = child;
  demoPid = child.pid ?? 0;
  child.stderr?.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  let readFailure: unknown;
  let reading: Promise<void> | undefined;
  createInterface({ input: child.stdout! }).on('line', (line) => {
    output += `${line}\n`;
    const api = /^collector ready: query API (http:\/\/\S+),/.exec(line);
    if (api !== null) queryApi = api[1] as string;
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
  if (demo !== undefined && demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
  // Belt and braces when a test failed: the demo's pod processes die with it (parent-death signal); its namespaces are removed here.
  try {
    const state = JSON.parse(readFileSync(path.join(dataDir, 'demo/state.json'), 'utf8')) as DemoState;
    for (const child of state.children) if (alive(child.pid)) process.kill(-child.pid, 'SIGKILL');
  } catch {
    // no state file
  }
  if (demoPid > 0) {
    for (const name of listNamespaces().filter((n) => n.startsWith(`${prefix()}-`))) execFileSync('ip', ['netns', 'delete', name]);
    rmSync(path.join(tmpdir(), `tracemesh-demo-${demoPid}-proxies`), { recursive: true, force: true });
  }
  if (dataDir !== '') rmSync(dataDir, { recursive: true, force: true });
  if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
});

describe(`tracemesh demo --transparent --duration ${DURATION_SECONDS} --no-ui`, () => {
  it('exits 0 after the run with a summary: requests sent, spans stored, errors by service', () => {
    expect(exit, output).toEqual({ code: 0, signal: null });
    const sent = Number(/requests sent: (\d+)/.exec(output)?.[1]);
    const spans = Number(/spans stored: (\d+)\n/.exec(output)?.[1]);
    expect(sent, output).toBeGreaterThanOrEqual(550);
    expect(sent, output).toBeLessThanOrEqual(600);
    expect(spans, output).toBeGreaterThan(sent * 10);
    expect(Number(/ reviews-v3\s+(\d+) of/.exec(output)?.[1]), output).toBeGreaterThan(0);
    expect(Number(/ reviews-v1\s+(\d+) of/.exec(output)?.[1]), output).toBe(0);
  });

  it('ran the pods in namespaces of its own, with REDIRECT capture and sidecars as uid 1337', () => {
    expect(output).toContain(`namespaces ${prefix()}-*`);
    for (const workload of WORKLOADS) expect(output, workload.name).toMatch(new RegExp(`^${workload.name}: pod 10\\.77\\.\\d+\\.\\d+, app :${workload.port}, sidecar \\(uid 1337\\)`, 'm'));
  });

  it('stored spans of every service and every edge of the application (the apps call by name; only capture makes these edges)', () => {
    expect(readings.services, output).toBeDefined();
    const names = new Set(WORKLOADS.flatMap((w) => [w.service, w.name]));
    expect(readings.services).toEqual(expect.arrayContaining([...names]));
    expect(readings.services).not.toContain('passthrough');
    for (const [client, server] of DEMO_EDGES) {
      const edge = readings.edges?.find((e) => e.client === client && e.server === server);
      expect(edge, `edge ${client} → ${server} in ${JSON.stringify(readings.edges)}`).toBeDefined();
      expect(edge!.requests).toBeGreaterThan(100);
    }
  });

  it('leaves nothing behind: no namespace, /etc/netns dir, veth, process or sidecar state dir of the run', () => {
    expect(demoPid).toBeGreaterThan(0);
    expect(listNamespaces().filter((name) => name.startsWith(`${prefix()}-`))).toEqual([]);
    expect(existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((name) => name.startsWith(`${prefix()}-`)) : []).toEqual([]);
    // The veths were made inside the run's switch namespace and never appear in the host's; none may be there now.
    const links = execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' });
    expect(links.split('\n').filter((line) => /^\d+: vp\d+[@:]/.test(line))).toEqual([]);
    const state = JSON.parse(readFileSync(path.join(dataDir, 'demo/state.json'), 'utf8')) as DemoState;
    expect(state.running).toBe(false);
    // collector, control plane, and an app and a sidecar per workload.
    expect(state.children).toHaveLength(2 + WORKLOADS.length * 2);
    expect(state.children.filter((c) => alive(c.pid))).toEqual([]);
    expect(processesMentioning(buildDir)).toEqual([]);
    expect(processesMentioning(`${prefix()}-`)).toEqual([]);
    expect(existsSync(path.join(tmpdir(), `tracemesh-demo-${demoPid}-proxies`))).toBe(false);
  });
});
