/**
 * The default config store: a directory (`--config-dir`, default
 * ./.tracemesh/config) holding one JSON file per document in generations
 * that become visible whole (directory-layout.ts has the design). Several
 * processes may use one directory: their writes are serialised by the
 * rename of the next generation, and each sees the others' through watch.
 */
import { access, constants, mkdir } from 'node:fs/promises';
import path from 'node:path';
import { errorMessage } from '../../lib/errors.js';
import { checkKey, documentId } from './document-codec.js';
import { DEFAULT_KEEP_GENERATIONS, generationsDir, STALE_STAGING_MS, stagingDir } from './directory-layout.js';
import { SetReader } from './directory-reader.js';
import { DirectoryWatch, storedDocuments } from './directory-watch.js';
import { pruneGenerations, removeStaleStaging, writeGeneration } from './directory-writer.js';
import { checkRevision } from './revision-argument.js';
import { applyResult, checkSetChange, isEmptyPlan, planSetChange } from './set-change.js';
import { storeError } from './store-errors.js';
import type { ApplyResult, ConfigStore, SetChange, StoredDocument, StoreListener, StoreSnapshot, StoreWatch, WatchOptions } from './types.js';

export const DEFAULT_CONFIG_DIR = './.tracemesh/config';
export const DEFAULT_POLL_INTERVAL_MS = 1_000;
const MIN_POLL_INTERVAL_MS = 10;
const MAX_POLL_INTERVAL_MS = 60_000;
/** Lost races in a row before a write without expectedRevision gives up: only a storm of writers gets there. */
const MAX_WRITE_ATTEMPTS = 20;

export interface DirectoryStoreOptions {
  readonly dir: string;
  /** How often watches look for a new generation besides fs.watch (10 ms to 60 s). */
  readonly pollIntervalMs?: number;
  /** false where fs.watch is known not to work (some network mounts): the poll alone then. */
  readonly fsWatch?: boolean;
  /** Old generations kept besides the current one (each at least a minute old before it goes). */
  readonly keepGenerations?: number;
}

type Lifecycle = 'new' | 'started' | 'closed';

export class DirectoryConfigStore implements ConfigStore {
  readonly location: string;
  private readonly root: string;
  private readonly reader: SetReader;
  private readonly pollIntervalMs: number;
  private readonly keepGenerations: number;
  private readonly fsWatch: boolean;
  private readonly watches = new Set<DirectoryWatch>();
  private state: Lifecycle = 'new';
  /** This process's writes one after another; other processes are raced by rename. */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(options: DirectoryStoreOptions) {
    if (typeof options.dir !== 'string' || options.dir.length === 0) throw storeError('TM_ERR_CP_STORE_BAD_ARGUMENT', 'the config directory: expected a path');
    this.root = path.resolve(options.dir);
    this.location = this.root;
    this.reader = new SetReader(this.root);
    this.pollIntervalMs = options.pollIntervalMs ?? DEFAULT_POLL_INTERVAL_MS;
    if (!Number.isInteger(this.pollIntervalMs) || this.pollIntervalMs < MIN_POLL_INTERVAL_MS || this.pollIntervalMs > MAX_POLL_INTERVAL_MS) {
      throw storeError('TM_ERR_CP_STORE_BAD_ARGUMENT', `pollIntervalMs: expected ${MIN_POLL_INTERVAL_MS} to ${MAX_POLL_INTERVAL_MS} ms, got ${String(options.pollIntervalMs)}`);
    }
    this.fsWatch = options.fsWatch ?? true;
    this.keepGenerations = options.keepGenerations ?? DEFAULT_KEEP_GENERATIONS;
    if (!Number.isInteger(this.keepGenerations) || this.keepGenerations < 0 || this.keepGenerations > 1000) {
      throw storeError('TM_ERR_CP_STORE_BAD_ARGUMENT', `keepGenerations: expected 0 to 1000, got ${String(options.keepGenerations)}`);
    }
  }

