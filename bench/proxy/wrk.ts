/**
 * Closed-loop load with wrk (Debian package `wrk`, 4.1): runs it pinned to a
 * core and parses the `--latency` report.
 */
import type { Processes } from './processes.js';

export interface WrkResult {
  connections: number;
  threads: number;
  /** Requests completed in the run. */
  requests: number;
  /** Seconds wrk says the run took. */
  seconds: number;
  requestsPerSecond: number;
  /** Microseconds, from the Latency Distribution block. */
  p50Us: number;
  p75Us: number;
  p90Us: number;
  p99Us: number;
  meanUs: number;
  maxUs: number;
  non2xx: number;
  socketErrors: { connect: number; read: number; write: number; timeout: number };
}

export interface WrkOptions {
  wrk: string;
  /** CPU core wrk is pinned to. */
  core: number;
  url: string;
  connections: number;
  threads: number;
  durationSeconds: number;
  /** Sent instead of wrk's own Host header (the two-proxy path routes by it). */
  hostHeader?: string;
}

const UNIT_US: Readonly<Record<string, number>> = { us: 1, ms: 1_000, s: 1_000_000, m: 60_000_000, h: 3_600_000_000 };

/** `82.00us`, `1.23ms`, `2.00s` → microseconds. */
export function parseDuration(text: string): number {
  const match = /^([\d.]+)(us|ms|s|m|h)$/.exec(text.trim());
  if (match === null) throw new Error(`wrk: cannot read the duration '${text}'`);
  return Number(match[1]) * UNIT_US[match[2]!]!;
}

/** wrk's report → numbers. Throws naming the missing part when the report is not one. */
export function parseWrkOutput(text: string): WrkResult {
  const need = (pattern: RegExp, what: string): RegExpExecArray => {
    const match = pattern.exec(text);
    if (match === null) throw new Error(`wrk output has no ${what}:\n${text.slice(0, 2000)}`);
    return match;
  };
  const setup = need(/(\d+) threads? and (\d+) connections?/, "'N threads and M connections' line");
  const latency = need(/^\s*Latency\s+(\S+)\s+(\S+)\s+(\S+)/m, 'Latency stats line');
  const distribution = (percent: number): number => parseDuration(need(new RegExp(`^\\s*${percent}%\\s+(\\S+)`, 'm'), `${percent}% latency (run wrk with --latency)`)[1]!);
  const total = need(/(\d+) requests in ([\d.]+)(us|ms|s|m),/, "'N requests in T' line");
  const rps = need(/^Requests\/sec:\s+([\d.]+)/m, 'Requests/sec line');
  const non2xx = /Non-2xx or 3xx responses:\s+(\d+)/.exec(text);
  const socket = /Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)/.exec(text);
  return {
    threads: Number(setup[1]),
    connections: Number(setup[2]),
    requests: Number(total[1]),
    seconds: parseDuration(`${total[2]}${total[3]}`) / 1_000_000,
    requestsPerSecond: Number(rps[1]),
    p50Us: distribution(50),
    p75Us: distribution(75),
    p90Us: distribution(90),
    p99Us: distribution(99),
    meanUs: parseDuration(latency[1]!),
    maxUs: parseDuration(latency[3]!),
    non2xx: non2xx === null ? 0 : Number(non2xx[1]),
    socketErrors:
      socket === null
        ? { connect: 0, read: 0, write: 0, timeout: 0 }
        : { connect: Number(socket[1]), read: Number(socket[2]), write: Number(socket[3]), timeout: Number(socket[4]) },
  };
}

/** Extra time past the run's duration before wrk is killed as hung. */
const WRK_GRACE_MS = 30_000;

/** wrk's arguments (without the taskset prefix). */
export function wrkArgs(options: WrkOptions): string[] {
  const args = ['-t', String(options.threads), '-c', String(options.connections), '-d', `${options.durationSeconds}s`, '--latency', '--timeout', '10s'];
  if (options.hostHeader !== undefined) args.push('-H', `Host: ${options.hostHeader}`);
  args.push(options.url);
  return args;
}

/** Runs wrk to the end; `onStart` gets its pid (to measure its CPU with the window's other processes). */
export async function runWrk(processes: Processes, options: WrkOptions, onStart?: (pid: number) => void): Promise<WrkResult> {
  const wrk = processes.spawn('wrk', options.wrk, wrkArgs(options), { core: options.core });
  if (onStart !== undefined && wrk.child.pid !== undefined) onStart(wrk.child.pid);
  const timer = setTimeout(() => wrk.child.kill('SIGKILL'), options.durationSeconds * 1000 + WRK_GRACE_MS);
  await wrk.exit;
  clearTimeout(timer);
  if (wrk.exitCode !== 0) throw new Error(`wrk exited with ${wrk.describeExit()}: ${wrk.tail.slice(0, 2000)}`);
  return parseWrkOutput(wrk.tail);
}
