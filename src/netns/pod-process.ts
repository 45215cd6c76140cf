/**
 * A long-running program inside a pod: spawned in a process group of its own
 * (so stop() reaches its children too), output captured, with readiness waits
 * that always end (a line, a listening port, or the deadline / the process's
 * exit, whichever comes first) and a stop that escalates SIGTERM → SIGKILL.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createWriteStream, readFileSync } from 'node:fs';
import type { WriteStream } from 'node:fs';
import { tmpdir } from 'node:os';
import { NetnsError } from './netns-error.js';
import { OutputCapture } from './output-capture.js';
import type { StreamName } from './output-capture.js';
import { podCommandLine } from './pod-command.js';
import type { PodCommandSpec } from './pod-command.js';
import { listeningPorts } from './proc-net-tcp.js';
import type { ProcessUser } from './process-user.js';
import { isRoot } from './process-user.js';

export interface ExitStatus {
  code: number | null;
  signal: NodeJS.Signals | null;
}

export interface PodProcessLaunch {
  /** Resolved command line parts (see podCommandLine). */
  spec: PodCommandSpec;
  /** Added to a clean base environment (PATH and HOME only: nothing of the caller's proxy or NODE_OPTIONS leaks in). */
  env: Readonly<Record<string, string>>;
  cwd: string | undefined;
  /** Also append everything the process prints to this file. */
  logFile: string | undefined;
  /** Written to stdin, which is then closed; without it stdin is /dev/null. */
  input: string | undefined;
  /** Names the process in errors, e.g. `b:node`. */
  label: string;
}

const PORT_POLL_MS = 50;
const KILL_WAIT_MS = 5_000;
const TAIL_CHARS = 2_000;

/** PATH and HOME; a non-root process gets the temp dir as HOME because root's is not its to write. */
export function baseEnv(user: ProcessUser): Record<string, string> {
  return {
    PATH: process.env['PATH'] ?? '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin',
    HOME: isRoot(user) ? (process.env['HOME'] ?? '/root') : tmpdir(),
  };
}

function tail(text: string): string {
  return text.length > TAIL_CHARS ? `…${text.slice(-TAIL_CHARS)}` : text;
}

function describeExit(status: ExitStatus): string {
  return status.signal !== null ? `was killed by ${status.signal}` : `exited with code ${status.code}`;
}

export class PodProcess {
  readonly pid: number;
  readonly label: string;
  /** Resolves once the process has exited and its output streams are closed. */
  readonly exited: Promise<ExitStatus>;
  private status: ExitStatus | undefined;
  private readonly capture = new OutputCapture();
  private readonly child: ChildProcess;
  private readonly log: WriteStream | undefined;

  constructor(launch: PodProcessLaunch) {
    this.label = launch.label;
    const line = podCommandLine(launch.spec);
    this.child = spawn(line.file, line.args, {
      detached: true,
      cwd: launch.cwd,
      env: { ...baseEnv(launch.spec.user), ...launch.env },
      stdio: [launch.input === undefined ? 'ignore' : 'pipe', 'pipe', 'pipe'],
    });
    // Before anything can throw: an 'error' event with no listener would crash the caller's process.
    this.child.on('error', (err) => this.capture.push('stderr', `spawn error: ${err.message}\n`));
    if (this.child.pid === undefined) {
      throw new NetnsError('TM_ERR_NETNS_PROCESS', `${this.label}: could not start ${line.file} ${line.args.join(' ')}`);
    }
    this.pid = this.child.pid;
    this.log = launch.logFile === undefined ? undefined : createWriteStream(launch.logFile, { flags: 'a' });
    // A log file that cannot be written must not crash the caller; the output is still captured.
    this.log?.on('error', () => undefined);
    this.collect('stdout');
    this.collect('stderr');
    if (launch.input !== undefined && this.child.stdin !== null) {
      this.child.stdin.on('error', () => undefined);
      this.child.stdin.end(launch.input);
    }
    this.exited = new Promise<ExitStatus>((resolve) => {
      let exitStatus: ExitStatus = { code: null, signal: null };
      this.child.once('exit', (code, signal) => {
        exitStatus = { code, signal };
      });
      this.child.once('close', () => {
        this.status = exitStatus;
        // The log file is complete once `exited` resolves (a stream that failed is already closed).
        const log = this.log;
        if (log === undefined || log.closed) {
          resolve(exitStatus);
          return;
        }
        log.once('close', () => resolve(exitStatus));
        log.end();
      });
    });
  }

