/**
 * CPU time and memory of processes over a measured window, from /proc:
 * utime + stime of each process (all its threads) from /proc/<pid>/stat,
 * VmRSS from /proc/<pid>/status sampled every 100 ms for the peak, and the
 * busy time of each core from /proc/stat (so the report can show how much
 * else ran on the machine during the window).
 */
import { execFileSync } from 'node:child_process';
import { readFileSync, readdirSync } from 'node:fs';
import { performance } from 'node:perf_hooks';

export const CLOCK_TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

const RSS_SAMPLE_MS = 100;

/** utime + stime in clock ticks of one process (all threads), or undefined once it is gone. */
export function processTicks(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    // The command name (field 2) may hold spaces and parentheses: fields start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
    // fields[0] is field 3 (state); utime and stime are fields 14 and 15.
    return Number(fields[11]) + Number(fields[12]);
  } catch {
    return undefined;
  }
}

/** VmRSS in bytes, or 0 once the process is gone. */
export function rssBytes(pid: number): number {
  try {
    const match = /^VmRSS:\s+(\d+) kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return match?.[1] !== undefined ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

function parentOf(pid: number): number | undefined {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
  } catch {
    return undefined;
  }
}

/** `pid` and all its descendants (nginx's master and worker count as one proxy). */
export function processTree(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const child = Number(entry);
    const parent = parentOf(child);
    if (parent === undefined) continue;
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [child]);
    else list.push(child);
  }
  const out: number[] = [];
  const stack = [pid];
  while (stack.length > 0) {
    const next = stack.pop()!;
    out.push(next);
    for (const child of children.get(next) ?? []) stack.push(child);
  }
  return out;
}

export interface CoreTicks {
  /** user + nice + system + irq + softirq + steal, per core. */
  busy: number[];
  /** Summed over cores: user + nice + system + steal (process time). */
  process: number;
  /** Summed over cores: irq + softirq, which Linux does not charge to any process's utime/stime (loopback packet delivery runs here). */
  interrupt: number;
}

/** Busy clock ticks per core and in total, from /proc/stat. */
export function coreTicks(): CoreTicks {
  const out: CoreTicks = { busy: [], process: 0, interrupt: 0 };
  try {
    for (const line of readFileSync('/proc/stat', 'utf8').split('\n')) {
      const match = /^cpu(\d+)\s+(.*)$/.exec(line);
      if (match === null) continue;
      const [user = 0, nice = 0, system = 0, , , irq = 0, softirq = 0, steal = 0] = match[2]!.trim().split(/\s+/).map(Number);
      out.busy[Number(match[1])] = user + nice + system + irq + softirq + steal;
      out.process += user + nice + system + steal;
      out.interrupt += irq + softirq;
    }
  } catch {
    // not Linux: no per-core figures
  }
  return out;
}

/** A named group of processes measured together (one proxy; or the load side). */
export interface WatchedGroup {
  name: string;
  /** Root pids; their descendants are included. */
  pids: readonly number[];
}

export interface GroupUsage {
  name: string;
  cpuSeconds: number;
  /** Peak of the group's summed VmRSS over the window. */
  peakRssBytes: number;
  processes: number;
}

export interface WindowUsage {
  wallSeconds: number;
  groups: GroupUsage[];
  /** Busy seconds of each core over the window, whoever ran. */
  coreBusySeconds: number[];
  /** Process CPU seconds (all cores) not spent by the watched groups: other work on the machine, and the runner itself. */
  otherCpuSeconds: number;
  /** irq + softirq seconds (all cores): mostly loopback packet delivery, ours included; charged to no process. */
  interruptSeconds: number;
}

interface GroupState {
  name: string;
  pids: number[];
  startTicks: number[];
  peakRss: number;
}

/** Measures groups of processes from start() to stop(). */
export class UsageWindow {
  private readonly states: GroupState[];
  private readonly startCores: CoreTicks;
  private readonly startedAt: number;
  private readonly timer: NodeJS.Timeout;
  private result: WindowUsage | undefined = undefined;

  constructor(groups: readonly WatchedGroup[]) {
    this.states = groups.map((group) => this.stateOf(group));
    this.startCores = coreTicks();
    this.startedAt = performance.now();
    this.sampleRss();
    this.timer = setInterval(() => this.sampleRss(), RSS_SAMPLE_MS);
    // The window must not keep the runner alive on its own.
    this.timer.unref();
  }

  private stateOf(group: WatchedGroup): GroupState {
    const pids = [...new Set(group.pids.flatMap((pid) => processTree(pid)))];
    return { name: group.name, pids, startTicks: pids.map((pid) => processTicks(pid) ?? 0), peakRss: 0 };
  }

  /** Adds a group from now on (a load generator started inside the window). */
  watch(group: WatchedGroup): void {
    if (this.result === undefined) this.states.push(this.stateOf(group));
  }

  private sampleRss(): void {
    for (const state of this.states) {
      let sum = 0;
      for (const pid of state.pids) sum += rssBytes(pid);
      if (sum > state.peakRss) state.peakRss = sum;
    }
  }

  /** Ends the window; later calls return the same figures. */
  stop(): WindowUsage {
    if (this.result !== undefined) return this.result;
    clearInterval(this.timer);
    this.sampleRss();
    const wallSeconds = (performance.now() - this.startedAt) / 1000;
    const endCores = coreTicks();
    const coreBusySeconds = endCores.busy.map((ticks, core) => (ticks - (this.startCores.busy[core] ?? ticks)) / CLOCK_TICKS);
    const groups = this.states.map((state) => {
      let ticks = 0;
      // A process that exited inside the window loses its last figures: the window is for processes that live through it.
      state.pids.forEach((pid, i) => {
        const now = processTicks(pid);
        if (now !== undefined) ticks += now - state.startTicks[i]!;
      });
      return { name: state.name, cpuSeconds: ticks / CLOCK_TICKS, peakRssBytes: state.peakRss, processes: state.pids.length };
    });
    const processSeconds = (endCores.process - this.startCores.process) / CLOCK_TICKS;
    const watched = groups.reduce((a, g) => a + g.cpuSeconds, 0);
    this.result = {
      wallSeconds,
      groups,
      coreBusySeconds,
      otherCpuSeconds: Math.max(0, processSeconds - watched),
      interruptSeconds: (endCores.interrupt - this.startCores.interrupt) / CLOCK_TICKS,
    };
    return this.result;
  }
}
