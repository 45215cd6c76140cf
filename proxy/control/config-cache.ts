/**
 * The last configuration a proxy applied, kept in its state directory so a
 * proxy that starts while the control plane is away serves what it served
 * before. Written whole to a temporary file and renamed, so a crash never
 * leaves half a cache.
 */
import { readFile, rename, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../../src/lib/errors.js';

export const CACHE_FILE = 'config-cache.json';

export interface CachedConfig {
  readonly version: string;
  readonly documents: readonly unknown[];
}

export async function writeConfigCache(stateDir: string, cached: CachedConfig): Promise<void> {
  const file = path.join(stateDir, CACHE_FILE);
  const temp = `${file}.${process.pid}.tmp`;
  await writeFile(temp, JSON.stringify(cached), { mode: 0o600 });
  await rename(temp, file);
}

/** The cache, undefined when there is none; a damaged cache is reported, never thrown (the proxy then waits for the control plane). */
export async function readConfigCache(stateDir: string, log: (message: string) => void): Promise<CachedConfig | undefined> {
  const file = path.join(stateDir, CACHE_FILE);
  let text: string;
  try {
    text = await readFile(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'ENOENT') log(`config cache ${file} cannot be read: ${errorMessage(err)}`);
    return undefined;
  }
  try {
    const value = JSON.parse(text) as { version?: unknown; documents?: unknown };
    if (typeof value.version !== 'string' || !Array.isArray(value.documents)) throw new Error('not a {version, documents} object');
    return { version: value.version, documents: value.documents };
  } catch (err) {
    log(`config cache ${file} is damaged and is ignored: ${errorMessage(err)}`);
    return undefined;
  }
}
