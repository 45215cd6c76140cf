import { tmpdir } from 'node:os';
import path from 'node:path';

/** Names of run-time directories start with this, then the owner prefix (so stale ones are found by name). */
export const RUNTIME_DIR_LEAD = 'tracemesh-netns-';

/** The run's own directory under the temp dir (mount stashes for reveal); only root uses it. */
export function runtimeDirFor(prefix: string): string {
  return path.join(tmpdir(), `${RUNTIME_DIR_LEAD}${prefix}`);
}
