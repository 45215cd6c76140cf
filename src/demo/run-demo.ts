/**
 * `tracemesh demo`, start to end: start the stack (launch.ts), wait until
 * the sidecars know their peers and one request gets through, then run the
 * load generator and the scenario clock, refreshing the live view every
 * second, until --duration has passed, Ctrl-C (SIGINT/SIGTERM) or a child
 * crashes. Then stop the load, print the summary, and stop every child:
 * apps first (they flush their spans), then sidecars, the control plane and
 * the collector last. A second Ctrl-C kills what is left at once.
 */
import { mkdirSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { createApiClient, DEFAULT_API_URL } from '../cli/api-client.js';
import { errorMessage } from '../lib/errors.js';
import { NO_FAULTS } from './apps/faults.js';
import type { ManagedChild } from './child.js';
import { describeExit } from './child.js';
import { childExited } from './errors.js';
import { playPhase, writeFaultFile } from './fault-writer.js';
import { applyConfig, startCollector, startControlPlane, startWorkload } from './launch.js';
import type { LaunchContext, RunningWorkload } from './launch.js';
import { LiveStats } from './live-stats.js';
import { LoadGenerator, productPath } from './load-generator.js';
import { demoPaths, demoPrograms } from './paths.js';
import { waitForEndpoints, waitForFirstAnswer } from './readiness.js';
import { describeTimeline, phaseAt, scenarioLengthMs } from './scenario.js';
import { writeDemoState } from './state-file.js';
import { ENTRY_WORKLOAD, REVIEWS_VERSIONS, WORKLOADS, spanServiceNames } from './topology.js';
import { progressLine, renderSummary, renderView } from './view.js';
import type { ViewState } from './view.js';

export interface DemoOptions {
  readonly dataDir: string;
  /** The configuration applied at start (examples/demo). */
  readonly configDir: string;
  readonly rate: number;
  /** Seconds of traffic, then exit 0 with a summary; undefined runs until Ctrl-C. */
  readonly durationSeconds: number | undefined;
  /** false: no live view, a progress line every few seconds (for logs and CI). */
  readonly ui: boolean;
}

export interface DemoIo {
  readonly stdout: Writable & { isTTY?: boolean };
  readonly stderr: Writable;
  readonly stopSignal: Promise<string>;
}

const ENDPOINTS_READY_MS = 60_000;
const FIRST_ANSWER_MS = 60_000;
const REFRESH_MS = 1_000;
const NO_UI_PROGRESS_EVERY = 5;
const REQUEST_TIMEOUT_MS = 10_000;
const APP_STOP_GRACE_MS = 12_000;
const SERVER_STOP_GRACE_MS = 20_000;
/** After the load stops: time for the last spans to leave the apps and sidecars before the summary is read. */
const FLUSH_WAIT_MS = 3_000;

class Interrupted extends Error {
  constructor(readonly signal: string) {
    super(`stopped by ${signal}`);
  }
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

export async function runDemo(options: DemoOptions, io: DemoIo): Promise<number> {
  const paths = demoPaths(options.dataDir);
  const programs = demoPrograms();
  mkdirSync(paths.faultsDir, { recursive: true });
  const children: ManagedChild[] = [];
  const urls: Record<string, string> = {};
  const startedAt = new Date().toISOString();
  const saveState = (running: boolean): void =>
    writeDemoState(paths.stateFile, { demoPid: process.pid, running, startedAt, children: children.map((c) => ({ label: c.label, pid: c.pid })), urls });
  const say = (line: string): void => void io.stdout.write(`${line}\n`);

  // A child that exits while the demo runs ends the demo; the message names it and quotes its last output.
  let crashed: (err: Error) => void = () => undefined;
  const crash = new Promise<never>((_, reject) => (crashed = reject));
  crash.catch(() => undefined);
  const adopt = (child: ManagedChild): void => {
    children.push(child);
    saveState(true);
    void child.exited.then((exit) => {
      if (!child.stopRequested) crashed(childExited(`${child.label} (pid ${child.pid}) exited (${describeExit(exit)}); its last output:\n${child.tail()}`));
    });
  };
  const stopped = io.stopSignal.then((signal) => {
    throw new Interrupted(signal);
  });
  stopped.catch(() => undefined);
  const guard = <T>(step: Promise<T>): Promise<T> => Promise.race([step, crash, stopped]);

  // A second Ctrl-C: no more waiting for clean stops.
  let interrupts = 0;
  const onSecondInterrupt = (): void => {
    interrupts += 1;
    if (interrupts < 2) return;
    io.stderr.write('tracemesh demo: second interrupt: killing every child now\n');
    for (const child of children) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
    process.exit(130);
  };
  process.on('SIGINT', onSecondInterrupt);

  const context: LaunchContext = { paths, programs, configDir: options.configDir, adopt, progress: say };
  let load: LoadGenerator | undefined;
  let stats: LiveStats | undefined;
  let trafficStartedAt = 0;
  let code = 0;
  try {
    say(`tracemesh demo: data in ${paths.dataDir} (reused by the next run); starting the collector (chDB) ...`);
    const collector = await guard(startCollector(context));
    urls['queryApi'] = collector.queryApiUrl;
    urls['otlpGrpc'] = collector.otlpGrpcUrl;
    say(`collector ready: query API ${collector.queryApiUrl}, OTLP/gRPC ${collector.otlpGrpcUrl}`);
    const controlPlaneUrl = await guard(startControlPlane(context));
    urls['controlPlane'] = controlPlaneUrl;
    const revision = await guard(applyConfig(controlPlaneUrl, options.configDir));
    say(`control plane ready: ${controlPlaneUrl}, ${options.configDir} applied (revision ${revision})`);
    const workloads: RunningWorkload[] = [];
    // Callees first, two at a time: a 2-core laptop starts Node processes faster in small groups.
    for (let i = 0; i < WORKLOADS.length; i += 2) {
      const batch = WORKLOADS.slice(i, i + 2);
      workloads.push(...(await guard(Promise.all(batch.map((w) => startWorkload(context, w, { otlpGrpcUrl: collector.otlpGrpcUrl, controlPlaneUrl }))))));
    }
    for (const running of workloads) {
      urls[`${running.workload.name}.admin`] = `http://127.0.0.1:${running.adminPort}`;
      if (running.faultFile !== undefined) writeFaultFile(running.faultFile, NO_FAULTS);
    }
    saveState(true);
    const entry = workloads.find((w) => w.workload.name === ENTRY_WORKLOAD) as RunningWorkload;
    const entryUrl = `http://127.0.0.1:${entry.inboundPort}`;
    urls['entry'] = entryUrl;
    await guard(waitForEndpoints(workloads, ENDPOINTS_READY_MS));
    await guard(waitForFirstAnswer(`${entryUrl}${productPath(0)}`, FIRST_ANSWER_MS));

    const traceCommand = collector.queryApiUrl === DEFAULT_API_URL ? 'tracemesh trace' : `tracemesh trace --api ${collector.queryApiUrl}`;
    const lengthMs = scenarioLengthMs(options.durationSeconds);
    printUrls(say, { queryApiUrl: collector.queryApiUrl, controlPlaneUrl, entryUrl, workloads, traceCommand, configDir: options.configDir });
    say(`scenario (${options.durationSeconds === undefined ? `repeats every ${lengthMs / 1000} s` : `over the ${lengthMs / 1000} s run`}):`);
    for (const line of describeTimeline(lengthMs)) say(`  ${line}`);
    say(options.durationSeconds === undefined ? 'Ctrl-C stops the demo and every process it started.' : `running for ${options.durationSeconds} s; Ctrl-C stops earlier.`);

    const faultFiles = new Map(workloads.flatMap((w) => (w.faultFile === undefined ? [] : [[w.workload.name, w.faultFile] as [string, string]])));
    const meshServices = [...new Set(WORKLOADS.map((w) => w.service))];
    stats = new LiveStats({
      api: createApiClient(new URL(collector.queryApiUrl), 5_000),
      meshServices,
      appOnlyServices: REVIEWS_VERSIONS.map((v) => `reviews-${v}`),
      countedByOperation: { inventory: 'STOCK' },
      allServices: spanServiceNames(),
      startedAtMs: Date.now(),
    });
    load = new LoadGenerator({ rate: options.rate, port: entry.inboundPort, path: productPath, timeoutMs: REQUEST_TIMEOUT_MS, maxInFlight: Math.max(16, options.rate * 2),
      sendForMs: options.durationSeconds === undefined ? undefined : options.durationSeconds * 1000,
    });
    trafficStartedAt = Date.now();
    load.start();
    let phaseIndex = -1;
    let cycle = -1;
    const color = options.ui && io.stdout.isTTY === true;
    for (let frame = 0; ; frame++) {
      const elapsedMs = Date.now() - trafficStartedAt;
      if (options.durationSeconds !== undefined && elapsedMs >= options.durationSeconds * 1000) break;
      const clock = phaseAt(elapsedMs, lengthMs);
      if (clock.index !== phaseIndex || clock.cycle !== cycle) {
        phaseIndex = clock.index;
        cycle = clock.cycle;
        playPhase(clock.phase, faultFiles);
        if (!options.ui) say(`${(elapsedMs / 1000).toFixed(1)} s: phase ${clock.phase.name}: ${clock.phase.description}`);
      }
      const snapshot = await guard(stats.refresh());
      const state: ViewState = {
        elapsedMs,
        durationMs: options.durationSeconds === undefined ? undefined : options.durationSeconds * 1000,
        frame,
        clock,
        rate: options.rate,
        load: load.counts,
        stats: snapshot,
        traceCommand,
        color,
      };
      if (options.ui) io.stdout.write(`\x1b[H\x1b[2J${renderView(state).join('\n')}\n`);
      else if (frame % NO_UI_PROGRESS_EVERY === 0) say(progressLine(state));
      const nextAt = trafficStartedAt + (frame + 1) * REFRESH_MS;
      const wait = options.durationSeconds === undefined ? nextAt - Date.now() : Math.min(nextAt, trafficStartedAt + options.durationSeconds * 1000) - Date.now();
      await guard(sleep(Math.max(0, wait)));
    }
  } catch (err) {
    if (err instanceof Interrupted) say(`\ntracemesh demo: ${err.signal}: stopping`);
    else {
      io.stderr.write(`tracemesh demo: ${errorMessage(err)}\n`);
      code = 1;
    }
  }

  if (load !== undefined) {
    await load.stop();
    if (code === 0 && stats !== undefined) {
      await sleep(FLUSH_WAIT_MS);
      const snapshot = await stats.refresh();
      const trafficMs = Math.min(Date.now() - trafficStartedAt - FLUSH_WAIT_MS, (options.durationSeconds ?? Infinity) * 1000);
      for (const line of renderSummary({ elapsedMs: trafficMs, load: load.counts, stats: snapshot })) say(line);
    }
  }
  await stopChildren(children, say);
  saveState(false);
  process.off('SIGINT', onSecondInterrupt);
  say(code === 0 ? 'tracemesh demo: stopped; every process it started has exited.' : 'tracemesh demo: stopped after the error above.');
  return code;
}

function printUrls(
  say: (line: string) => void,
  where: { queryApiUrl: string; controlPlaneUrl: string; entryUrl: string; workloads: readonly RunningWorkload[]; traceCommand: string; configDir: string },
): void {
  say('');
  say(`  web (through its sidecar): ${where.entryUrl}/product/42`);
  say(`  query API:                 ${where.queryApiUrl}/api/v1/graph?since=5m`);
  say(`  control plane:             ${where.controlPlaneUrl}  (tracemesh apply -f ${where.configDir} --control-plane ${where.controlPlaneUrl})`);
  say('  sidecars (admin; metrics at /stats/prometheus):');
  for (const w of where.workloads) say(`    ${w.workload.name.padEnd(10)} http://127.0.0.1:${w.adminPort}/   inbound :${w.inboundPort}  app :${w.appPort}`);
  say(`  open a trace:              ${where.traceCommand} <trace id>`);
  say('');
}

/** Apps first (they flush their spans through nothing else), then sidecars, then the control plane, the collector last. */
async function stopChildren(children: readonly ManagedChild[], say: (line: string) => void): Promise<void> {
  const apps = children.filter((c) => c.label.endsWith(' app'));
  const proxies = children.filter((c) => c.label.endsWith(' proxy'));
  const rest = children.filter((c) => !apps.includes(c) && !proxies.includes(c)).reverse();
  const report = (child: ManagedChild, exit: { code: number | null; signal: string | null }): void => {
    if (exit.code !== 0 && exit.signal === null && child.stopRequested) {
      say(`  ${child.label} exited with code ${exit.code ?? '?'} when stopped; its last line: ${child.tail().split('\n').pop() ?? ''}`);
    }
  };
  for (const group of [apps, proxies]) {
    await Promise.all(group.map(async (child) => report(child, await child.stop(APP_STOP_GRACE_MS))));
  }
  for (const child of rest) report(child, await child.stop(SERVER_STOP_GRACE_MS));
}
