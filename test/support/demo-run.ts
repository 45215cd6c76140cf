/**
 * `tracemesh demo … --no-ui` as a child process, for the tests that run the
 * whole demo (embedded and --transparent): the CLI compiled into a build dir,
 * its output collected, the collector's query API read while the last phase
 * runs, and the checks both runs share on the summary, the stored spans and
 * what is left once it exited.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { expect } from 'vitest';
import type { DemoState } from '../../src/demo/state-file.js';
import { DEMO_EDGES, WORKLOADS } from '../../src/demo/topology.js';

export interface DemoExit {
  readonly code: number | null;
  readonly signal: string | null;
}

export interface DemoEdge {
  readonly client: string;
  readonly server: string;
  readonly requests: number;
  readonly errors: number;
}

/** How long after the last phase ("healed") begins the aggregates are read: every fault has been played, the collector still runs. */
const READ_AFTER_HEALED_MS = 4_000;

/** A running `tracemesh demo`; `output` is its stdout and stderr as they came. */
export class DemoCliRun {
  readonly child: ChildProcess;
  output = '';
  queryApi = '';
  private reading: Promise<void> | undefined;
  private readFailure: unknown;
  private readonly exited: Promise<DemoExit>;

  /** Starts `node <buildDir>/src/cli/main.js demo <args>`; `whileHealed(queryApi)` runs once, during the last phase. */
  constructor(buildDir: string, args: readonly string[], envPath: string, whileHealed: (queryApi: string) => Promise<void>) {
    const child = spawn(process.execPath, [path.join(buildDir, 'src/cli/main.js'), 'demo', ...args], {
      env: { PATH: process.env['PATH'] ?? envPath, HOME: process.env['HOME'] ?? tmpdir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    this.child = child;
    child.stderr?.on('data', (chunk: Buffer) => (this.output += chunk.toString('utf8')));
    this.exited = new Promise<DemoExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
    createInterface({ input: child.stdout! }).on('line', (line) => {
      this.output += `${line}\n`;
      const api = /^collector ready: query API (http:\/\/\S+),/.exec(line);
      if (api !== null) this.queryApi = api[1] as string;
      if (/ s: phase healed:/.test(line) && this.reading === undefined) {
        this.reading = new Promise((resolve) => setTimeout(resolve, READ_AFTER_HEALED_MS))
          .then(() => whileHealed(this.queryApi))
          .catch((err: unknown) => {
            this.readFailure = err;
          });
      }
    });
  }

  get pid(): number {
    return this.child.pid ?? 0;
  }

  /** Resolves once the demo has exited (SIGTERMed after `deadlineMs`) and the reading is over; a failed reading is noted in `output`. */
  async finished(deadlineMs: number): Promise<DemoExit> {
    const timer = setTimeout(() => this.child.kill('SIGTERM'), deadlineMs);
    const exit = await this.exited;
    clearTimeout(timer);
    await this.reading;
    if (this.readFailure !== undefined) this.output += `\n(test) reading the aggregates failed: ${String(this.readFailure)}\n`;
    return exit;
  }

  /** SIGKILL, if it still runs. */
  kill(): void {
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
  }
}

/** GET `pathAndQuery` on the collector's query API; a non-200 answer throws with its body. */
export async function queryJson<T>(queryApi: string, pathAndQuery: string): Promise<T> {
  const response = await fetch(`${queryApi}${pathAndQuery}`, { signal: AbortSignal.timeout(10_000) });
  if (response.status !== 200) throw new Error(`${pathAndQuery}: HTTP ${response.status}: ${await response.text()}`);
  return (await response.json()) as T;
}

/** The services with spans (sorted) and the edges of the last 10 minutes. */
export async function readServicesAndEdges(queryApi: string): Promise<{ services: string[]; edges: DemoEdge[] }> {
  const services = await queryJson<{ services: Array<{ name: string }> }>(queryApi, '/api/v1/services');
  const graph = await queryJson<{ edges: DemoEdge[] }>(queryApi, '/api/v1/graph?since=10m');
  return { services: services.services.map((s) => s.name).sort(), edges: graph.edges };
}

export function alive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Processes whose command line mentions `text`, other than this one. */
export function processesMentioning(text: string): string[] {
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

export function readDemoState(dataDir: string): DemoState {
  return JSON.parse(readFileSync(path.join(dataDir, 'demo/state.json'), 'utf8')) as DemoState;
}

/** Belt and braces when a test failed: SIGKILLs the process group of every child in the demo's state file that still runs. */
export function killDemoChildren(dataDir: string): void {
  let state: DemoState;
  try {
    state = readDemoState(dataDir);
  } catch {
    return; // no state file
  }
  for (const child of state.children) if (alive(child.pid)) process.kill(-child.pid, 'SIGKILL');
}

/** Exit 0 and the summary of a 20 req/s, 30 s run: requests sent, spans stored, reviews-v3's errors and none of v1's. */
export function expectDemoSummary(exit: DemoExit | undefined, output: string): void {
  expect(exit, output).toEqual({ code: 0, signal: null });
  const sent = Number(/requests sent: (\d+)/.exec(output)?.[1]);
  const spans = Number(/spans stored: (\d+)\n/.exec(output)?.[1]);
  // The generator sends exactly the requests due within the duration (fewer only if it had to skip).
  expect(sent, output).toBeGreaterThanOrEqual(550);
  expect(sent, output).toBeLessThanOrEqual(600);
  expect(spans, output).toBeGreaterThan(sent * 10);
  expect(Number(/ reviews-v3\s+(\d+) of/.exec(output)?.[1]), output).toBeGreaterThan(0);
  expect(Number(/ reviews-v1\s+(\d+) of/.exec(output)?.[1]), output).toBe(0);
}

/** Spans of every workload (service and name) and more than 100 requests on every edge of the application. */
export function expectEveryServiceAndEdge(readings: { services?: string[]; edges?: DemoEdge[] }, output: string): void {
  expect(readings.services, output).toBeDefined();
  const names = new Set(WORKLOADS.flatMap((w) => [w.service, w.name]));
  expect(readings.services).toEqual(expect.arrayContaining([...names]));
  for (const [client, server] of DEMO_EDGES) {
    const edge = readings.edges?.find((e) => e.client === client && e.server === server);
    expect(edge, `edge ${client} → ${server} in ${JSON.stringify(readings.edges)}`).toBeDefined();
    expect(edge!.requests).toBeGreaterThan(100);
  }
}

/** The run is over in its state file, and none of its processes (collector, control plane, an app and a sidecar per workload) runs. */
export function expectDemoStopped(dataDir: string, buildDir: string): void {
  const state = readDemoState(dataDir);
  expect(state.running).toBe(false);
  expect(state.children).toHaveLength(2 + WORKLOADS.length * 2);
  expect(state.children.filter((c) => alive(c.pid))).toEqual([]);
  expect(processesMentioning(buildDir)).toEqual([]);
}