  private collect(stream: StreamName): void {
    const readable = this.child[stream];
    if (readable === null) return;
    readable.setEncoding('utf8');
    readable.on('data', (chunk: string) => {
      this.capture.push(stream, chunk);
      this.log?.write(chunk);
    });
    readable.on('end', () => this.capture.end(stream));
  }

  /** Undefined while running. */
  exitStatus(): ExitStatus | undefined {
    return this.status;
  }

  /** What it printed so far (both streams interleaved, or one), bounded to the last 256 KiB. */
  output(stream?: StreamName): string {
    return this.capture.text(stream);
  }

  /** Resolves with the first line (stdout or stderr) matching `pattern`; rejects at the deadline or if the process exits first. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<string> {
    const seen = this.capture.findLine(pattern);
    if (seen !== undefined) return Promise.resolve(seen);
    return new Promise<string>((resolve, reject) => {
      const finish = (err: Error | undefined, line?: string): void => {
        clearTimeout(timer);
        unsubscribe();
        if (err !== undefined) reject(err);
        else resolve(line ?? '');
      };
      const unsubscribe = this.capture.onLine((line) => {
        if (pattern.test(line)) finish(undefined, line);
      });
      const timer = setTimeout(
        () => finish(this.failure(`printed no line matching ${pattern} within ${timeoutMs} ms`)),
        timeoutMs,
      );
      void this.exited.then((status) => finish(this.failure(`${describeExit(status)} before printing a line matching ${pattern}`)));
    });
  }

  /** Resolves once something in the pod listens on TCP `port` (IPv4 or IPv6); rejects at the deadline or if the process exits first. */
  async waitForPort(port: number, timeoutMs: number): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const status = this.status;
      if (status !== undefined) throw this.failure(`${describeExit(status)} before listening on port ${port}`);
      if (this.listensOn(port)) return;
      if (Date.now() >= deadline) throw this.failure(`did not listen on port ${port} within ${timeoutMs} ms`);
      await new Promise((resolve) => setTimeout(resolve, PORT_POLL_MS));
    }
  }

  private listensOn(port: number): boolean {
    for (const file of ['tcp', 'tcp6']) {
      try {
        if (listeningPorts(readFileSync(`/proc/${this.pid}/net/${file}`, 'utf8')).has(port)) return true;
      } catch {
        // the process is exiting (its /proc entry is going), or the kernel lacks IPv6
      }
    }
    return false;
  }

  private failure(what: string): NetnsError {
    return new NetnsError('TM_ERR_NETNS_PROCESS', `${this.label} (pid ${this.pid}) ${what}; output:\n${tail(this.output())}`);
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // the group is gone
    }
  }

  /**
   * SIGTERM to the whole process group, SIGKILL after `graceMs`, then waits
   * for the exit. Safe to call twice and after the process has exited.
   */
  async stop(graceMs = 5_000): Promise<ExitStatus> {
    if (this.status === undefined) {
      this.signalGroup('SIGTERM');
      let timer: NodeJS.Timeout | undefined;
      const graceOver = new Promise<'grace-over'>((resolve) => {
        timer = setTimeout(() => resolve('grace-over'), graceMs);
      });
      const first = await Promise.race([this.exited, graceOver]);
      clearTimeout(timer);
      if (first === 'grace-over') {
        this.signalGroup('SIGKILL');
        let killTimer: NodeJS.Timeout | undefined;
        const killOver = new Promise<'kill-over'>((resolve) => {
          killTimer = setTimeout(() => resolve('kill-over'), KILL_WAIT_MS);
        });
        const second = await Promise.race([this.exited, killOver]);
        clearTimeout(killTimer);
        if (second === 'kill-over') throw this.failure(`did not exit within ${KILL_WAIT_MS} ms of SIGKILL`);
      }
    }
    // Children the leader left behind in its group go too.
    this.signalGroup('SIGKILL');
    return this.exited;
  }

  /** SIGKILL to the group, without waiting: for exit handlers, where nothing asynchronous runs. */
  killNow(): void {
    this.signalGroup('SIGKILL');
  }
}
