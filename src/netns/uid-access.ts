/**
 * Can a given uid reach a path? The sidecar runs as uid 1337 and must read the
 * project (dist/, node_modules/). Asked of the kernel itself (`test -x` run as
 * that uid), so ACLs and group membership count exactly as they will for the
 * process.
 */
import { statSync } from 'node:fs';
import path from 'node:path';
import { NetnsError } from './netns-error.js';
import type { ProcessUser } from './process-user.js';
import { isRoot } from './process-user.js';
import { runCommand } from './run-command.js';

/** `/a/b/c` → `['/', '/a', '/a/b']`: the directories a process must search to reach the path. */
export function ancestorsOf(target: string): string[] {
  const out: string[] = [];
  let dir = path.dirname(path.resolve(target));
  for (;;) {
    out.unshift(dir);
    const parent = path.dirname(dir);
    if (parent === dir) return out;
    dir = parent;
  }
}

const FIRST_CLOSED = 'for d in "$@"; do test -x "$d" || { printf "%s\\n" "$d"; exit 0; }; done';

/** The highest ancestor directory of `target` that `user` cannot search, or undefined when every one is open. */
export function closedAncestorFor(target: string, user: ProcessUser): string | undefined {
  if (isRoot(user)) return undefined;
  const out = runCommand('setpriv', [
    '--reuid', String(user.uid), '--regid', String(user.gid), '--clear-groups', '--',
    'sh', '-c', FIRST_CLOSED, 'tracemesh-access', ...ancestorsOf(target),
  ]).trim();
  return out === '' ? undefined : out;
}

/** Permission bits `user` gets on a file of this owner and mode (the classic owner/group/other rule). */
export function permissionBitsFor(user: ProcessUser, owner: { uid: number; gid: number }, mode: number): number {
  if (owner.uid === user.uid) return (mode >> 6) & 7;
  if (owner.gid === user.gid) return (mode >> 3) & 7;
  return mode & 7;
}

/**
 * Throws unless `user` may read (and, for a directory, search) `target`
 * itself. A mount can make a path reachable but cannot change its own mode,
 * so this is what no reveal can fix: the message says what to change.
 */
export function assertOwnModeAllows(target: string, user: ProcessUser): void {
  if (isRoot(user)) return;
  const stats = statSync(target);
  const bits = permissionBitsFor(user, { uid: stats.uid, gid: stats.gid }, stats.mode);
  const needed = stats.isDirectory() ? 5 : 4;
  if ((bits & needed) !== needed) {
    const mode = (stats.mode & 0o7777).toString(8).padStart(4, '0');
    throw new NetnsError(
      'TM_ERR_NETNS_ACCESS',
      `uid ${user.uid} cannot read ${target} (mode ${mode}, owner ${stats.uid}:${stats.gid}); ` +
        'the project must be readable by others (a checkout made with umask 022)',
    );
  }
}