  async start(): Promise<void> {
    if (this.state === 'closed') throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store at ${this.root} is closed`);
    if (this.state === 'started') return;
    try {
      await mkdir(generationsDir(this.root), { recursive: true });
      await mkdir(stagingDir(this.root), { recursive: true });
      await access(this.root, constants.R_OK | constants.W_OK | constants.X_OK);
      await removeStaleStaging(this.root, STALE_STAGING_MS);
    } catch (err) {
      throw storeError('TM_ERR_CP_STORE_UNAVAILABLE', `the config directory ${this.root} cannot be used: ${errorMessage(err)}`, err);
    }
    // A set that cannot be read back is said now, with its file, not at the first request.
    await this.reader.current();
    this.state = 'started';
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const watch of [...this.watches]) watch.stop();
    await this.writes.catch(() => undefined);
  }

  async list(): Promise<StoreSnapshot> {
    this.assertStarted();
    const set = await this.reader.current();
    return { revision: set.revision, documents: storedDocuments(set) };
  }

  async get(kind: string, namespace: string, name: string): Promise<StoredDocument | undefined> {
    this.assertStarted();
    const id = documentId(checkKey({ kind, namespace, name }, 'get'));
    const loaded = (await this.reader.current()).documents.get(id);
    return loaded === undefined ? undefined : { document: loaded.document, revision: loaded.revision };
  }

  async revision(): Promise<number> {
    this.assertStarted();
    return this.reader.currentRevision();
  }

  applySet(change: SetChange, expectedRevision?: number): Promise<ApplyResult> {
    try {
      this.assertStarted();
      const checked = checkSetChange(change);
      const expected = expectedRevision === undefined ? undefined : checkRevision(expectedRevision, 'expectedRevision');
      const run = this.writes.then(() => this.write(checked, expected));
      this.writes = run.catch(() => undefined);
      return run;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(kind: string, namespace: string, name: string, expectedRevision?: number): Promise<ApplyResult> {
    return this.applySet({ put: [], delete: [{ kind, namespace, name }] }, expectedRevision);
  }

  async watch(listener: StoreListener, options: WatchOptions = {}): Promise<StoreWatch> {
    this.assertStarted();
    if (options.fromRevision !== undefined) checkRevision(options.fromRevision, 'fromRevision');
    const watch = await DirectoryWatch.start(this.reader, generationsDir(this.root), listener, options, { pollIntervalMs: this.pollIntervalMs, fsWatch: this.fsWatch }, (stopped) => this.watches.delete(stopped));
    if (this.state !== 'started') {
      watch.stop();
      throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store at ${this.root} was closed while the watch started`);
    }
    this.watches.add(watch);
    return watch;
  }

  private async write(checked: ReturnType<typeof checkSetChange>, expected: number | undefined): Promise<ApplyResult> {
    for (let attempt = 1; ; attempt++) {
      if (this.state !== 'started') throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store at ${this.root} is closed`);
      const base = await this.reader.current();
      if (expected !== undefined && base.revision !== expected) {
        throw storeError(
          'TM_ERR_CP_STORE_CONFLICT',
          `the config store at ${this.root} is at revision ${base.revision}, not ${expected} as expected: another writer changed the set; read it again and retry`,
        );
      }
      const plan = planSetChange(base.documents, base.bytes, checked);
      if (isEmptyPlan(plan)) return applyResult(plan, base.revision);
      const outcome = await writeGeneration(this.root, base, plan);
      if (outcome === 'written') {
        await pruneGenerations(this.root, this.keepGenerations).catch(() => undefined); // tidying; the write stands
        return applyResult(plan, base.revision + 1);
      }
      if (expected !== undefined) {
        throw storeError('TM_ERR_CP_STORE_CONFLICT', `the config store at ${this.root}: another writer committed revision ${expected + 1} first; read the set again and retry`);
      }
      if (attempt >= MAX_WRITE_ATTEMPTS) {
        throw storeError('TM_ERR_CP_STORE_CONFLICT', `the config store at ${this.root}: other writers won ${MAX_WRITE_ATTEMPTS} races in a row; nothing was written`);
      }
    }
  }

  private assertStarted(): void {
    if (this.state === 'new') throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store at ${this.root} is not started (call start() first)`);
    if (this.state === 'closed') throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store at ${this.root} is closed`);
  }
}
