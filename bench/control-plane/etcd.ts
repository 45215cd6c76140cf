/**
 * A throwaway etcd for the benchmark (Debian's etcd-server): loopback, free
 * ports, a temp data dir; stop() kills it and removes the data.
 */
import { spawn } from 'node:child_process';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';

export const ETCD_BINARY = '/usr/bin/etcd';
const READY_TIMEOUT_MS = 20_000;

export function etcdAvailable(): boolean {
  return existsSync(ETCD_BINARY);
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

export interface BenchEtcd {
  readonly url: string;
  readonly pid: number;
  stop(): Promise<void>;
}

/** `pin`: a taskset core list ('0') or undefined. */
export async function startBenchEtcd(taskset: string | undefined, pin: string | undefined): Promise<BenchEtcd> {
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-bench-etcd-'));
  const client = await freePort();
  const peer = await freePort();
  const url = `http://127.0.0.1:${client}`;
  const peerUrl = `http://127.0.0.1:${peer}`;
  const args = ['--name', `bench-${process.pid}`, '--data-dir', dataDir, '--listen-client-urls', url, '--advertise-client-urls', url, '--listen-peer-urls', peerUrl, '--initial-advertise-peer-urls', peerUrl, '--initial-cluster', `bench-${process.pid}=${peerUrl}`];
  const child = taskset !== undefined && pin !== undefined ? spawn(taskset, ['-c', pin, ETCD_BINARY, ...args], { stdio: 'ignore' }) : spawn(ETCD_BINARY, args, { stdio: 'ignore' });
  const stop = async (): Promise<void> => {
    if (child.exitCode === null && child.signalCode === null) {
      const gone = new Promise<void>((resolve) => child.once('exit', () => resolve()));
      child.kill('SIGKILL');
      await gone;
    }
    rmSync(dataDir, { recursive: true, force: true });
  };
  const deadline = Date.now() + READY_TIMEOUT_MS;
  while (Date.now() < deadline) {
    if (child.exitCode !== null) break;
    const healthy = await fetch(`${url}/health`, { signal: AbortSignal.timeout(1_000) })
      .then(async (res) => res.ok && ((await res.json()) as { health?: string }).health === 'true')
      .catch(() => false);
    if (healthy) return { url, pid: child.pid ?? 0, stop };
    await new Promise((resolve) => setTimeout(resolve, 100));
  }
  await stop();
  throw new Error(`etcd at ${url} was not healthy within ${READY_TIMEOUT_MS} ms`);
}
