/**
 * `npm run bench:control-plane [-- --proxies 100,1000 --applies 20 --stores directory,etcd --workers 4 --cpu-prof]`:
 * the control-plane benchmark of issue 5.
 *
 * One control plane in a process of its own (control-plane-process.ts;
 * pinned to core 1 when taskset and two cores are there), and N simulated
 * proxies (sim-proxy.ts: registration, NDJSON stream, ACK POSTs) spread
 * over --workers processes (sim-worker.ts, each its own event loop; on
 * core 0 with this process and etcd when used). Before measuring: 50 Services the
 * simulated proxies register into (so every snapshot carries N endpoints),
 * every proxy ACKing, and 2 applies not measured. Then each apply is a
 * POST /api/v1/config (what `tracemesh apply` sends) changing one Service,
 * timed from just before the POST to the last proxy's ACK being answered.
 * CPU: process.cpuUsage() of the control-plane process over the measured
 * applies; RSS: its memoryUsage().rss after them.
 * Results: bench/results/control-plane.md.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { findExecutable } from '../proxy/tools.js';
import { etcdAvailable, startBenchEtcd, type EtcdServer } from './etcd.js';
import type { ChildMessage, ParentMessage } from './messages.js';
import { renderReport, type Machine, type RunResult } from './report.js';
import { SimulatedProxyWorkers } from './sim-workers.js';
import { quantiles } from './stats.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ROOT = path.resolve(HERE, '..', '..', '..');
const CHILD = path.join(HERE, 'control-plane-process.js');
const RESULTS = path.join(ROOT, 'bench', 'results', 'control-plane.md');
const PROFILE_DIR = path.join(ROOT, 'bench', 'tmp');
const SERVICES = 50;
const WARMUP_APPLIES = 2;
const APPLY_DEADLINE_MS = 30_000;
const CONNECT_BATCH = 50;

type StoreKind = 'directory' | 'etcd';

interface Options {
  readonly proxies: number[];
  readonly applies: number;
  readonly stores: StoreKind[];
  readonly cpuProf: boolean;
  readonly workers: number;
}

function parseOptions(argv: readonly string[]): Options {
  let proxies = [100, 1000];
  let applies = 20;
  let stores: StoreKind[] = etcdAvailable() ? ['directory', 'etcd'] : ['directory'];
  let cpuProf = false;
  let workers = 4;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i];
    const value = argv[i + 1];
    const need = (): string => {
      if (value === undefined) throw new Error(`${flag} needs a value`);
      i++;
      return value;
    };
    if (flag === '--proxies') proxies = need().split(',').map((n) => Number(n));
    else if (flag === '--applies') applies = Number(need());
    else if (flag === '--stores') stores = need().split(',') as StoreKind[];
    else if (flag === '--cpu-prof') cpuProf = true;
    else if (flag === '--workers') workers = Number(need());
    else throw new Error(`unknown option ${String(flag)} (--proxies N[,N] --applies N --stores directory[,etcd] --workers N --cpu-prof)`);
  }
  if (proxies.some((n) => !Number.isInteger(n) || n < 1 || n > 10_000)) throw new Error('--proxies: whole numbers from 1 to 10000, separated by commas');
  if (!Number.isInteger(applies) || applies < 1 || applies > 1000) throw new Error('--applies: a whole number from 1 to 1000');
  if (stores.some((s) => s !== 'directory' && s !== 'etcd')) throw new Error('--stores: directory and/or etcd');
  if (stores.includes('etcd') && !etcdAvailable()) throw new Error('--stores etcd: /usr/bin/etcd is missing (apt-get install etcd-server)');
  if (!Number.isInteger(workers) || workers < 1 || workers > 64) throw new Error('--workers: a whole number from 1 to 64');
  return { proxies, applies, stores, cpuProf, workers };
}

function machine(): Machine {
  const cpuinfo = readFileSync('/proc/cpuinfo', 'utf8');
  return {
    nproc: os.availableParallelism(),
    cpuModel: /^model name\s*:\s*(.+)$/m.exec(cpuinfo)?.[1]?.trim() ?? 'unknown',
    loadavg: readFileSync('/proc/loadavg', 'utf8').trim(),
    loadavgEnd: '',
    memoryGiB: os.totalmem() / 1024 ** 3,
    node: process.version,
    kernel: `${os.type()} ${os.release()}`,
  };
}

class ControlPlaneProcess {
  private readonly waiting: ((message: ChildMessage) => void)[] = [];
  private output = '';

  private constructor(
    private readonly child: ChildProcess,
    readonly port: number,
  ) {}

  static async start(storeArgs: string[], taskset: string | undefined, cpuProf: boolean): Promise<ControlPlaneProcess> {
    const nodeArgs = [...(cpuProf ? ['--cpu-prof', '--cpu-prof-dir', PROFILE_DIR] : []), CHILD, ...storeArgs];
    const child = taskset !== undefined ? spawn(taskset, ['-c', '1', process.execPath, ...nodeArgs], { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] }) : spawn(process.execPath, nodeArgs, { stdio: ['ignore', 'ignore', 'pipe', 'ipc'] });
    let output = '';
    child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString()).slice(-4000)));
    const port = await new Promise<number>((resolve, reject) => {
      child.once('exit', (code) => reject(new Error(`the control plane exited (${String(code)}) before it was ready:\n${output}`)));
      child.on('message', (message: ChildMessage) => {
        if (message.type === 'ready') resolve(message.port);
      });
    });
    const process_ = new ControlPlaneProcess(child, port);
    process_.output = output;
    child.on('message', (message: ChildMessage) => process_.waiting.shift()?.(message));
    return process_;
  }

  usage(): Promise<Extract<ChildMessage, { type: 'usage' }>> {
    return new Promise((resolve) => {
      this.waiting.push((message) => resolve(message as Extract<ChildMessage, { type: 'usage' }>));
      this.child.send({ type: 'usage' } satisfies ParentMessage);
    });
  }

  async stop(): Promise<void> {
    if (this.child.exitCode !== null || this.child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => this.child.once('exit', () => resolve()));
    this.child.send({ type: 'stop' } satisfies ParentMessage);
    const timer = setTimeout(() => this.child.kill('SIGKILL'), 10_000);
    await gone;
    clearTimeout(timer);
  }

  kill(): void {
    this.child.kill('SIGKILL');
  }
}

function serviceYaml(name: string, extraLabel = ''): string {
  return `apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: { name: ${name}, namespace: bench${extraLabel === '' ? '' : `, labels: { round: "${extraLabel}" }`} }\nspec:\n  ports: [{ name: http, port: 8080, protocol: http }]\n`;
}

async function apply(port: number, text: string): Promise<void> {
  const res = await fetch(`http://127.0.0.1:${port}/api/v1/config`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ sources: [{ file: 'bench.yaml', text }] }) });
  if (!res.ok) throw new Error(`apply answered ${res.status}: ${await res.text()}`);
}

/** Every proxy ACKing the control plane's version ≠ `previous`: resolves with each proxy's ACK time. */
class Round {
  readonly ackTimes: number[] = [];
  private readonly done = new Set<number>();
  private finish: (() => void) | undefined;
  readonly finished: Promise<void>;

