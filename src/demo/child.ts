/**
 * One child process of the demo: spawned in a process group of its own (so
 * a stop reaches whatever it starts, and the terminal's Ctrl-C reaches only
 * the demo, which then stops children in order), ready when it prints the
 * line `ready` recognises, within a deadline. Its output is kept as a
 * bounded tail for error messages (and passed to `onLine` when given).
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { createInterface } from 'node:readline';
import { notReady } from './errors.js';

export interface ChildSpec<Ready> {
  /** What people call it in messages: `collector`, `reviews-v3 proxy`. */
  readonly label: string;
  readonly command: string;
  readonly args: readonly string[];
  readonly env: NodeJS.ProcessEnv;
  /** Parses a stdout line; a value means ready. */
  readonly ready: (line: string) => Ready | undefined;
  readonly readyTimeoutMs: number;
  /** Told of the child right after it was spawned, before it is ready: whoever must stop it on Ctrl-C. */
  readonly onSpawn?: (child: ManagedChild) => void;
}

export interface ChildExit {
  readonly code: number | null;
  readonly signal: NodeJS.Signals | null;
}

const MAX_TAIL_CHARS = 8_000;

export class ManagedChild {
  readonly label: string;
  readonly process: ChildProcess;
  readonly pid: number;
  /** The program and its arguments, as spawned (the state file records them; leftovers.ts matches them). */
  readonly command: readonly string[];
  /** Resolves when the process has exited, for whatever reason. */
  readonly exited: Promise<ChildExit>;
  private tailText = '';
  private stopping = false;

  private constructor(label: string, child: ChildProcess, command: readonly string[]) {
    this.label = label;
    this.process = child;
    this.pid = child.pid ?? -1;
    this.command = command;
    this.exited = new Promise<ChildExit>((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  }

  /** Spawns the child and resolves with what its ready line said; rejects naming the child when it exits or stays silent. */
  static async start<Ready>(spec: ChildSpec<Ready>): Promise<{ child: ManagedChild; ready: Ready }> {
    const proc = spawn(spec.command, [...spec.args], { env: spec.env, stdio: ['ignore', 'pipe', 'pipe'], detached: true });
    if (proc.pid === undefined) {
      // Spawning failed (ENOENT, EACCES): the reason comes as an 'error' event.
      const reason = await new Promise<string>((resolve) => proc.once('error', (err) => resolve(err.message)));
      throw notReady(`${spec.label}: cannot start ${spec.command}: ${reason}`);
    }
    proc.on('error', () => undefined);
    const child = new ManagedChild(spec.label, proc, [spec.command, ...spec.args]);
    spec.onSpawn?.(child);
    proc.stderr?.on('data', (chunk: Buffer) => child.append(chunk.toString('utf8')));
    const ready = await new Promise<Ready>((resolve, reject) => {
      const timer = setTimeout(() => {
        reject(notReady(`${spec.label} did not come up within ${spec.readyTimeoutMs / 1000} s; its last output:\n${child.tail()}`));
      }, spec.readyTimeoutMs);
      void child.exited.then((exit) => {
        clearTimeout(timer);
        reject(notReady(`${spec.label} exited (${describeExit(exit)}) before it was ready; its last output:\n${child.tail()}`));
      });
      let found = false;
      createInterface({ input: proc.stdout! }).on('line', (line) => {
        child.append(`${line}\n`);
        if (found) return;
        const value = spec.ready(line);
        if (value === undefined) return;
        found = true;
        clearTimeout(timer);
        resolve(value);
      });
    }).catch(async (err: unknown) => {
      await child.stop(2_000);
      throw err;
    });
    return { child, ready };
  }

  get running(): boolean {
    return this.process.exitCode === null && this.process.signalCode === null;
  }

  /** True once stop() was called: an exit after that is expected, not a crash. */
  get stopRequested(): boolean {
    return this.stopping;
  }

  tail(): string {
    return this.tailText.trimEnd() || '(nothing)';
  }

  /** SIGTERM to the child's process group, SIGKILL to it after `graceMs`; resolves when the child has exited. */
  async stop(graceMs: number): Promise<ChildExit> {
    this.stopping = true;
    if (!this.running) return this.exited;
    this.signalGroup('SIGTERM');
    const killer = setTimeout(() => this.signalGroup('SIGKILL'), graceMs);
    const exit = await this.exited;
    clearTimeout(killer);
    // Anything the child started and left behind in its group.
    this.signalGroup('SIGKILL');
    return exit;
  }

  private signalGroup(signal: NodeJS.Signals): void {
    try {
      process.kill(-this.pid, signal);
    } catch {
      // ESRCH: the group is gone already.
    }
  }

  private append(text: string): void {
    this.tailText = (this.tailText + text).slice(-MAX_TAIL_CHARS);
  }
}

export function describeExit(exit: ChildExit): string {
  return exit.signal !== null ? `signal ${exit.signal}` : `exit code ${exit.code ?? '?'}`;
}
