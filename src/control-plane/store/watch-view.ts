/**
 * What a watcher has reported so far, as document id → the revision that
 * wrote it, and the changes between that and a freshly read set. Both stores
 * use it whenever they have to compare whole sets (a directory watch after
 * each new generation, an etcd watch after its history was compacted).
 */
import { documentId, keyOf } from './document-codec.js';
import type { DocumentChange, DocumentKey, StoredDocument } from './types.js';

export class WatchView {
  private readonly revisions = new Map<string, { key: DocumentKey; revision: number }>();

  constructor(documents: Iterable<StoredDocument> = []) {
    for (const stored of documents) this.put(stored);
  }

  put(stored: StoredDocument): void {
    const key = keyOf(stored.document);
    this.revisions.set(documentId(key), { key, revision: stored.revision });
  }

  /** Whether the key was known. */
  delete(id: string): boolean {
    return this.revisions.delete(id);
  }

  /** The changes that turn this view into `documents`, and the view becomes `documents`. */
  advanceTo(documents: Iterable<StoredDocument>): DocumentChange[] {
    const changes: DocumentChange[] = [];
    const present = new Set<string>();
    for (const stored of documents) {
      const id = documentId(keyOf(stored.document));
      present.add(id);
      if (this.revisions.get(id)?.revision !== stored.revision) {
        changes.push({ type: 'put', document: stored });
        this.put(stored);
      }
    }
    for (const [id, known] of this.revisions) {
      if (present.has(id)) continue;
      changes.push({ type: 'delete', key: known.key });
      this.revisions.delete(id);
    }
    return changes;
  }
}
