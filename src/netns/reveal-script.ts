/**
 * Making a directory reachable for a non-root pod process when a directory
 * above it is closed to that uid (a checkout under /root, mode 0700), without
 * changing anything the host sees: no chmod, no ACL, no copy.
 *
 * `ip netns exec` already gives the child a mount namespace of its own (slave
 * to the host's, so nothing propagates back). Inside it, before dropping root,
 * the script bind-mounts each revealed path read-only to a stash directory,
 * covers the closed ancestor with an empty tmpfs (mode 0755), recreates the
 * path on it and moves the bind mount back. The process then sees the
 * revealed paths at their usual absolute paths (so absolute symlinks into them
 * still work) and nothing else of the closed directory.
 */
import path from 'node:path';
import { shellQuote } from './shell-quote.js';

export interface RevealMount {
  /** The directory the process must read (e.g. the project root). */
  path: string;
  /** The highest ancestor of `path` the process's uid cannot search. */
  closedAncestor: string;
}

export function isInside(child: string, parent: string): boolean {
  const rel = path.relative(parent, child);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel);
}

/** The closed ancestors to cover: each once, and none that lies inside another (the outer tmpfs hides it already). */
export function coveredAncestors(mounts: readonly RevealMount[]): string[] {
  const all = [...new Set(mounts.map((m) => m.closedAncestor))];
  return all.filter((dir) => !all.some((other) => other !== dir && isInside(dir, other))).sort();
}

/**
 * The shell script (run as root inside the pod's fresh mount namespace) that
 * ends with `exec "$@"`. `stashDir` must not lie under a covered ancestor.
 */
export function revealScript(mounts: readonly RevealMount[], stashDir: string): string {
  const lines = ['set -e', 'umask 022'];
  mounts.forEach((mount, i) => {
    const stash = shellQuote(path.join(stashDir, `reveal-${i}`));
    lines.push(`mkdir -p ${stash}`);
    lines.push(`mount --bind ${shellQuote(mount.path)} ${stash}`);
    lines.push(`mount -o remount,bind,ro ${stash}`);
  });
  for (const dir of coveredAncestors(mounts)) {
    lines.push(`mount -t tmpfs -o mode=0755,size=1m tracemesh-reveal ${shellQuote(dir)}`);
  }
  mounts.forEach((mount, i) => {
    lines.push(`mkdir -p ${shellQuote(mount.path)}`);
    lines.push(`mount --move ${shellQuote(path.join(stashDir, `reveal-${i}`))} ${shellQuote(mount.path)}`);
  });
  lines.push('exec "$@"');
  return lines.join('\n');
}