  constructor(
    private readonly previous: ReadonlySet<string>,
    private readonly total: number,
  ) {
    this.finished = new Promise((resolve) => (this.finish = resolve));
  }

  ack(index: number, version: string, atMs: number): void {
    if (this.previous.has(version) || this.done.has(index)) return;
    this.done.add(index);
    this.ackTimes.push(atMs);
    if (this.done.size === this.total) this.finish?.();
  }

  get count(): number {
    return this.done.size;
  }
}

async function runOne(store: StoreKind, count: number, options: Options, taskset: string | undefined, etcd: EtcdServer | undefined, log: (line: string) => void): Promise<RunResult> {
  const scratch = mkdtempSync(path.join(os.tmpdir(), 'tracemesh-bench-cp-'));
  const storeArgs = store === 'directory' ? ['dir', path.join(scratch, 'config')] : ['etcd', etcd!.url, `/bench-${process.pid}-${count}/config/`];
  const cp = await ControlPlaneProcess.start(storeArgs, taskset, options.cpuProf);
  const seen = new Set<string>();
  let round: Round | undefined;
  const sims = new SimulatedProxyWorkers(count, options.workers, taskset, taskset === undefined ? undefined : '0', (index, version, at) => round?.ack(index, version, at));
  try {
    let services = '';
    for (let i = 0; i < SERVICES; i++) services += `${i === 0 ? '' : '---\n'}${serviceYaml(`sim-${i}`)}`;
    await apply(cp.port, `${services}---\n${serviceYaml('knob', 'setup')}`);
    await sims.connect(cp.port, CONNECT_BATCH);
    log(`${store}, ${count} proxies: connected (${Math.min(options.workers, count)} worker processes)`);
    const rounds: number[] = [];
    const perProxy: number[] = [];
    let usageBefore = await cp.usage();
    let windowStart = performance.now();
    for (let i = 0; i < WARMUP_APPLIES + options.applies; i++) {
      if (i === WARMUP_APPLIES) {
        usageBefore = await cp.usage();
        windowStart = performance.now();
      }
      // Every version any proxy holds now is "before": the round ends at the first newer one each proxy ACKs.
      for (const version of sims.lastVersion) seen.add(version);
      round = new Round(seen, count);
      const started = performance.timeOrigin + performance.now();
      await apply(cp.port, serviceYaml('knob', `round-${i}`));
      const timeout = new Promise<'timeout'>((resolve) => setTimeout(() => resolve('timeout'), APPLY_DEADLINE_MS).unref());
      if ((await Promise.race([round.finished, timeout])) === 'timeout') {
        const problems = await sims.problems();
        throw new Error(`apply ${i}: only ${round.count} of ${count} proxies ACKed within ${APPLY_DEADLINE_MS} ms ${problems.join('; ')}`);
      }
      if (i >= WARMUP_APPLIES) {
        rounds.push(Math.max(...round.ackTimes) - started);
        for (const at of round.ackTimes) perProxy.push(at - started);
      }
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    const wallMs = performance.now() - windowStart;
    const usageAfter = await cp.usage();
    const cpuMs = (usageAfter.userMicros - usageBefore.userMicros + usageAfter.systemMicros - usageBefore.systemMicros) / 1000;
    const result: RunResult = { store, proxies: count, applies: options.applies, allAcked: quantiles(rounds), perProxy: quantiles(perProxy), cpuMsPerApply: cpuMs / options.applies, cpuShare: cpuMs / wallMs, rssBytes: usageAfter.rssBytes };
    log(`${store}, ${count} proxies: all ACKed p50 ${result.allAcked.p50.toFixed(1)} ms, p99 ${result.allAcked.p99.toFixed(1)} ms, max ${result.allAcked.max.toFixed(1)} ms; CPU ${result.cpuMsPerApply.toFixed(1)} ms/apply; RSS ${(result.rssBytes / 2 ** 20).toFixed(0)} MiB`);
    return result;
  } finally {
    await sims.close();
    await cp.stop().catch(() => cp.kill());
    rmSync(scratch, { recursive: true, force: true });
  }
}

async function main(): Promise<void> {
  const options = parseOptions(process.argv.slice(2));
  const started = new Date();
  const host = machine();
  const tasksetPath = findExecutable('taskset');
  const taskset = tasksetPath !== undefined && host.nproc >= 2 ? tasksetPath : undefined;
  if (taskset !== undefined) execPin(taskset);
  if (options.cpuProf) mkdirSync(PROFILE_DIR, { recursive: true });
  const log = (line: string): void => void process.stdout.write(`${line}\n`);
  const results: RunResult[] = [];
  let etcd: EtcdServer | undefined;
  const cleanup = (): void => void etcd?.stop();
  process.once('SIGINT', () => {
    cleanup();
    process.exit(130);
  });
  try {
    if (options.stores.includes('etcd')) etcd = await startBenchEtcd(taskset, '0');
    for (const store of options.stores) {
      for (const count of options.proxies) results.push(await runOne(store, count, options, taskset, etcd, log));
    }
  } finally {
    await etcd?.stop();
  }
  const command = `npm run bench:control-plane${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}`;
  const ended = { ...host, loadavgEnd: readFileSync('/proc/loadavg', 'utf8').trim() };
  writeFileSync(RESULTS, renderReport({ started, finished: new Date(), machine: ended, command, pinned: taskset !== undefined, results, cpuProf: options.cpuProf ? PROFILE_DIR : undefined, workers: options.workers }));
  log(`written: ${path.relative(ROOT, RESULTS)}`);
}

/** This process (the simulated proxies) on core 0; the control plane goes to core 1. */
function execPin(taskset: string): void {
  spawn(taskset, ['-p', '-c', '0', String(process.pid)], { stdio: 'ignore' });
}

main().catch((err: unknown) => {
  process.stderr.write(`bench:control-plane: ${err instanceof Error ? err.message : String(err)}\n`);
  process.exit(1);
});
