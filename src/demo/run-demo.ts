/**
 * `tracemesh demo`, start to end: stop what a killed earlier run left
 * (leftovers.ts), start the stack (explicit-stack.ts, or transparent-stack.ts
 * with --transparent), wait until the sidecars know their peers and one
 * request gets through, then run the load generator and the scenario clock, refreshing the live view every
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
import { describeExit } from './child.js';
import { childExited } from './errors.js';
import { ExplicitStack } from './explicit-stack.js';
import { playPhase, writeFaultFile } from './fault-writer.js';
import { stopLeftovers } from './leftovers.js';
import { LiveStats } from './live-stats.js';
import { LoadGenerator, productPath } from './load-generator.js';
import { demoPaths, demoPrograms } from './paths.js';
import { waitForEndpoints, waitForFirstAnswer } from './readiness.js';
import { describeTimeline, phaseAt, scenarioLengthMs } from './scenario.js';
import { writeDemoState } from './state-file.js';
import type { DemoStack, StackContext, TrackedProcess } from './stack.js';
import { REVIEWS_VERSIONS, WORKLOADS, spanServiceNames } from './topology.js';
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
  /** Pods in network namespaces with iptables capture (root only) instead of explicit sidecars on loopback. */
  readonly transparent: boolean;
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
  const say = (line: string): void => void io.stdout.write(`${line}\n`);
  // A run that was SIGKILLed left its children running (they have process groups of their own).
  const leftovers = await stopLeftovers(paths.stateFile);
  if (leftovers !== undefined) say(leftovers);
  mkdirSync(paths.faultsDir, { recursive: true });
  const children: TrackedProcess[] = [];
  const urls: Record<string, string> = {};
  const startedAt = new Date().toISOString();
  const saveState = (running: boolean): void =>
    writeDemoState(paths.stateFile, {
      demoPid: process.pid,
      running,
      startedAt,
      children: children.map((c) => ({ label: c.label, pid: c.pid, command: c.command })),
      urls,
    });

  // A child that exits while the demo runs ends the demo; the message names it and quotes its last output.
  let crashed: (err: Error) => void = () => undefined;
  const crash = new Promise<never>((_, reject) => (crashed = reject));
  crash.catch(() => undefined);
  const adopt = (child: TrackedProcess): void => {
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

  const context: StackContext = { paths, programs, configDir: options.configDir, adopt, progress: say, guard };
  const stack: DemoStack = options.transparent ? new (await import('./transparent-stack.js')).TransparentStack(context) : new ExplicitStack(context);

  // A second Ctrl-C: no more waiting for clean stops.
  let interrupts = 0;
  const onSecondInterrupt = (): void => {
    interrupts += 1;
    if (interrupts < 2) return;
    io.stderr.write('tracemesh demo: second interrupt: killing every child now\n');
    stack.killNow();
    process.exit(130);
  };
  process.on('SIGINT', onSecondInterrupt);

  let load: LoadGenerator | undefined;
  let stats: LiveStats | undefined;
  let trafficStartedAt = 0;
  let code = 0;
  try {
    const started = await guard(stack.start());
    urls['queryApi'] = started.queryApiUrl;
    urls['controlPlane'] = started.controlPlaneUrl;
    for (const running of started.workloads) {
      urls[`${running.workload.name}.admin`] = `http://127.0.0.1:${running.adminPort}`;
      if (running.faultFile !== undefined) writeFaultFile(running.faultFile, NO_FAULTS);
    }
    const entryUrl = `http://127.0.0.1:${started.entryPort}`;
    urls['entry'] = entryUrl;
    saveState(true);
    await guard(waitForEndpoints(started.workloads, ENDPOINTS_READY_MS));
    await guard(waitForFirstAnswer(`${entryUrl}${productPath(0)}`, FIRST_ANSWER_MS));

    const traceCommand = started.queryApiUrl === DEFAULT_API_URL ? 'tracemesh trace' : `tracemesh trace --api ${started.queryApiUrl}`;
    const lengthMs = scenarioLengthMs(options.durationSeconds);
    for (const line of ['', ...started.urlLines(traceCommand), '']) say(line);
    say(`scenario (${options.durationSeconds === undefined ? `repeats every ${lengthMs / 1000} s` : `over the ${lengthMs / 1000} s run`}):`);
    for (const line of describeTimeline(lengthMs)) say(`  ${line}`);
    say(options.durationSeconds === undefined ? 'Ctrl-C stops the demo and every process it started.' : `running for ${options.durationSeconds} s; Ctrl-C stops earlier.`);

    const faultFiles = new Map(started.workloads.flatMap((w) => (w.faultFile === undefined ? [] : [[w.workload.name, w.faultFile] as [string, string]])));
    const meshServices = [...new Set(WORKLOADS.map((w) => w.service))];
    stats = new LiveStats({
      api: createApiClient(new URL(started.queryApiUrl), 5_000),
      meshServices,
      appOnlyServices: REVIEWS_VERSIONS.map((v) => `reviews-${v}`),
      countedByOperation: { inventory: 'STOCK' },
      allServices: spanServiceNames(),
      startedAtMs: Date.now(),
    });
    load = new LoadGenerator({ rate: options.rate, port: started.entryPort, path: productPath, timeoutMs: REQUEST_TIMEOUT_MS, maxInFlight: Math.max(16, options.rate * 2),
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
      try {
        const snapshot = await stats.refresh();
        const trafficMs = Math.min(Date.now() - trafficStartedAt - FLUSH_WAIT_MS, (options.durationSeconds ?? Infinity) * 1000);
        for (const line of renderSummary({ elapsedMs: trafficMs, load: load.counts, stats: snapshot })) say(line);
      } catch (err) {
        // The query API can be gone already: a transparent network torn down by its exit guard on a signal.
        say(`tracemesh demo: no summary: the query API did not answer (${errorMessage(err)})`);
      }
    }
  }
  try {
    await stack.stop(say);
  } catch (err) {
    io.stderr.write(`tracemesh demo: stopping: ${errorMessage(err)}\n`);
    code = 1;
  }
  saveState(false);
  process.off('SIGINT', onSecondInterrupt);
  say(code === 0 ? 'tracemesh demo: stopped; every process it started has exited.' : 'tracemesh demo: stopped after the error above.');
  return code;
}
