/**
 * Writing generations of the directory store (layout and why in
 * directory-layout.ts): build the next set in staging/, make it durable, and
 * rename it into generations/ as the last step.
 */
import { randomBytes } from 'node:crypto';
import { copyFile, link, mkdir, open, readdir, rename, rm, stat } from 'node:fs/promises';
import path from 'node:path';
import { compareKeys, documentId } from './document-codec.js';
import { documentFile, generationDir, generationName, generationsDir, MANIFEST_FILE, MANIFEST_FORMAT, stagingDir } from './directory-layout.js';
import type { Manifest, ManifestEntry } from './directory-layout.js';
import type { LoadedSet } from './directory-reader.js';
import { listGenerations } from './directory-reader.js';
import { forEachLimited } from './parallel.js';
import type { SetPlan } from './set-change.js';
import { storeError } from './store-errors.js';

const WRITE_CONCURRENCY = 16;
/** A generation is pruned only when older than this, so its revision cannot be taken again by a writer that read before it existed. */
export const PRUNE_MIN_AGE_MS = 60_000;

/** `written`: the new generation is current. `taken`: another writer got that revision first; nothing of ours is visible. */
export type WriteOutcome = 'written' | 'taken';

function errnoCode(err: unknown): string | undefined {
  return (err as NodeJS.ErrnoException | undefined)?.code;
}

function uniqueSuffix(): string {
  return `${process.pid}-${randomBytes(4).toString('hex')}`;
}

/** fsync of a directory makes the entries in it (new files, a rename) durable. */
async function syncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r');
  try {
    await handle.sync();
  } catch (err) {
    // Some filesystems cannot fsync a directory; the rename is still atomic there.
    if (errnoCode(err) !== 'EINVAL' && errnoCode(err) !== 'ENOTSUP') throw err;
  } finally {
    await handle.close();
  }
}

async function writeDurably(file: string, text: string): Promise<void> {
  const handle = await open(file, 'wx');
  try {
    await handle.writeFile(text, 'utf8');
    await handle.sync();
  } finally {
    await handle.close();
  }
}

/** Unchanged documents: a hard link to the previous generation's (immutable) file, or a copy where links are not possible. */
async function carryOver(from: string, to: string): Promise<void> {
  try {
    await link(from, to);
  } catch (err) {
    const code = errnoCode(err);
    if (code !== 'EXDEV' && code !== 'EPERM' && code !== 'EMLINK' && code !== 'ENOTSUP' && code !== 'EOPNOTSUPP') throw err;
    await copyFile(from, to);
    const handle = await open(to, 'r+');
    await handle.sync().finally(() => handle.close());
  }
}

/** Moves a directory out of generations/ (or anywhere) into staging/ and deletes it there. */
async function retire(root: string, dir: string, why: string): Promise<void> {
  const target = path.join(stagingDir(root), `${path.basename(dir)}-${why}-${uniqueSuffix()}`);
  try {
    await rename(dir, target);
  } catch (err) {
    if (errnoCode(err) === 'ENOENT') return; // another writer retired it
    throw err;
  }
  await rm(target, { recursive: true, force: true });
}

/**
 * Writes `plan` on top of `base` as generation `base.revision + 1`. Throws
 * TM_ERR_CP_STORE_UNAVAILABLE when the directory cannot be written; leaves
 * nothing behind in that case.
 */
