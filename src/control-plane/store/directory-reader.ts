/**
 * Reading generations of the directory store (layout in directory-layout.ts).
 * Generations never change once renamed into place, so the reader keeps the
 * last set it read: asking again costs one readdir, and reading the next
 * generation reads only the documents whose revision changed.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import { decodeDocument, documentId, MAX_DOCUMENT_BYTES } from './document-codec.js';
import { documentFile, generationDir, generationsDir, MANIFEST_FILE, MANIFEST_FORMAT, parseGenerationName } from './directory-layout.js';
import type { Manifest, ManifestEntry } from './directory-layout.js';
import { forEachLimited } from './parallel.js';
import { storeError } from './store-errors.js';
import type { ConfigDocument, DocumentKey } from './types.js';

/** A manifest lists every document in a few dozen bytes each; far more than this is not ours. */
const MAX_MANIFEST_BYTES = 32 * 1024 * 1024;
const READ_CONCURRENCY = 32;
/** Re-reads after a generation vanished under us (pruned by a writer): each needs several writes in between. */
const MAX_VANISHED_RETRIES = 5;

export interface LoadedDocument {
  readonly key: DocumentKey;
  readonly revision: number;
  readonly document: ConfigDocument;
  readonly text: string;
  readonly bytes: number;
}

export interface LoadedSet {
  readonly revision: number;
  /** By document id (`kind/namespace/name`). */
  readonly documents: ReadonlyMap<string, LoadedDocument>;
  readonly bytes: number;
}

export const EMPTY_SET: LoadedSet = { revision: 0, documents: new Map(), bytes: 0 };

/** The generation was pruned while being read: read the newer one. */
class GenerationVanished extends Error {}

function isMissing(err: unknown): boolean {
  return (err as NodeJS.ErrnoException | undefined)?.code === 'ENOENT';
}

function errnoText(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  return e.code !== undefined ? `${e.code}: ${e.message}` : String(err);
}

/** Revisions present in generations/, ascending; empty when there are none yet. */
export async function listGenerations(root: string): Promise<number[]> {
  let names: string[];
  try {
    names = await readdir(generationsDir(root));
  } catch (err) {
    if (isMissing(err)) return [];
    throw storeError('TM_ERR_CP_STORE_UNAVAILABLE', `cannot list ${generationsDir(root)} (${errnoText(err)})`, err);
  }
  const revisions: number[] = [];
  for (const name of names) {
    const revision = parseGenerationName(name);
    if (revision !== undefined) revisions.push(revision);
  }
  return revisions.sort((a, b) => a - b);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

const KEY_PART = /^[A-Za-z0-9](?:[-A-Za-z0-9]{0,61}[A-Za-z0-9])?$/;

function parseManifest(text: string, file: string, revision: number): Manifest {
  const corrupt = (what: string): Error => storeError('TM_ERR_CP_STORE_CORRUPT', `${file}: ${what}`);
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw storeError('TM_ERR_CP_STORE_CORRUPT', `${file}: not valid JSON (${err instanceof Error ? err.message : String(err)})`, err);
  }
  if (!isRecord(value) || value['format'] !== MANIFEST_FORMAT) throw corrupt(`not a set manifest (expected format ${MANIFEST_FORMAT})`);
  if (value['revision'] !== revision) throw corrupt(`says revision ${JSON.stringify(value['revision'])}, but its directory is revision ${revision}`);
  const documents = value['documents'];
  if (!Array.isArray(documents)) throw corrupt('`documents` is not a list');
  const seen = new Set<string>();
  const entries = documents.map((entry: unknown, index): ManifestEntry => {
    if (!isRecord(entry)) throw corrupt(`documents[${index}] is not a mapping`);
    const { kind, namespace, name, revision: written } = entry;
    if (typeof kind !== 'string' || typeof namespace !== 'string' || typeof name !== 'string' || ![kind, namespace, name].every((part) => KEY_PART.test(part))) {
      throw corrupt(`documents[${index}] has no valid kind, namespace and name`);
    }
    if (typeof written !== 'number' || !Number.isSafeInteger(written) || written < 1 || written > revision) {
      throw corrupt(`documents[${index}] (${kind}/${namespace}/${name}) has revision ${JSON.stringify(written)}; expected 1 to ${revision}`);
    }
    const id = `${kind}/${namespace}/${name}`;
    if (seen.has(id)) throw corrupt(`documents[${index}]: ${id} is listed twice`);
    seen.add(id);
    return { kind, namespace, name, revision: written };
  });
  return { format: MANIFEST_FORMAT, revision, documents: entries };
}

