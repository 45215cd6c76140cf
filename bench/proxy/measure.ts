/**
 * One measured run: a warm-up (not measured), then the load through a
 * target while /proc watches the proxies, the load side and the machine.
 * Closed loop with wrk; constant rate with bench/proxy/constant-rate.ts in
 * its own process on the load core.
 */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Args } from './args.js';
import type { ConstantRateResult } from './constant-rate.js';
import type { Processes } from './processes.js';
import { UsageWindow } from './procstat.js';
import type { WatchedGroup, WindowUsage } from './procstat.js';
import type { LoadName, ScenarioResult } from './results.js';
import { targetKey, targetLabel } from './targets.js';
import type { RunningTarget, TargetSpec } from './targets.js';
import { runWrk } from './wrk.js';

const RATE_SCRIPT = path.join(path.dirname(fileURLToPath(import.meta.url)), 'constant-rate.js');
/** Everything but the proxies runs here. */
export const LOAD_CORE = 0;
/** Extra time past a constant-rate run's duration (its own drain is 5 s) before it is killed as hung. */
const RATE_GRACE_MS = 30_000;
const CLOSED_LOOP_CONNECTIONS: Readonly<Record<Exclude<LoadName, 'rate'>, number>> = { c1: 1, c50: 50 };

export interface LoadContext {
  processes: Processes;
  wrk: string;
  args: Args;
  /** Pids on the load core that live through every run: upstream and sink. */
  loadPids: number[];
}

/** A scenario that could not run: `error` says why, every figure is NaN or 0. */
export function failedScenario(spec: TargetSpec, load: LoadName, error: string | undefined): ScenarioResult {
  return {
    key: targetKey(spec),
    target: spec.name,
    tracing: spec.tracing,
    label: targetLabel(spec),
    load,
    error,
    requests: 0,
    seconds: Number.NaN,
    requestsPerSecond: Number.NaN,
    latencyUs: { p50: Number.NaN, p90: Number.NaN, p99: Number.NaN, p999: undefined, max: Number.NaN },
    proxies: [],
    loadSideCpuSeconds: Number.NaN,
    coreBusy: [],
    otherCpuSeconds: Number.NaN,
    interruptSeconds: Number.NaN,
    non2xx: 0,
    failed: 0,
    generatorLagP99Us: undefined,
    raw: undefined,
  };
}

async function runRate(ctx: LoadContext, target: RunningTarget, seconds: number, window: UsageWindow | undefined): Promise<ConstantRateResult> {
  const args = [
    RATE_SCRIPT,
    '--port',
    String(target.port),
    '--host-header',
    target.hostHeader,
    '--rate',
    String(ctx.args.rate),
    '--duration-ms',
    String(Math.round(seconds * 1000)),
    '--connections',
    String(ctx.args.rateConnections),
  ];
  const generator = ctx.processes.spawn('constant-rate generator', process.execPath, args, { core: LOAD_CORE });
  window?.watch({ name: 'generator', pids: [generator.pid] });
  const timer = setTimeout(() => generator.child.kill('SIGKILL'), seconds * 1000 + RATE_GRACE_MS);
  await generator.exit;
  clearTimeout(timer);
  const line = generator.tail.split('\n').find((l) => l.startsWith('{'));
  if (generator.exitCode !== 0 || line === undefined) {
    throw new Error(`constant-rate generator exited with ${generator.describeExit()}: ${generator.tail.trim().slice(-2000)}`);
  }
  return JSON.parse(line) as ConstantRateResult;
}

function scenarioFromUsage(target: RunningTarget, usage: WindowUsage, requests: number): Pick<ScenarioResult, 'proxies' | 'loadSideCpuSeconds' | 'coreBusy' | 'otherCpuSeconds' | 'interruptSeconds'> {
  const proxyNames = new Set(target.proxies.map((p) => p.name));
  const proxies = usage.groups
    .filter((g) => proxyNames.has(g.name))
    .map((g) => ({
      name: g.name,
      cpuSeconds: g.cpuSeconds,
      cpuUsPerRequest: requests > 0 ? (g.cpuSeconds * 1e6) / requests : Number.NaN,
      peakRssBytes: g.peakRssBytes,
      coreShare: g.cpuSeconds / usage.wallSeconds,
      processes: g.processes,
    }));
  const loadSideCpuSeconds = usage.groups.filter((g) => !proxyNames.has(g.name)).reduce((a, g) => a + g.cpuSeconds, 0);
  return {
    proxies,
    loadSideCpuSeconds,
    coreBusy: usage.coreBusySeconds.map((s) => s / usage.wallSeconds),
    otherCpuSeconds: usage.otherCpuSeconds,
    interruptSeconds: usage.interruptSeconds,
  };
}