export async function writeGeneration(root: string, base: LoadedSet, plan: SetPlan): Promise<WriteOutcome> {
  const revision = base.revision + 1;
  const baseDir = generationDir(root, base.revision);
  const staging = path.join(stagingDir(root), `${generationName(revision)}-${uniqueSuffix()}`);

  const entries = new Map<string, ManifestEntry>();
  for (const [id, loaded] of base.documents) entries.set(id, { ...loaded.key, revision: loaded.revision });
  for (const key of plan.removals) entries.delete(documentId(key));
  const written = new Map<string, string>();
  for (const encoded of plan.writes) {
    entries.set(encoded.id, { ...encoded.key, revision });
    written.set(encoded.id, encoded.text);
  }
  const manifest: Manifest = { format: MANIFEST_FORMAT, revision, documents: [...entries.values()].sort(compareKeys) };

  try {
    await mkdir(staging, { recursive: true });
    const subdirs = new Set(manifest.documents.map((entry) => path.join(staging, entry.kind, entry.namespace)));
    for (const dir of subdirs) await mkdir(dir, { recursive: true });
    await forEachLimited(manifest.documents, WRITE_CONCURRENCY, async (entry) => {
      const file = documentFile(entry);
      const text = written.get(documentId(entry));
      if (text !== undefined) await writeDurably(path.join(staging, file), text);
      else await carryOver(path.join(baseDir, file), path.join(staging, file));
    });
    await writeDurably(path.join(staging, MANIFEST_FILE), `${JSON.stringify(manifest, null, 1)}\n`);
    for (const dir of subdirs) await syncDirectory(dir);
    for (const kind of new Set(manifest.documents.map((entry) => entry.kind))) await syncDirectory(path.join(staging, kind));
    await syncDirectory(staging);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    // The base generation was pruned while we linked from it: several writes happened since our read.
    if (errnoCode(err) === 'ENOENT' && (await stat(baseDir).then(() => false, () => true))) return 'taken';
    throw storeError('TM_ERR_CP_STORE_UNAVAILABLE', `cannot write the next set (revision ${revision}) in ${staging}: ${err instanceof Error ? err.message : String(err)}`, err);
  }

  const target = generationDir(root, revision);
  // A newer generation means we are stale. Checked just before the rename:
  // the slot of our revision can only be free again if it was pruned, and
  // pruning spares generations younger than PRUNE_MIN_AGE_MS, far longer
  // than the gap between this check and the rename.
  const revisions = await listGenerations(root);
  if ((revisions.at(-1) ?? 0) > base.revision) {
    await rm(staging, { recursive: true, force: true });
    return 'taken';
  }
  try {
    await rename(staging, target);
  } catch (err) {
    await rm(staging, { recursive: true, force: true });
    const code = errnoCode(err);
    if (code === 'ENOTEMPTY' || code === 'EEXIST') return 'taken';
    throw storeError('TM_ERR_CP_STORE_UNAVAILABLE', `cannot move the set of revision ${revision} into ${target}: ${err instanceof Error ? err.message : String(err)}`, err);
  }
  // Committed and visible: a failing fsync of the parent cannot undo that, so it is not the write's failure.
  await syncDirectory(generationsDir(root)).catch(() => undefined);
  return 'written';
}

/**
 * Removes generations other than the newest `keep + 1`, and only those
 * written more than PRUNE_MIN_AGE_MS ago (see writeGeneration for why).
 */
export async function pruneGenerations(root: string, keep: number, now = Date.now()): Promise<void> {
  const revisions = await listGenerations(root);
  for (const revision of revisions.slice(0, Math.max(0, revisions.length - 1 - keep))) {
    const dir = generationDir(root, revision);
    const written = await stat(path.join(dir, MANIFEST_FILE)).then(
      (info) => info.mtimeMs,
      () => 0,
    );
    if (now - written > PRUNE_MIN_AGE_MS) await retire(root, dir, 'pruned');
  }
}

/** Staging directories left by writers that crashed (a live writer's is minutes younger). */
export async function removeStaleStaging(root: string, olderThanMs: number, now = Date.now()): Promise<void> {
  const dir = stagingDir(root);
  for (const name of await readdir(dir)) {
    const entry = path.join(dir, name);
    const info = await stat(entry).catch(() => undefined);
    if (info !== undefined && now - info.mtimeMs > olderThanMs) await rm(entry, { recursive: true, force: true });
  }
}