export class SetReader {
  /** The last current set read; generations are immutable, so it stays true for its revision. */
  private cached: LoadedSet = EMPTY_SET;

  constructor(private readonly root: string) {}

  async currentRevision(): Promise<number> {
    const revisions = await listGenerations(this.root);
    return revisions.at(-1) ?? 0;
  }

  /** The current set (the highest generation). Throws TM_ERR_CP_STORE_CORRUPT naming the bad file. */
  async current(): Promise<LoadedSet> {
    for (let attempt = 0; ; attempt++) {
      const revision = await this.currentRevision();
      if (revision === this.cached.revision) return this.cached;
      try {
        this.cached = await this.load(revision);
        return this.cached;
      } catch (err) {
        if (!(err instanceof GenerationVanished) || attempt >= MAX_VANISHED_RETRIES) throw err;
      }
    }
  }

  /** The set at `revision`, or undefined when that generation is gone (pruned). */
  async at(revision: number): Promise<LoadedSet | undefined> {
    if (revision === 0) return EMPTY_SET;
    if (revision === this.cached.revision) return this.cached;
    try {
      return await this.load(revision);
    } catch (err) {
      if (err instanceof GenerationVanished || isMissing(err)) return undefined;
      throw err;
    }
  }

  private async readBounded(file: string, limit: number, revision: number): Promise<string> {
    let size: number;
    let text = '';
    try {
      size = (await stat(file)).size;
      if (size <= limit) text = await readFile(file, 'utf8');
    } catch (err) {
      throw await this.readFailure(file, revision, err);
    }
    if (size > limit) throw storeError('TM_ERR_CP_STORE_CORRUPT', `${file}: ${size} bytes, more than the ${limit} a file of the store may have`);
    return text;
  }

  private async readFailure(file: string, revision: number, err: unknown): Promise<Error> {
    if (!isMissing(err)) return storeError('TM_ERR_CP_STORE_UNAVAILABLE', `cannot read ${file} (${errnoText(err)})`, err);
    // Missing because a writer pruned the whole generation, or a file really is missing.
    const stillThere = await stat(generationDir(this.root, revision)).then(
      () => true,
      () => false,
    );
    if (!stillThere) return new GenerationVanished(file);
    return storeError('TM_ERR_CP_STORE_CORRUPT', `${file}: missing, but its set (revision ${revision}) lists it`, err);
  }

  private async load(revision: number): Promise<LoadedSet> {
    const dir = generationDir(this.root, revision);
    const manifestFile = path.join(dir, MANIFEST_FILE);
    const manifest = parseManifest(await this.readBounded(manifestFile, MAX_MANIFEST_BYTES, revision), manifestFile, revision);
    const previous = this.cached.documents;
    const documents = new Map<string, LoadedDocument>();
    const toRead: ManifestEntry[] = [];
    for (const entry of manifest.documents) {
      const id = documentId(entry);
      const known = previous.get(id);
      // Same id, same revision: the same file (a hard link of it), already read.
      if (known !== undefined && known.revision === entry.revision) documents.set(id, known);
      else toRead.push(entry);
    }
    await forEachLimited(toRead, READ_CONCURRENCY, async (entry) => {
      const key: DocumentKey = { kind: entry.kind, namespace: entry.namespace, name: entry.name };
      const file = path.join(dir, documentFile(key));
      const text = await this.readBounded(file, MAX_DOCUMENT_BYTES, revision);
      const document = decodeDocument(text, file, key);
      documents.set(documentId(key), { key, revision: entry.revision, document, text, bytes: Buffer.byteLength(text) });
    });
    // In manifest order (sorted when written), whatever order the reads finished in.
    const ordered = new Map<string, LoadedDocument>();
    let bytes = 0;
    for (const entry of manifest.documents) {
      const id = documentId(entry);
      const loaded = documents.get(id) as LoadedDocument;
      ordered.set(id, loaded);
      bytes += loaded.bytes;
    }
    return { revision, documents: ordered, bytes };
  }
}
