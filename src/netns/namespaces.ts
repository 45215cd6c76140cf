import { existsSync } from 'node:fs';
import { runCommand } from './run-command.js';

/** Where `ip netns add` mounts a named namespace. */
const RUN_NETNS_DIR = '/run/netns';

/** The named network namespaces (`ip netns list` prints `name` or `name (id: 3)`). */
export function listNamespaces(): string[] {
  return runCommand('ip', ['netns', 'list'])
    .split('\n')
    .map((line) => line.trim().split(/\s+/)[0] ?? '')
    .filter((name) => name !== '');
}

export function namespaceExists(name: string): boolean {
  return existsSync(`${RUN_NETNS_DIR}/${name}`);
}

export function addNamespace(name: string): void {
  runCommand('ip', ['netns', 'add', name]);
}

/** The processes whose network namespace is `name` (zombies are not listed: they have left it). */
export function pidsIn(name: string): number[] {
  if (!namespaceExists(name)) return [];
  return runCommand('ip', ['netns', 'pids', name])
    .split('\n')
    .map((line) => Number(line.trim()))
    .filter((pid) => Number.isInteger(pid) && pid > 0);
}

/** SIGKILLs every process in the namespace: a namespace only goes away once nothing runs in it. */
export function killAllIn(name: string): number[] {
  const pids = pidsIn(name);
  for (const pid of pids) {
    try {
      process.kill(pid, 'SIGKILL');
    } catch {
      // already gone
    }
  }
  return pids;
}

/**
 * Kills what runs in the namespace, then deletes it; the veth ends and the
 * bridge inside go with it. A namespace that is already gone is not an error,
 * so teardown can run twice.
 */
export function deleteNamespace(name: string): void {
  if (!namespaceExists(name)) return;
  killAllIn(name);
  runCommand('ip', ['netns', 'del', name]);
}
