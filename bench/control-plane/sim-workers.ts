/**
 * The simulated proxies of one benchmark row, spread over several worker
 * processes (sim-worker.ts), indexes split evenly. Pinned with taskset to
 * the cores given (the control plane has its own), when taskset is there.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { FromWorker, ToWorker } from './messages.js';

const WORKER = path.join(path.dirname(fileURLToPath(import.meta.url)), 'sim-worker.js');
const CLOSE_GRACE_MS = 5_000;

export class SimulatedProxyWorkers {
  /** Each proxy's last ACKed version, by index. */
  readonly lastVersion: string[];
  private readonly workers: ChildProcess[] = [];
  private readonly waiting = new Map<ChildProcess, (message: FromWorker) => void>();

  constructor(
    private readonly count: number,
    workers: number,
    taskset: string | undefined,
    cores: string | undefined,
    /** Every answered ACK: proxy index, version, when (performance.timeOrigin + performance.now()). */
    private readonly onAck: (index: number, version: string, atMs: number) => void,
  ) {
    this.lastVersion = new Array<string>(count).fill('');
    for (let i = 0; i < Math.min(workers, count); i++) {
      const stdio: ['ignore', 'inherit', 'inherit', 'ipc'] = ['ignore', 'inherit', 'inherit', 'ipc'];
      const child = taskset !== undefined && cores !== undefined ? spawn(taskset, ['-c', cores, process.execPath, WORKER], { stdio }) : spawn(process.execPath, [WORKER], { stdio });
      child.on('message', (message: FromWorker) => {
        if (message.type === 'acks') {
          for (const [index, version, at] of message.acks) {
            this.lastVersion[index] = version;
            this.onAck(index, version, at);
          }
          return;
        }
        const waiter = this.waiting.get(child);
        this.waiting.delete(child);
        waiter?.(message);
      });
      this.workers.push(child);
    }
  }

  /** Registers every simulated proxy and opens its stream; resolves when each has ACKed its first snapshot. */
  async connect(port: number, batch: number): Promise<void> {
    const per = Math.ceil(this.count / this.workers.length);
    const answers = this.workers.map((worker, i) => this.ask(worker, { type: 'connect', port, from: i * per, to: Math.min(this.count, (i + 1) * per), batch: Math.max(1, Math.ceil(batch / this.workers.length)) }));
    for (const answer of await Promise.all(answers)) {
      if (answer.type === 'failed') throw new Error(`a simulated-proxy worker failed: ${answer.message}`);
    }
  }

  /** A few simulated proxies' problems ('' lines left out), for a timed-out apply's message. */
  async problems(): Promise<string[]> {
    const answers = await Promise.all(this.workers.map((worker) => this.ask(worker, { type: 'problems' })));
    return answers.flatMap((answer) => (answer.type === 'problems' ? answer.problems : []));
  }

  async close(): Promise<void> {
    await Promise.all(
      this.workers.map(async (worker) => {
        if (worker.exitCode !== null || worker.signalCode !== null) return;
        const gone = new Promise<void>((resolve) => worker.once('exit', () => resolve()));
        const timer = setTimeout(() => worker.kill('SIGKILL'), CLOSE_GRACE_MS);
        if (worker.connected) worker.send({ type: 'close' } satisfies ToWorker);
        else worker.kill('SIGKILL');
        await gone;
        clearTimeout(timer);
      }),
    );
  }

  private ask(worker: ChildProcess, message: ToWorker): Promise<FromWorker> {
    return new Promise((resolve, reject) => {
      const onExit = (code: number | null): void => reject(new Error(`a simulated-proxy worker exited (${String(code)})`));
      worker.once('exit', onExit);
      this.waiting.set(worker, (answer) => {
        worker.off('exit', onExit);
        resolve(answer);
      });
      worker.send(message);
    });
  }
}
