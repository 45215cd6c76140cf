/**
 * Every process the benchmark starts, pinned to a core with taskset and
 * tracked, so that a finished run, a failed one and Ctrl-C all stop them.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess, StdioOptions } from 'node:child_process';

/** What is kept of a process's output for error messages. */
const TAIL_BYTES = 8 * 1024;

export interface SpawnOptions {
  /** The core the process and all its threads run on (taskset -c). */
  core: number;
  cwd?: string;
  env?: NodeJS.ProcessEnv;
  /** An IPC channel (for Node children that answer questions). */
  ipc?: boolean;
}

export class ManagedProcess {
  /** The last bytes of stdout and stderr together. */
  tail = '';
  /** Every stdout line is offered to the current line waiters. */
  private readonly lineWaiters = new Set<(line: string) => void>();
  private partialLine = '';
  exitCode: number | null = null;
  exitSignal: NodeJS.Signals | null = null;
  exited = false;
  readonly exit: Promise<void>;

  constructor(
    readonly label: string,
    readonly child: ChildProcess,
    readonly commandLine: string,
  ) {
    this.exit = new Promise((resolve) => {
      child.once('close', (code, signal) => {
        this.exited = true;
        this.exitCode = code;
        this.exitSignal = signal;
        resolve();
      });
      child.once('error', (err) => {
        this.keep(`spawn failed: ${err.message}\n`);
        this.exited = true;
        resolve();
      });
    });
    child.stdout?.on('data', (chunk: Buffer) => this.onStdout(chunk.toString('utf8')));
    child.stderr?.on('data', (chunk: Buffer) => this.keep(chunk.toString('utf8')));
  }

  get pid(): number {
    const pid = this.child.pid;
    if (pid === undefined) throw new Error(`${this.label}: not started (${this.tail.trim() || 'no pid'})`);
    return pid;
  }

  private keep(text: string): void {
    this.tail = (this.tail + text).slice(-TAIL_BYTES);
  }

  private onStdout(text: string): void {
    this.keep(text);
    const lines = (this.partialLine + text).split('\n');
    this.partialLine = (lines.pop() ?? '').slice(-TAIL_BYTES);
    for (const line of lines) for (const waiter of this.lineWaiters) waiter(line);
  }

  /** Resolves with the first stdout line matching `pattern`; rejects if the process exits first or at the deadline. */
  waitForLine(pattern: RegExp, timeoutMs: number): Promise<RegExpExecArray> {
    return new Promise((resolve, reject) => {
      const done = (): void => {
        clearTimeout(timer);
        this.lineWaiters.delete(onLine);
      };
      const onLine = (line: string): void => {
        const match = pattern.exec(line);
        if (match === null) return;
        done();
        resolve(match);
      };
      const timer = setTimeout(() => {
        done();
        reject(new Error(`${this.label}: no line matching ${pattern} within ${timeoutMs} ms; output: ${this.tail.trim().slice(-2000)}`));
      }, timeoutMs);
      this.lineWaiters.add(onLine);
      void this.exit.then(() => {
        if (!this.lineWaiters.has(onLine)) return;
        done();
        reject(new Error(`${this.label} exited (${this.describeExit()}) before it was ready; output: ${this.tail.trim().slice(-2000)}`));
      });
    });
  }

  describeExit(): string {
    if (!this.exited) return 'running';
    return this.exitSignal !== null ? `signal ${this.exitSignal}` : `code ${this.exitCode}`;
  }

  /** SIGTERM, then SIGKILL after `graceMs`. Safe to call twice and after exit. */
  async stop(graceMs = 5_000): Promise<void> {
    if (this.exited || this.child.pid === undefined) return;
    this.child.kill('SIGTERM');
    const timer = setTimeout(() => this.child.kill('SIGKILL'), graceMs);
    await this.exit;
    clearTimeout(timer);
  }
}

export class Processes {
  private readonly running = new Set<ManagedProcess>();

  spawn(label: string, command: string, args: readonly string[], options: SpawnOptions): ManagedProcess {
    const stdio: StdioOptions = options.ipc === true ? ['ignore', 'pipe', 'pipe', 'ipc'] : ['ignore', 'pipe', 'pipe'];
    // taskset execs the command in place: the pid is the command's, and every thread it creates inherits the core.
    const child = spawn('taskset', ['-c', String(options.core), command, ...args], {
      cwd: options.cwd,
      env: options.env ?? process.env,
      stdio,
    });
    const managed = new ManagedProcess(label, child, `taskset -c ${options.core} ${command} ${args.join(' ')}`);
    this.running.add(managed);
    void managed.exit.then(() => this.running.delete(managed));
    return managed;
  }

  /** Stops every tracked process that is still running. */
  async stopAll(graceMs = 5_000): Promise<void> {
    await Promise.all([...this.running].map((p) => p.stop(graceMs)));
  }

  /** Last resort on process exit: SIGKILL without waiting. */
  killAllNow(): void {
    for (const p of this.running) if (!p.exited) p.child.kill('SIGKILL');
  }
}
