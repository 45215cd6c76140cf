/**
 * A throwaway etcd (Debian's etcd-server, /usr/bin/etcd) for the benchmark
 * and the system tests: on 127.0.0.1 with free client and peer ports and a
 * temp data dir, ready once its /health answers; killed and restarted on the
 * same ports and data; and always removed (process and data) by stop(), also
 * when the process exits. One starter for both, so the flags and the
 * readiness check cannot drift apart.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ETCD_BINARY = '/usr/bin/etcd';
const READY_TIMEOUT_MS = 20_000;
const OUTPUT_TAIL_BYTES = 4_000;

const running = new Set<ChildProcess>();
process.once('exit', () => {
  for (const child of running) child.kill('SIGKILL');
});

export function etcdAvailable(): boolean {
  return existsSync(ETCD_BINARY);
}

/** Fails with one line saying what to install when the binary is missing. */
export function requireEtcdBinary(): void {
  if (!etcdAvailable()) throw new Error(`${ETCD_BINARY} is missing: apt-get install etcd-server is needed for this test`);
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

export interface EtcdServer {
  readonly url: string;
  readonly dataDir: string;
  /** SIGKILL, as a crash: returns once the process is gone. */
  kill(): Promise<void>;
  /** Starts again on the same ports and data; resolves when healthy. */
  restart(): Promise<void>;
  /** Kills it and removes its data. Safe twice. */
  stop(): Promise<void>;
}

export interface EtcdOptions {
  /** Runs etcd through this command, e.g. ['taskset', '-c', '0'] to pin it to a core. */
  readonly commandPrefix?: readonly string[];
}

class EtcdProcess implements EtcdServer {
  readonly url: string;
  private child: ChildProcess | undefined = undefined;
  private output = '';
  private stopped = false;

  constructor(
    private readonly name: string,
    readonly dataDir: string,
    private readonly clientPort: number,
    private readonly peerPort: number,
    private readonly commandPrefix: readonly string[],
  ) {
    this.url = `http://127.0.0.1:${clientPort}`;
  }

  async launch(): Promise<void> {
    const peerUrl = `http://127.0.0.1:${this.peerPort}`;
    const etcdArgs = [
      '--name', this.name,
      '--data-dir', this.dataDir,
      '--listen-client-urls', this.url,
      '--advertise-client-urls', this.url,
      '--listen-peer-urls', peerUrl,
      '--initial-advertise-peer-urls', peerUrl,
      '--initial-cluster', `${this.name}=${peerUrl}`,
      '--initial-cluster-state', 'new',
    ];
    const [command, ...args] = [...this.commandPrefix, ETCD_BINARY, ...etcdArgs] as [string, ...string[]];
    const child = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    this.child = child;
    running.add(child);
    const keep = (chunk: Buffer): void => {
      this.output = (this.output + chunk.toString()).slice(-OUTPUT_TAIL_BYTES);
    };
    child.stdout?.on('data', keep);
    child.stderr?.on('data', keep);
    let exited: string | undefined;
    child.once('exit', (code, signal) => {
      running.delete(child);
      exited = `exited (${signal ?? code})`;
    });
    const deadline = Date.now() + READY_TIMEOUT_MS;
    while (Date.now() < deadline) {
      if (exited !== undefined) throw new Error(`etcd ${exited} before it was ready:\n${this.output}`);
      const healthy = await fetch(`${this.url}/health`, { signal: AbortSignal.timeout(1_000) })
        .then(async (response) => response.ok && ((await response.json()) as { health?: string }).health === 'true')
        .catch(() => false);
      if (healthy) return;
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
    throw new Error(`etcd at ${this.url} not healthy within ${READY_TIMEOUT_MS} ms:\n${this.output}`);
  }

  async kill(): Promise<void> {
    const child = this.child;
    this.child = undefined;
    if (child === undefined || child.exitCode !== null || child.signalCode !== null) return;
    const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGKILL');
    await gone;
  }

  async restart(): Promise<void> {
    await this.kill();
    await this.launch();
  }

  async stop(): Promise<void> {
    if (this.stopped) return;
    this.stopped = true;
    await this.kill();
    rmSync(this.dataDir, { recursive: true, force: true });
  }
}

/** Starts an etcd; `tag` goes into its name and data dir (with the pid, so parallel runs do not meet). */
export async function startEtcd(tag: string, options: EtcdOptions = {}): Promise<EtcdServer> {
  requireEtcdBinary();
  let lastError: unknown;
  // Free ports are found by binding and releasing them; another process may take one in between: try again.
  for (let attempt = 0; attempt < 3; attempt++) {
    const dataDir = mkdtempSync(path.join(tmpdir(), `tracemesh-etcd-${tag}-`));
    const server = new EtcdProcess(`${tag}-${process.pid}`, dataDir, await freePort(), await freePort(), options.commandPrefix ?? []);
    try {
      await server.launch();
      return server;
    } catch (err) {
      lastError = err;
      await server.stop();
    }
  }
  throw lastError;
}

/** The benchmark's etcd: pinned to the core list `pin` through `taskset` when both are given. */
export function startBenchEtcd(taskset: string | undefined, pin: string | undefined): Promise<EtcdServer> {
  const commandPrefix = taskset !== undefined && pin !== undefined ? [taskset, '-c', pin] : [];
  return startEtcd('bench', { commandPrefix });
}
