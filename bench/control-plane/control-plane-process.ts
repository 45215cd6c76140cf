/**
 * The control plane under test, in a process of its own so that its CPU
 * (process.cpuUsage) and RSS are its own and not the simulated proxies'.
 * Started by run.ts with an IPC channel: it answers `usage` with its
 * figures and stops on `stop`.
 *
 *   node control-plane-process.js dir DIR | etcd URL PREFIX
 */
import { ControlPlane, DEFAULT_CONTROL_PLANE_TIMING } from '../../src/control-plane/server.js';
import { DirectoryConfigStore } from '../../src/control-plane/store/directory-store.js';
import { EtcdConfigStore } from '../../src/control-plane/store/etcd-store.js';
import type { ConfigStore } from '../../src/control-plane/store/types.js';
import type { ChildMessage, ParentMessage } from './messages.js';

function storeFromArgs(argv: readonly string[]): ConfigStore {
  const [kind, where, prefix] = argv;
  if (kind === 'dir' && where !== undefined) return new DirectoryConfigStore({ dir: where });
  if (kind === 'etcd' && where !== undefined && prefix !== undefined) return new EtcdConfigStore({ urls: [where], prefix });
  throw new Error(`usage: control-plane-process.js dir DIR | etcd URL PREFIX (got ${argv.join(' ')})`);
}

function tell(message: ChildMessage): void {
  process.send?.(message);
}

async function main(): Promise<void> {
  const controlPlane = new ControlPlane({
    ...DEFAULT_CONTROL_PLANE_TIMING,
    // Every run starts from nothing: no proxy has a configuration to lose.
    startupGraceMs: 0,
    store: storeFromArgs(process.argv.slice(2)),
    host: '127.0.0.1',
    port: 0,
    maxProxies: 20_000,
    log: (message) => process.stderr.write(`control plane: ${message}\n`),
  });
  await controlPlane.start();
  process.on('message', (message: ParentMessage) => {
    if (message.type === 'usage') {
      const cpu = process.cpuUsage();
      tell({ type: 'usage', userMicros: cpu.user, systemMicros: cpu.system, rssBytes: process.memoryUsage().rss });
    } else if (message.type === 'stop') {
      void controlPlane.stop().then(() => process.exit(0));
    }
  });
  tell({ type: 'ready', port: controlPlane.port });
}

main().catch((err: unknown) => {
  process.stderr.write(`control plane did not start: ${err instanceof Error ? err.stack ?? err.message : String(err)}\n`);
  process.exit(1);
});
