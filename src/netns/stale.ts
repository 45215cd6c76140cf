/**
 * Leftovers of a run that died without tearing down (SIGKILL, a crash, a
 * power cut): namespaces, /etc/netns dirs and run-time dirs whose names carry
 * an owner pid that is no longer alive. A live owner's things are never
 * touched, so parallel runs with the same base are safe.
 */
import { readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { listNetnsEtc } from './etc-netns.js';
import { listNamespaces } from './namespaces.js';
import { BASE_PATTERN, ownerPidOf } from './names.js';
import { NetnsError } from './netns-error.js';
import { removeNamespaceAndFiles } from './owned-resources.js';
import { RUNTIME_DIR_LEAD } from './runtime-dir.js';

/** A zombie counts as dead: it runs no more, it only waits for a parent to reap it (pid 1 in a container may never do). */
function isZombie(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return false;
  }
}

export function isProcessAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists but belongs to someone else.
    if ((err as NodeJS.ErrnoException).code !== 'EPERM') return false;
  }
  return !isZombie(pid);
}

/** Removes what dead owners of `base` left behind; returns the names removed. */
export function cleanupStale(base: string, isAlive: (pid: number) => boolean = isProcessAlive): string[] {
  if (!BASE_PATTERN.test(base)) {
    throw new NetnsError('TM_ERR_NETNS_BAD_SPEC', `base '${base}' is not 1-8 lowercase letters and digits starting and ending with a letter`);
  }
  const isStale = (name: string): boolean => {
    const pid = ownerPidOf(base, name);
    return pid !== undefined && !isAlive(pid);
  };
  const removed: string[] = [];
  for (const name of new Set([...listNamespaces(), ...listNetnsEtc()])) {
    if (!isStale(name)) continue;
    removeNamespaceAndFiles(name);
    removed.push(name);
  }
  for (const entry of readdirSync(tmpdir())) {
    if (!entry.startsWith(RUNTIME_DIR_LEAD) || !isStale(entry.slice(RUNTIME_DIR_LEAD.length))) continue;
    rmSync(path.join(tmpdir(), entry), { recursive: true, force: true });
    removed.push(path.join(tmpdir(), entry));
  }
  return removed;
}
