/**
 * A set change against the current set, decided the same way by both stores:
 * which documents are new, which differ, which are already stored exactly so
 * (not written again: an `apply` of a whole directory touches only what
 * changed), which deletions find something, and whether the resulting set
 * stays within the size limit.
 */
import { canonicalJson } from '../../config/config-version.js';
import { checkKey, documentId, encodeDocument, MAX_SET_BYTES } from './document-codec.js';
import type { EncodedDocument } from './document-codec.js';
import { storeError } from './store-errors.js';
import type { ApplyResult, DocumentKey, SetChange } from './types.js';

/** A document as currently stored, as much as planning needs of it. */
export interface CurrentDocument {
  readonly text: string;
  readonly bytes: number;
}

export interface SetPlan {
  /** Documents to write (created and updated), in the order given. */
  readonly writes: readonly EncodedDocument[];
  /** Ids to delete that exist. */
  readonly removals: readonly DocumentKey[];
  readonly created: readonly DocumentKey[];
  readonly updated: readonly DocumentKey[];
  readonly unchanged: readonly DocumentKey[];
  readonly notFound: readonly DocumentKey[];
  /** JSON bytes of the whole set after the change. */
  readonly setBytes: number;
}

/** Checks and encodes a change before anything is read: its own mistakes fail fast. */
export interface CheckedChange {
  readonly puts: readonly EncodedDocument[];
  readonly deletes: readonly DocumentKey[];
}

export function checkSetChange(change: SetChange): CheckedChange {
  if (typeof change !== 'object' || change === null || !Array.isArray(change.put)) {
    throw storeError('TM_ERR_CP_STORE_BAD_DOCUMENT', 'a set change needs `put`: a list of documents (and optionally `delete`: a list of keys)');
  }
  if (change.delete !== undefined && !Array.isArray(change.delete)) {
    throw storeError('TM_ERR_CP_STORE_BAD_DOCUMENT', 'a set change\'s `delete` must be a list of { kind, namespace, name }');
  }
  const seen = new Map<string, string>();
  const puts = change.put.map((document, index) => {
    const where = `document ${index} of the set`;
    const encoded = encodeDocument(document, where);
    const first = seen.get(encoded.id);
    if (first !== undefined) throw storeError('TM_ERR_CP_STORE_BAD_DOCUMENT', `${where}: ${encoded.id} is also ${first}`);
    seen.set(encoded.id, where);
    return encoded;
  });
  const deletes = (change.delete ?? []).map((key, index) => {
    const where = `deletion ${index} of the set`;
    const checked = checkKey(key, where);
    const id = documentId(checked);
    const first = seen.get(id);
    if (first !== undefined) throw storeError('TM_ERR_CP_STORE_BAD_DOCUMENT', `${where}: ${id} is also ${first}`);
    seen.set(id, where);
    return checked;
  });
  return { puts, deletes };
}

function sameContent(stored: CurrentDocument, encoded: EncodedDocument): boolean {
  if (stored.text === encoded.text) return true;
  try {
    return canonicalJson(JSON.parse(stored.text)) === canonicalJson(encoded.document);
  } catch {
    return false; // an unreadable stored document is replaced
  }
}

/**
 * Plans `change` against `current` (id → stored document) whose texts total
 * `currentBytes`. Throws TM_ERR_CP_STORE_TOO_LARGE when the set would outgrow
 * MAX_SET_BYTES.
 */
export function planSetChange(current: ReadonlyMap<string, CurrentDocument>, currentBytes: number, change: CheckedChange): SetPlan {
  const writes: EncodedDocument[] = [];
  const created: DocumentKey[] = [];
  const updated: DocumentKey[] = [];
  const unchanged: DocumentKey[] = [];
  const removals: DocumentKey[] = [];
  const notFound: DocumentKey[] = [];
  let setBytes = currentBytes;
  for (const encoded of change.puts) {
    const stored = current.get(encoded.id);
    if (stored === undefined) {
      created.push(encoded.key);
    } else if (sameContent(stored, encoded)) {
      unchanged.push(encoded.key);
      continue;
    } else {
      updated.push(encoded.key);
      setBytes -= stored.bytes;
    }
    writes.push(encoded);
    setBytes += encoded.bytes;
  }
  for (const key of change.deletes) {
    const stored = current.get(documentId(key));
    if (stored === undefined) {
      notFound.push(key);
    } else {
      removals.push(key);
      setBytes -= stored.bytes;
    }
  }
  if (setBytes > MAX_SET_BYTES) {
    throw storeError(
      'TM_ERR_CP_STORE_TOO_LARGE',
      `the set would hold ${setBytes} bytes of JSON after this change; the store holds at most ${MAX_SET_BYTES} (64 MiB); nothing was written`,
    );
  }
  return { writes, removals, created, updated, unchanged, notFound, setBytes };
}

export function isEmptyPlan(plan: SetPlan): boolean {
  return plan.writes.length === 0 && plan.removals.length === 0;
}

export function applyResult(plan: SetPlan, revision: number): ApplyResult {
  return {
    revision,
    created: plan.created,
    updated: plan.updated,
    unchanged: plan.unchanged,
    deleted: plan.removals,
    notFound: plan.notFound,
  };
}