/** Warm-up, then one measured run of `load` through `target`. Returns the result and the requests it sent (warm-up included). */
export async function measure(ctx: LoadContext, target: RunningTarget, load: LoadName): Promise<{ result: ScenarioResult; requests: number }> {
  const spec = target.spec;
  const groups: WatchedGroup[] = [...target.proxies.map((p) => ({ name: p.name, pids: [p.pid] })), { name: 'upstream and sink', pids: ctx.loadPids }];
  // Every field set here, the measured ones overwritten below: one shape for all results.
  const base = failedScenario(spec, load, undefined);
  let sent = 0;
  const closedLoop = {
    wrk: ctx.wrk,
    core: LOAD_CORE,
    url: `http://127.0.0.1:${target.port}/`,
    threads: 1,
    hostHeader: target.hostHeader,
  };
  // The warm-up runs at full speed whatever the load: a JIT-compiled proxy needs tens of thousands
  // of requests to settle, and at 1,000 req/s a few seconds of warm-up left its CPU figure 20-40 %
  // above what the same build measured after 30 s more (bench/results/proxy-runs.md).
  if (ctx.args.warmupSeconds > 0) {
    sent += (await runWrk(ctx.processes, { ...closedLoop, connections: CLOSED_LOOP_CONNECTIONS.c50, durationSeconds: ctx.args.warmupSeconds })).requests;
  }
  if (load === 'rate') {
    // One more second at the measured rate, so its connections are open and in their steady pattern.
    if (ctx.args.warmupSeconds > 0) sent += (await runRate(ctx, target, 1, undefined)).completed;
    const window = new UsageWindow(groups);
    let rate: ConstantRateResult;
    try {
      rate = await runRate(ctx, target, ctx.args.durationSeconds, window);
    } finally {
      window.stop();
    }
    const usage = window.stop();
    sent += rate.completed;
    return {
      requests: sent,
      result: {
        ...base,
        error: rate.completed === 0 ? `no response at all${rate.firstError !== undefined ? `: ${rate.firstError}` : ''}` : undefined,
        requests: rate.completed,
        seconds: rate.elapsedMs / 1000,
        requestsPerSecond: rate.achievedRate,
        latencyUs: { p50: rate.latencyUs.p50, p90: rate.latencyUs.p90, p99: rate.latencyUs.p99, p999: rate.latencyUs.p999, max: rate.latencyUs.max },
        ...scenarioFromUsage(target, usage, rate.completed),
        non2xx: rate.non2xx,
        failed: rate.failed,
        generatorLagP99Us: rate.lagUs.p99,
        raw: rate,
      },
    };
  }
  const options = { ...closedLoop, connections: CLOSED_LOOP_CONNECTIONS[load] };
  const window = new UsageWindow(groups);
  let wrk;
  try {
    wrk = await runWrk(ctx.processes, { ...options, durationSeconds: ctx.args.durationSeconds }, (pid) => window.watch({ name: 'wrk', pids: [pid] }));
  } finally {
    window.stop();
  }
  const usage = window.stop();
  sent += wrk.requests;
  const socketErrors = wrk.socketErrors.connect + wrk.socketErrors.read + wrk.socketErrors.write + wrk.socketErrors.timeout;
  return {
    requests: sent,
    result: {
      ...base,
      error: wrk.requests === 0 ? 'no request completed' : undefined,
      requests: wrk.requests,
      seconds: wrk.seconds,
      requestsPerSecond: wrk.requestsPerSecond,
      latencyUs: { p50: wrk.p50Us, p90: wrk.p90Us, p99: wrk.p99Us, p999: undefined, max: wrk.maxUs },
      ...scenarioFromUsage(target, usage, wrk.requests),
      non2xx: wrk.non2xx,
      failed: socketErrors,
      generatorLagP99Us: undefined,
      raw: wrk,
    },
  };
}

/** One line for the runner's log. */
export function describeResult(result: ScenarioResult): string {
  if (result.error !== undefined) return `${result.key} ${result.load}: FAILED ${result.error.split('\n', 1)[0]}`;
  const cpu = result.proxies.map((p) => `${p.name} ${p.cpuUsPerRequest.toFixed(1)} µs/req ${(p.peakRssBytes / 1e6).toFixed(1)} MB ${Math.round(p.coreShare * 100)} %`).join(', ');
  return (
    `${result.key} ${result.load}: ${Math.round(result.requestsPerSecond)} req/s, p50 ${(result.latencyUs.p50 / 1000).toFixed(3)} p90 ${(result.latencyUs.p90 / 1000).toFixed(3)} ` +
    `p99 ${(result.latencyUs.p99 / 1000).toFixed(3)} ms${cpu === '' ? '' : `, ${cpu}`}${result.non2xx + result.failed > 0 ? `, ${result.non2xx} non-2xx ${result.failed} failed` : ''}`
  );
}
