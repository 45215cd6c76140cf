/**
 * Decides whether a pod process needs the reveal script (see reveal-script.ts)
 * for the paths it must read, and builds it. Asking the kernel costs one
 * setpriv run per path and user, so answers are cached per network.
 */
import path from 'node:path';
import { NetnsError } from './netns-error.js';
import type { ProcessUser } from './process-user.js';
import { isRoot } from './process-user.js';
import { coveredAncestors, isInside, revealScript } from './reveal-script.js';
import type { RevealMount } from './reveal-script.js';
import { assertOwnModeAllows, closedAncestorFor } from './uid-access.js';

export class RevealPlanner {
  private readonly closed = new Map<string, string | undefined>();

  /** `stashDir()` creates (once) and returns a root-only directory for mount points. */
  constructor(private readonly stashDir: () => string) {}

  /** The script to run before dropping to `user`, or undefined when every path is reachable as it is. */
  scriptFor(user: ProcessUser, paths: readonly string[]): string | undefined {
    if (isRoot(user) || paths.length === 0) return undefined;
    const mounts: RevealMount[] = [];
    for (const target of paths) {
      if (!path.isAbsolute(target)) {
        throw new NetnsError('TM_ERR_NETNS_BAD_SPEC', `reveal: '${target}' is not an absolute path`);
      }
      const resolved = path.resolve(target);
      assertOwnModeAllows(resolved, user);
      const key = `${user.uid}:${user.gid}:${resolved}`;
      if (!this.closed.has(key)) this.closed.set(key, closedAncestorFor(resolved, user));
      const closedAncestor = this.closed.get(key);
      if (closedAncestor !== undefined) mounts.push({ path: resolved, closedAncestor });
    }
    if (mounts.length === 0) return undefined;
    const stash = this.stashDir();
    for (const covered of coveredAncestors(mounts)) {
      if (stash === covered || isInside(stash, covered)) {
        throw new NetnsError(
          'TM_ERR_NETNS_ACCESS',
          `cannot reveal paths under ${covered} to uid ${user.uid}: the mount stash ${stash} lies inside it (set TMPDIR to a directory outside it)`,
        );
      }
    }
    return revealScript(mounts, stash);
  }
}
