import { mkdirSync, readdirSync, rmdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NetnsError } from './netns-error.js';

/** `ip netns exec <ns>` bind-mounts each file of /etc/netns/<ns>/ over the same name in /etc. */
export const ETC_NETNS_DIR = '/etc/netns';

function makeOwnDir(dir: string): void {
  mkdirSync(ETC_NETNS_DIR, { recursive: true, mode: 0o755 });
  mkdirSync(dir, { mode: 0o755 });
}

/**
 * Creates /etc/netns/<ns>/ (which must not exist yet: a directory this run did
 * not make is never written or removed).
 */
export function makeNetnsEtcDir(ns: string): void {
  const dir = path.join(ETC_NETNS_DIR, ns);
  try {
    makeOwnDir(dir);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'EEXIST') throw new NetnsError('TM_ERR_NETNS_EXISTS', `${dir} already exists and was not made by this run`, { cause: err });
    // Another run removed an empty /etc/netns between our two mkdirs: once more is enough.
    if (code === 'ENOENT') makeOwnDir(dir);
    else throw err;
  }
}

/** Writes the per-namespace /etc files (hosts, resolv.conf), readable by every uid in the pod. */
export function writeNetnsEtc(ns: string, files: ReadonlyMap<string, string>): void {
  for (const [name, text] of files) writeFileSync(path.join(ETC_NETNS_DIR, ns, name), text, { mode: 0o644 });
}

/** Removes /etc/netns/<ns>, and /etc/netns itself when nothing else is left in it. Safe when absent. */
export function removeNetnsEtc(ns: string): void {
  rmSync(path.join(ETC_NETNS_DIR, ns), { recursive: true, force: true });
  try {
    rmdirSync(ETC_NETNS_DIR);
  } catch {
    // not empty (another namespace's files) or already gone: leave it
  }
}

/** The namespaces that have an /etc/netns directory. */
export function listNetnsEtc(): string[] {
  try {
    return readdirSync(ETC_NETNS_DIR);
  } catch {
    return [];
  }
}
