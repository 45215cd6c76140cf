/**
 * The control plane's config store: validated configuration documents kept by
 * (kind, namespace, name), whatever the kinds are (validation happens before,
 * in src/config/). Two implementations share this contract: a directory (the
 * default, one control plane) and etcd (several control-plane replicas).
 *
 * Every write moves the whole set to a new store revision, atomically. The
 * revision is a number that only grows; writers can make a change conditional
 * on it (compare-and-swap) so that two replicas applying at once cannot
 * interleave. Watchers see every change made by any writer.
 */
import type { TracemeshError } from '../../lib/errors.js';

/** Plain JSON data: what a document is made of, and all the store keeps of it. */
export type JsonValue = null | boolean | number | string | JsonValue[] | { [key: string]: JsonValue };

export interface DocumentMetadata {
  readonly name: string;
  readonly namespace: string;
  readonly labels?: Readonly<Record<string, string>>;
}

/** One configuration document, Kubernetes-shaped (DESIGN.md, "Configuration model"). */
export interface ConfigDocument {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: DocumentMetadata;
  readonly spec: JsonValue;
}

export interface DocumentKey {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface StoredDocument {
  readonly document: ConfigDocument;
  /** The store revision of the change that last wrote this document. */
  readonly revision: number;
}

/** The whole set at one revision. */
export interface StoreSnapshot {
  readonly revision: number;
  /** Ordered by kind, namespace, name. */
  readonly documents: readonly StoredDocument[];
}

/** One set change: documents to create or replace, and keys to delete, applied in one step. */
export interface SetChange {
  readonly put: readonly ConfigDocument[];
  readonly delete?: readonly DocumentKey[];
}

export interface ApplyResult {
  /** The store revision after the change (unchanged when nothing differed). */
  readonly revision: number;
  readonly created: readonly DocumentKey[];
  readonly updated: readonly DocumentKey[];
  /** Put with exactly the content already stored: not written. */
  readonly unchanged: readonly DocumentKey[];
  readonly deleted: readonly DocumentKey[];
  /** Asked to be deleted, but not stored. */
  readonly notFound: readonly DocumentKey[];
}

export type DocumentChange =
  | { readonly type: 'put'; readonly document: StoredDocument }
  | { readonly type: 'delete'; readonly key: DocumentKey };

export interface StoreChangeEvent {
  /** The store revision the watcher's view has reached with these changes. */
  readonly revision: number;
  /**
   * What differs from the watcher's previous view. Changes that happen in
   * quick succession may arrive as one event (the net change, under the last
   * revision); no change is ever left out.
   */
  readonly changes: readonly DocumentChange[];
  /**
   * True when the watcher could not know the state at `fromRevision` (pruned
   * or compacted history): `changes` then holds every current document as a
   * put, and documents not among them are gone.
   */
  readonly resync: boolean;
}

export type StoreListener = (event: StoreChangeEvent) => void;

export interface WatchOptions {
  /**
   * Report changes after this revision (typically the revision of a list()
   * just made). Without it, changes after the revision current when the
   * watch starts.
   */
  readonly fromRevision?: number;
  /**
   * Problems the watch survives (a corrupt document, the store unreachable
   * for a while, a listener that threw); it keeps going and catches up.
   */
  readonly onProblem?: (error: TracemeshError) => void;
}

export interface StoreWatch {
  /** Stops the watch; no listener call follows. Safe twice. */
  stop(): void;
}

export interface ConfigStore {
  /** Where the store is, for messages: the directory or the etcd URL(s). */
  readonly location: string;
  /** Opens the store and checks it can be read; a clear error when it cannot (bounded wait). */
  start(): Promise<void>;
  /** Stops every watch and releases connections. Safe twice, and before start. */
  close(): Promise<void>;
  list(): Promise<StoreSnapshot>;
  get(kind: string, namespace: string, name: string): Promise<StoredDocument | undefined>;
  /**
   * Writes a whole set change atomically. With `expectedRevision`, only when
   * the store is still at that revision; otherwise TM_ERR_CP_STORE_CONFLICT
   * (re-read and retry). Without it, concurrent writers are serialised.
   */
  applySet(change: SetChange, expectedRevision?: number): Promise<ApplyResult>;
  delete(kind: string, namespace: string, name: string, expectedRevision?: number): Promise<ApplyResult>;
  revision(): Promise<number>;
  /** Resolves once the watch is established: any later change is reported. */
  watch(listener: StoreListener, options?: WatchOptions): Promise<StoreWatch>;
}
