/**
 * Reading the etcd store's set: one range over the prefix, so documents and
 * the revision key come from one consistent etcd revision.
 */
import type { Etcd3, IKeyValue } from 'etcd3';
import { compareKeys, decodeDocument, documentId } from './document-codec.js';
import { etcdFailure } from './etcd-errors.js';
import type { EtcdKeys } from './etcd-keys.js';
import { storeError } from './store-errors.js';
import type { ConfigDocument, DocumentKey, StoredDocument } from './types.js';

export interface EtcdDocument {
  readonly key: DocumentKey;
  readonly document: ConfigDocument;
  readonly text: string;
  readonly bytes: number;
  /** The etcd mod revision of its key: the store revision of the change that wrote it. */
  readonly revision: number;
}

export interface EtcdSet {
  /** The revision key's mod revision (0 before the first change). */
  readonly revision: number;
  /** The etcd revision the range was read at: a watch continues after it. */
  readonly readRevision: number;
  /** What the last writer put in the revision key (its write id). */
  readonly writeId: string | undefined;
  /** By document id, ordered by kind, namespace, name. */
  readonly documents: ReadonlyMap<string, EtcdDocument>;
  readonly bytes: number;
}

/** A document from its etcd key and value; TM_ERR_CP_STORE_CORRUPT names the key and the URL. */
export function decodeEtcdDocument(keys: EtcdKeys, location: string, kv: IKeyValue): EtcdDocument {
  const etcdKey = kv.key.toString();
  const where = `etcd key ${etcdKey} at ${location}`;
  const key = keys.parseDocumentKey(etcdKey);
  if (key === undefined) throw storeError('TM_ERR_CP_STORE_CORRUPT', `${where}: not of the form ${keys.docsPrefix}<kind>/<namespace>/<name>`);
  const text = kv.value.toString('utf8');
  const document = decodeDocument(text, where, key);
  return { key, document, text, bytes: kv.value.length, revision: Number(kv.mod_revision) };
}

export function storedDocuments(set: EtcdSet): StoredDocument[] {
  return [...set.documents.values()].map((loaded) => ({ document: loaded.document, revision: loaded.revision }));
}

/** The set now, or at etcd revision `atRevision` (fails with etcd's compaction error when that history is gone). */
export async function readEtcdSet(client: Etcd3, keys: EtcdKeys, location: string, atRevision?: number): Promise<EtcdSet> {
  let kvs: IKeyValue[];
  let readRevision: number;
  try {
    const range = client.getAll().prefix(keys.prefix);
    if (atRevision !== undefined) range.revision(atRevision);
    const response = await range.exec();
    kvs = response.kvs;
    // The header carries etcd's current revision even for a read at an older one.
    readRevision = atRevision ?? Number(response.header.revision);
  } catch (err) {
    throw etcdFailure(location, atRevision === undefined ? 'read the set' : `read the set at revision ${atRevision}`, err);
  }
  let revision = 0;
  let writeId: string | undefined;
  const loaded: EtcdDocument[] = [];
  for (const kv of kvs) {
    const etcdKey = kv.key.toString();
    if (etcdKey === keys.revisionKey) {
      revision = Number(kv.mod_revision);
      writeId = kv.value.toString('utf8');
    } else if (etcdKey.startsWith(keys.docsPrefix)) {
      loaded.push(decodeEtcdDocument(keys, location, kv));
    }
  }
  loaded.sort((a, b) => compareKeys(a.key, b.key));
  const documents = new Map<string, EtcdDocument>();
  let bytes = 0;
  for (const document of loaded) {
    documents.set(documentId(document.key), document);
    bytes += document.bytes;
  }
  return { revision, readRevision, writeId, documents, bytes };
}
