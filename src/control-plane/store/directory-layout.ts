/**
 * How the directory store lays out its files (the design, decided once):
 *
 *   <config-dir>/generations/000000000042/set.json                  the manifest of revision 42
 *   <config-dir>/generations/000000000042/Service/default/reviews.json
 *   <config-dir>/staging/…                                           sets being written
 *
 * A generation is one complete set at one revision: one JSON file per
 * document plus `set.json`, which lists every document with the revision
 * that last wrote it. A writer builds the next generation in staging/
 * (documents it did not change are hard links to the previous generation's
 * files, which are never modified), fsyncs it, and renames the directory
 * into generations/ last. So a reader, a watcher in another process or a
 * restart after a crash only ever sees whole sets: the current set is the
 * highest-numbered generation, and the store revision is its number, which
 * also persists it.
 *
 * rename(2) of a directory onto a non-empty one fails, so when two writers
 * build the same next revision exactly one wins: that is the
 * compare-and-swap across processes, with no lock file to go stale (a
 * writer also gives up when a newer generation appeared since its read).
 * Old generations are removed (renamed out first, so generations/ never
 * holds a half-deleted set), keeping the last few for readers still on
 * them, and none younger than a minute: so a revision's slot can never be
 * free again while a writer that read before it existed is still writing.
 *
 * Durable against a process crash at any point (the rename is the commit);
 * against power loss as far as fsync of the files and directories reaches.
 */
import path from 'node:path';
import type { DocumentKey } from './types.js';

export const GENERATIONS_DIR = 'generations';
export const STAGING_DIR = 'staging';
export const MANIFEST_FILE = 'set.json';
export const MANIFEST_FORMAT = 'tracemesh.dev/config-set/v1';
/** Generations kept besides the current one, for readers that picked one just before a write. */
export const DEFAULT_KEEP_GENERATIONS = 3;
/** A staging directory older than this was left by a crashed writer (a write takes seconds at most). */
export const STALE_STAGING_MS = 10 * 60_000;

const GENERATION_NAME = /^\d{12}$/;

export interface ManifestEntry {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
  /** The revision that last wrote this document: same revision, same content. */
  readonly revision: number;
}

export interface Manifest {
  readonly format: string;
  readonly revision: number;
  readonly documents: readonly ManifestEntry[];
}

export function generationName(revision: number): string {
  return String(revision).padStart(12, '0');
}

/** The revision a generations/ entry stands for; undefined for anything else found there. */
export function parseGenerationName(name: string): number | undefined {
  return GENERATION_NAME.test(name) ? Number(name) : undefined;
}

export function generationsDir(root: string): string {
  return path.join(root, GENERATIONS_DIR);
}

export function generationDir(root: string, revision: number): string {
  return path.join(root, GENERATIONS_DIR, generationName(revision));
}

export function stagingDir(root: string): string {
  return path.join(root, STAGING_DIR);
}

/** A document's file, relative to its generation. */
export function documentFile(key: DocumentKey): string {
  return path.join(key.kind, key.namespace, `${key.name}.json`);
}
