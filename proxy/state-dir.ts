/**
 * The proxy's writable state directory: whatever it keeps on disk (the
 * control plane's config cache, spools) goes here, never into the project
 * directory, which a proxy running as its own UID may not write.
 */
import { constants } from 'node:fs';
import { access, mkdir } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { TracemeshError, errorMessage } from '../src/lib/errors.js';

/** Per user and workload under the system temp directory, so proxies of different UIDs never share one. */
export function defaultStateDir(service: string, namespace: string): string {
  const uid = process.getuid?.() ?? 0;
  return path.join(tmpdir(), `tracemesh-proxy-${uid}`, `${service}.${namespace}`);
}

export async function prepareStateDir(dir: string): Promise<void> {
  try {
    await mkdir(dir, { recursive: true, mode: 0o700 });
    await access(dir, constants.W_OK | constants.X_OK);
  } catch (err) {
    throw new TracemeshError('TM_ERR_PROXY_STATE_DIR', `--state-dir ${dir} is not a directory this proxy can write: ${errorMessage(err)}`, { cause: err });
  }
}
