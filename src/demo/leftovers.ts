/**
 * What an earlier run left running. The demo's children sit in process
 * groups of their own (so the terminal's Ctrl-C reaches only the demo), which
 * also means they outlive a demo that is SIGKILLed. On start, the previous
 * state.json names them: each recorded pid that is still alive and still
 * runs the recorded command line (a reused pid runs something else) is
 * stopped, SIGTERM to its group, SIGKILL after a deadline. A state whose
 * pids are gone is simply replaced.
 */
import { readFileSync } from 'node:fs';
import { isProcessAlive } from '../netns/stale.js';
import { notReady } from './errors.js';
import { readDemoState } from './state-file.js';
import type { DemoStateChild } from './state-file.js';

const POLL_MS = 100;
const DEFAULT_GRACE_MS = 5_000;
const KILL_WAIT_MS = 3_000;

/** /proc/<pid>/cmdline as its arguments; undefined when the process is gone or unreadable. */
export function commandLineOf(pid: number): string[] | undefined {
  try {
    const parts = readFileSync(`/proc/${pid}/cmdline`, 'utf8').split('\0');
    if (parts.at(-1) === '') parts.pop();
    return parts;
  } catch {
    return undefined;
  }
}

/**
 * Whether a running command line is the recorded one: equal, or ending with
 * it (a pod process starts as `ip netns exec … setpriv … -- node …` and
 * becomes `node …` when the wrappers exec).
 */
export function runsCommand(running: readonly string[], recorded: readonly string[]): boolean {
  if (recorded.length === 0 || running.length < recorded.length) return false;
  const offset = running.length - recorded.length;
  return recorded.every((part, i) => running[offset + i] === part);
}

export interface LeftoverChecks {
  readonly isAlive: (pid: number) => boolean;
  readonly commandLine: (pid: number) => string[] | undefined;
}

const SYSTEM: LeftoverChecks = { isAlive: isProcessAlive, commandLine: commandLineOf };

/** The recorded children that still run their recorded command. */
export function survivingChildren(children: readonly DemoStateChild[], checks: LeftoverChecks = SYSTEM): DemoStateChild[] {
  return children.filter((child) => {
    if (child.pid === process.pid || !checks.isAlive(child.pid)) return false;
    const running = checks.commandLine(child.pid);
    return running !== undefined && runsCommand(running, child.command);
  });
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(-pid, name);
  } catch {
    // Not a group leader any more (or gone): the process alone.
    try {
      process.kill(pid, name);
    } catch {
      // gone
    }
  }
}

async function waitUntilGone(pids: readonly number[], timeoutMs: number): Promise<number[]> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const alive = pids.filter((pid) => isProcessAlive(pid));
    if (alive.length === 0 || Date.now() >= deadline) return alive;
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/**
 * Stops what the run recorded in `stateFile` left running and returns the
 * one line that says so (undefined when nothing was left). Throws when that
 * run's demo process itself is still alive: two demos on one data dir would
 * share a collector store and ports.
 */
export async function stopLeftovers(stateFile: string, graceMs: number = DEFAULT_GRACE_MS, checks: LeftoverChecks = SYSTEM): Promise<string | undefined> {
  const { state, problem } = readDemoState(stateFile);
  if (state === undefined) return problem === undefined ? undefined : `tracemesh demo: ignoring the previous run's state: ${problem}`;
  if (state.running && state.demoPid !== process.pid && state.demoPid > 0 && checks.isAlive(state.demoPid)) {
    const running = checks.commandLine(state.demoPid) ?? [];
    if (running.includes('demo')) {
      throw notReady(`another tracemesh demo (pid ${state.demoPid}) is running with this data dir (${stateFile}); stop it first, or give this one --data-dir`);
    }
  }
  const survivors = survivingChildren(state.children, checks);
  if (survivors.length === 0) return undefined;
  const pids = survivors.map((child) => child.pid);
  for (const pid of pids) signal(pid, 'SIGTERM');
  let alive = await waitUntilGone(pids, graceMs);
  const killed = alive.length;
  for (const pid of alive) signal(pid, 'SIGKILL');
  alive = await waitUntilGone(alive, KILL_WAIT_MS);
  const names = survivors.map((child) => `${child.label} (pid ${child.pid})`).join(', ');
  const how = killed === 0 ? 'SIGTERM' : `SIGTERM, ${killed} needed SIGKILL`;
  const still = alive.length === 0 ? '' : `; still alive: ${alive.join(', ')}`;
  return `tracemesh demo: stopped ${survivors.length} process${survivors.length === 1 ? '' : 'es'} an earlier run (pid ${state.demoPid}) left running (${how}): ${names}${still}`;
}
