/**
 * `npm run bench:proxy [-- options]`: the sidecar benchmark of issue 3.
 *
 * Paths, all HTTP/1.1 keep-alive to one upstream answering 1 KiB:
 *   direct, HAProxy (1 thread), nginx (1 worker), one tracemesh sidecar and
 *   two (client sidecar + server sidecar), the sidecars with tracing at 100 %
 *   and off.
 * Loads: wrk closed loop at 1 and at 50 connections, and a constant
 * 1,000 req/s (bench/proxy/constant-rate.ts, no coordinated omission).
 * Figures: req/s, p50/p90/p99, CPU µs per request and peak RSS of each proxy
 * (from /proc), per-core busy time. Proxies on core 1, everything else on
 * core 0 (taskset). Results: bench/results/proxy.md and proxy.json.
 *
 * Every process started here is stopped at the end, on failure and on Ctrl-C.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { summarizeProfile } from '../collector/profile-summary.js';
import type { CpuProfile } from '../collector/profile-summary.js';
import { DEFAULT_PROXY_MAIN, ROOT, UsageError, isPartial, parseArgs, targetSpecs } from './args.js';
import { evaluateGoals } from './goals.js';
import { LOAD_CORE, describeResult, failedScenario, measure } from './measure.js';
import type { LoadContext } from './measure.js';
import type { SinkStats } from './otlp-sink.js';
import { Processes } from './processes.js';
import type { ManagedProcess } from './processes.js';
import { renderReport } from './report.js';
import type { BenchRun, Machine, ProfileResult, ScenarioResult, TracingCheck } from './results.js';
import { deadProxy, startTarget, targetKey, targetLabel } from './targets.js';
import type { RunningTarget, TargetContext, TargetSpec } from './targets.js';
import { ensureTools, packageVersion, versionLine } from './tools.js';
import type { Tool } from './tools.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const UPSTREAM_SCRIPT = path.join(HERE, 'upstream.js');
const SINK_SCRIPT = path.join(HERE, 'otlp-sink.js');
const PROFILE_DIR = path.join(ROOT, 'bench', 'tmp');

const START_TIMEOUT_MS = 15_000;
const SINK_STATS_TIMEOUT_MS = 5_000;

const UPSTREAM_DESCRIPTION =
  'bench/proxy/upstream.ts, a raw `net` server (one Node process) that counts request ends and writes one prebuilt 200 response (1 KiB body, Content-Length) per request, one write per read. ' +
  'Chosen over nginx serving a 1 KiB file because it costs the same on this machine (8.3 to 8.9 µs of upstream CPU per request for both, wrk -c50 on the same core, measured while writing this benchmark) and needs no second nginx.';
const SINK_DESCRIPTION =
  'the sidecars export OTLP/gRPC to bench/proxy/otlp-sink.ts on the load core, which accepts every Export and discards it after counting spans (no collector, no storage), so the sidecar pays for recording and exporting every span and the load core is not busy with a collector.';

// ---------------------------------------------------------------------------
// Small helpers

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function errorText(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}

/** `cores`: counted before the runner pins itself (after, Node sees one). */
function machine(tools: ReadonlyMap<Tool, string>, cores: number): Machine {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (model?.[1] !== undefined) cpu = model[1].trim();
  } catch {
    // not Linux
  }
  const version = (tool: Tool, args: readonly string[], pkg: string): string => {
    const executable = tools.get(tool);
    if (executable === undefined) return 'not used in this run';
    const debian = packageVersion(pkg);
    return `${versionLine(executable, args)}${debian !== undefined ? ` (Debian ${pkg} ${debian})` : ''}`;
  };
  return {
    cpu,
    cores,
    memory: `${(os.totalmem() / 1024 ** 3).toFixed(1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    haproxy: version('haproxy', ['-v'], 'haproxy'),
    nginx: version('nginx', ['-v'], 'nginx'),
    wrk: version('wrk', ['-v'], 'wrk'),
  };
}

function sinkStats(sink: ManagedProcess): Promise<SinkStats> {
  return new Promise((resolve, reject) => {
    const onMessage = (message: unknown): void => {
      clearTimeout(timer);
      resolve(message as SinkStats);
    };
    const timer = setTimeout(() => {
      sink.child.off('message', onMessage);
      reject(new Error(`the OTLP sink did not answer 'stats' within ${SINK_STATS_TIMEOUT_MS} ms`));
    }, SINK_STATS_TIMEOUT_MS);
    sink.child.once('message', onMessage);
    sink.child.send('stats');
  });
}

// ---------------------------------------------------------------------------
// Profile

async function profileSidecar(ctx: LoadContext, targetCtx: TargetContext): Promise<ProfileResult> {
  const spec: TargetSpec = { name: 'proxy1', tracing: true };
  const scenario = `${targetLabel(spec)}, 50 connections`;
  const file = path.join(PROFILE_DIR, 'sidecar.cpuprofile');
  const result: ProfileResult = { scenario, file: undefined, requestsPerSecond: Number.NaN, totalMs: 0, top: [], error: undefined };
  mkdirSync(PROFILE_DIR, { recursive: true });
  rmSync(file, { force: true });
  let target: RunningTarget | undefined;
  try {
    target = await startTarget({ ...targetCtx, profileDir: PROFILE_DIR }, spec);
    const measured = await measure(ctx, target, 'c50');
    result.requestsPerSecond = measured.result.requestsPerSecond;
  } catch (err) {
    result.error = errorText(err);
  } finally {
    // The profile is written when the sidecar exits.
    await target?.stop();
  }
  if (result.error !== undefined) return result;
  if (!existsSync(file)) {
    result.error = `${file} was not written: the sidecar must exit normally on SIGTERM (process.exit or an empty event loop) for --cpu-prof to write its profile`;
    return result;
  }
  const summary = summarizeProfile(JSON.parse(readFileSync(file, 'utf8')) as CpuProfile, 20);
  result.file = path.relative(ROOT, file);
  result.totalMs = summary.totalMs;
  result.top = summary.selfByFunction.slice(0, 20);
  return result;
}

// ---------------------------------------------------------------------------
// Main

async function main(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv);
  const started = new Date();
  const cores = os.availableParallelism();
  const proxyCore = cores >= 2 ? 1 : 0;
  const notes: string[] = [];
  if (args.proxyMain !== DEFAULT_PROXY_MAIN) notes.push(`sidecars ran \`node ${args.proxyMain} proxy\`, not this tree's build`);
  if (args.proxyArgs.length > 0) notes.push(`every sidecar ran with the extra flags \`${args.proxyArgs.join(' ')}\``);
  if (cores < 2) notes.push(`only ${cores} core: proxies and load share core 0, figures are not comparable with a 2-core run`);
  const specs = targetSpecs(args);
  const needs: Tool[] = ['taskset', 'wrk'];
  if (args.only.includes('haproxy')) needs.push('haproxy');
  if (args.only.includes('nginx')) needs.push('nginx');
  const tools = ensureTools(needs, log);
  // The runner's own work (sampling /proc, the report) stays off the proxy core.
  execFileSync('taskset', ['-a', '-cp', String(LOAD_CORE), String(process.pid)], { stdio: 'ignore' });

  const processes = new Processes();
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tracemesh-bench-proxy-'));
  let interrupted = false;
  const onSignal = (signal: NodeJS.Signals): void => {
    if (interrupted) return;
    interrupted = true;
    log(`${signal}: stopping every process started by the benchmark`);
    void processes.stopAll(3_000).finally(() => {
      rmSync(dir, { recursive: true, force: true });
      process.exit(130);
    });
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  process.on('exit', () => processes.killAllNow());

  const scenarios: ScenarioResult[] = [];
  const tracing: TracingCheck[] = [];
  let profile: ProfileResult | undefined;
  try {
    const upstream = processes.spawn('upstream', process.execPath, [UPSTREAM_SCRIPT], { core: LOAD_CORE });
    const upstreamPort = Number((await upstream.waitForLine(/^listening (\d+)$/, START_TIMEOUT_MS))[1]);
    const traced = specs.some((s) => s.tracing === true) || args.profile;
    let sink: ManagedProcess | undefined;
    let sinkPort: number | undefined;
    if (traced) {
      sink = processes.spawn('otlp sink', process.execPath, [SINK_SCRIPT], { core: LOAD_CORE, ipc: true });
      sinkPort = Number((await sink.waitForLine(/^listening (\d+)$/, START_TIMEOUT_MS))[1]);
    }
    const loadCtx: LoadContext = { processes, wrk: tools.get('wrk')!, args, loadPids: sink === undefined ? [upstream.pid] : [upstream.pid, sink.pid] };
    const targetCtx: TargetContext = {
      processes,
      root: ROOT,
      proxyMain: args.proxyMain,
      proxyArgs: args.proxyArgs,
      dir,
      proxyCore,
      upstreamPort,
      sinkPort,
      haproxy: tools.get('haproxy'),
      nginx: tools.get('nginx'),
      profileDir: undefined,
    };
    log(`upstream on :${upstreamPort}${sinkPort !== undefined ? `, OTLP sink on :${sinkPort}` : ''}; ${specs.length} paths × ${args.loads.length} loads, ${args.warmupSeconds} s + ${args.durationSeconds} s each`);

    for (const spec of specs) {
      if (interrupted) break;
      const before = sink !== undefined && spec.tracing === true ? await sinkStats(sink) : undefined;
      let target: RunningTarget | undefined;
      let requests = 0;
      try {
        log(`starting ${targetLabel(spec)}`);
        target = await startTarget(targetCtx, spec);
        requests++; // the smoke request
      } catch (err) {
        const error = errorText(err);
        log(`${targetKey(spec)}: ${error}`);
        for (const load of args.loads) scenarios.push(failedScenario(spec, load, error));
        continue;
      }
      try {
        for (const load of args.loads) {
          if (interrupted) break;
          const dead = deadProxy(target);
          if (dead !== undefined) {
            scenarios.push(failedScenario(spec, load, dead));
            continue;
          }
          try {
            const measured = await measure(loadCtx, target, load);
            requests += measured.requests;
            // A proxy that died mid-run leaves figures that describe its death, not its speed.
            const diedNow = deadProxy(target);
            const result = diedNow === undefined ? measured.result : failedScenario(spec, load, diedNow);
            scenarios.push(result);
            log(describeResult(result));
          } catch (err) {
            const failed = failedScenario(spec, load, deadProxy(target) ?? errorText(err));
            scenarios.push(failed);
            log(describeResult(failed));
          }
        }
      } finally {
        await target.stop();
      }
      if (before !== undefined && sink !== undefined) {
        const after = await sinkStats(sink);
        const spans = after.spans - before.spans;
        const expected = spec.name === 'proxy2' ? 2 : 1;
        tracing.push({ key: targetKey(spec), requests, spans, spansPerRequest: requests > 0 ? spans / requests : Number.NaN, expectedPerRequest: expected });
        if (after.malformed > before.malformed) notes.push(`${targetKey(spec)}: the OTLP sink could not read ${after.malformed - before.malformed} trace export bodies`);
      }
    }
    if (args.profile && !interrupted) {
      log('profiling one sidecar (tracing on) under 50 connections');
      profile = await profileSidecar(loadCtx, targetCtx);
      if (profile.error !== undefined) log(`profile: ${profile.error}`);
    }
  } finally {
    await processes.stopAll();
    rmSync(dir, { recursive: true, force: true });
  }
  if (interrupted) return 130;

  const run: BenchRun = {
    startedAt: started.toISOString(),
    finishedAt: new Date().toISOString(),
    command: argv.length === 0 ? 'npm run bench:proxy' : `npm run bench:proxy -- ${argv.join(' ')}`,
    partial: isPartial(args),
    machine: machine(tools, cores),
    settings: {
      durationSeconds: args.durationSeconds,
      warmupSeconds: args.warmupSeconds,
      rate: args.rate,
      rateConnections: args.rateConnections,
      loadCore: LOAD_CORE,
      proxyCore,
      upstream: UPSTREAM_DESCRIPTION,
      tracingSink: SINK_DESCRIPTION,
    },
    scenarios,
    tracing,
    profile,
    notes,
  };
  const out = args.out ?? (run.partial ? path.join(ROOT, 'bench', 'tmp', 'proxy-partial.md') : path.join(ROOT, 'bench', 'results', 'proxy.md'));
  const json = out.replace(/\.md$/, '') + '.json';
  mkdirSync(path.dirname(out), { recursive: true });
  writeFileSync(out, renderReport(run, path.basename(json)));
  writeFileSync(json, `${JSON.stringify(run, null, 2)}\n`);

  const goals = evaluateGoals(scenarios);
  process.stdout.write(`\nGoals (tracing at 100 %):\n${goals.map((g) => `  ${g.verdict.padEnd(12)} ${g.goal}: ${g.measured}`).join('\n')}\n`);
  if (profile !== undefined && profile.error === undefined) {
    process.stdout.write(`\nProfile of ${profile.scenario} (${profile.file}), top 20 by self time:\n`);
    for (const row of profile.top) process.stdout.write(`  ${row.ms.toFixed(0).padStart(7)} ms ${(row.share * 100).toFixed(1).padStart(5)} %  ${row.name || '(anonymous)'}  ${row.where}\n`);
  }
  process.stdout.write(`\nWrote ${path.relative(process.cwd(), out)} and ${path.relative(process.cwd(), json)}\n`);
  const failed = scenarios.filter((s) => s.error !== undefined).length;
  if (failed > 0) log(`${failed} of ${scenarios.length} runs failed (see the report's notes)`);
  return failed > 0 || profile?.error !== undefined ? 1 : 0;
}

const invokedAsScript = process.argv[1] !== undefined && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsScript) {
  main(process.argv.slice(2)).then(
    (code) => process.exit(code),
    (err: unknown) => {
      if (err instanceof UsageError) {
        process.stderr.write(`${err.message}\n`);
        process.exit(2);
      }
      log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
      process.exit(1);
    },
  );
}
