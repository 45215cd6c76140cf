/**
 * Deltas between two snapshots, and applying one, for both sides of the
 * discovery stream (protocol.ts). A snapshot is a list of documents in key
 * order (kind, namespace, name: the order every store lists them in), so
 * the set a delta makes has one order and therefore one version
 * (snapshotVersion): a proxy can check that what it assembled is what the
 * control plane meant. Light on purpose: the sidecar imports it, and it must
 * not pull in the schema modules.
 */
import { createHash } from 'node:crypto';
import { canonicalJson } from '../config/config-version.js';
import { TracemeshError } from '../lib/errors.js';

/** Which document: kind, namespace, name. */
export interface DeltaKey {
  readonly kind: string;
  readonly namespace: string;
  readonly name: string;
}

export interface SnapshotDelta {
  /** Documents added or changed, whole, in key order. */
  readonly put: readonly unknown[];
  /** Documents removed, in key order. */
  readonly remove: readonly DeltaKey[];
}

/** The version of a set of documents: a short hash of their canonical JSON. */
export function snapshotVersion(documents: readonly unknown[]): string {
  return createHash('sha256').update(canonicalJson(documents)).digest('hex').slice(0, 12);
}

/** kind, namespace and name of a document; undefined when it lacks them (such a set goes out whole, never as a delta). */
export function keyOfDocument(document: unknown): DeltaKey | undefined {
  if (typeof document !== 'object' || document === null) return undefined;
  const { kind, metadata } = document as { kind?: unknown; metadata?: unknown };
  if (typeof kind !== 'string' || typeof metadata !== 'object' || metadata === null) return undefined;
  const { name, namespace } = metadata as { name?: unknown; namespace?: unknown };
  if (typeof name !== 'string' || (namespace !== undefined && typeof namespace !== 'string')) return undefined;
  return { kind, namespace: namespace ?? '', name };
}

/** One string per key, for maps (NUL cannot occur in a kind or name). */
export function keyString(key: DeltaKey): string {
  return `${key.kind}\u0000${key.namespace}\u0000${key.name}`;
}

/** The stores' order (document-codec.ts compareKeys): kind, then namespace, then name, by UTF-16 code units. */
export function compareDeltaKeys(a: DeltaKey, b: DeltaKey): number {
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

/**
 * A snapshot indexed for deltas: each document's JSON by key. Undefined
 * when a document has no key or a key occurs twice (then only whole
 * snapshots can describe the set).
 */
export function indexSnapshot(documents: readonly unknown[]): Map<string, { key: DeltaKey; json: string }> | undefined {
  const index = new Map<string, { key: DeltaKey; json: string }>();
  for (const document of documents) {
    const key = keyOfDocument(document);
    if (key === undefined) return undefined;
    const text = keyString(key);
    if (index.has(text)) return undefined;
    index.set(text, { key, json: JSON.stringify(document) });
  }
  return index;
}

/**
 * What turns `base` into `current`, as JSON texts ready for the wire:
 * `put` is a JSON list of whole documents, `remove` a JSON list of keys.
 * Documents compare by their JSON as the control plane made them (same
 * builder, same key order), so an unchanged document is never sent.
 */
export function diffSnapshots(base: ReadonlyMap<string, { key: DeltaKey; json: string }>, current: ReadonlyMap<string, { key: DeltaKey; json: string }>): { put: string; remove: string; changes: number } {
  const put: string[] = [];
  const remove: DeltaKey[] = [];
  for (const [text, entry] of current) {
    if (base.get(text)?.json !== entry.json) put.push(entry.json);
  }
  for (const [text, entry] of base) {
    if (!current.has(text)) remove.push(entry.key);
  }
  return { put: `[${put.join(',')}]`, remove: JSON.stringify(remove), changes: put.length + remove.length };
}

function fail(message: string): never {
  throw new TracemeshError('TM_ERR_CP_PROTOCOL', message);
}

/**
 * `base` (a whole snapshot, in key order) with `delta` applied: changed
 * documents replaced, new ones inserted, removed ones gone, in key order.
 * Throws TM_ERR_CP_PROTOCOL naming the first thing that cannot be applied:
 * a document without kind/name, a key twice, a removal of a document the
 * base does not have.
 */
export function applySnapshotDelta(base: readonly unknown[], delta: SnapshotDelta): unknown[] {
  const merged = new Map<string, { key: DeltaKey; document: unknown }>();
  base.forEach((document, i) => {
    const key = keyOfDocument(document);
    if (key === undefined) fail(`delta: document ${i} of the base has no kind and metadata.name`);
    merged.set(keyString(key), { key, document });
  });
  const touched = new Set<string>();
  delta.remove.forEach((key, i) => {
    const text = keyString(key);
    if (touched.has(text)) fail(`delta: remove[${i}] (${key.kind} ${key.namespace}/${key.name}) is listed twice`);
    touched.add(text);
    if (!merged.delete(text)) fail(`delta: remove[${i}] (${key.kind} ${key.namespace}/${key.name}) is not in the base`);
  });
  delta.put.forEach((document, i) => {
    const key = keyOfDocument(document);
    if (key === undefined) fail(`delta: put[${i}] has no kind and metadata.name`);
    const text = keyString(key);
    if (touched.has(text)) fail(`delta: put[${i}] (${key.kind} ${key.namespace}/${key.name}) is also removed or put twice`);
    touched.add(text);
    merged.set(text, { key, document });
  });
  return [...merged.values()].sort((a, b) => compareDeltaKeys(a.key, b.key)).map((entry) => entry.document);
}
