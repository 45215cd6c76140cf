/**
 * Documents in and out of the store: the envelope checks that make a document
 * storable under its key (not the kinds' schemas: those ran before), plain
 * JSON only, the size limits, and the JSON text both stores keep.
 */
import type { ConfigDocument, DocumentKey } from './types.js';
import { storeError } from './store-errors.js';

/** One document's JSON text; a proxy config is made of many small ones. */
export const MAX_DOCUMENT_BYTES = 1024 * 1024;
/** The whole set: list() holds it in memory, and every proxy's snapshot is built from it. */
export const MAX_SET_BYTES = 64 * 1024 * 1024;
/** Same bound as the YAML reader's (src/config/yaml-documents.ts); also keeps the walk off deep stacks. */
const MAX_JSON_DEPTH = 64;

/** Names are path segments and etcd key segments: DNS-1123 labels, as the schema demands. */
const DNS_LABEL = /^[a-z0-9](?:[-a-z0-9]{0,61}[a-z0-9])?$/;
const KIND_NAME = /^[A-Z][A-Za-z0-9]{0,62}$/;
const TOP_LEVEL_FIELDS: ReadonlySet<string> = new Set(['apiVersion', 'kind', 'metadata', 'spec']);
const METADATA_FIELDS: ReadonlySet<string> = new Set(['name', 'namespace', 'labels']);

export interface EncodedDocument {
  readonly key: DocumentKey;
  /** `kind/namespace/name`: map key, file path below a set, etcd key suffix. */
  readonly id: string;
  readonly document: ConfigDocument;
  /** The JSON text stored. */
  readonly text: string;
  readonly bytes: number;
}

export function documentId(key: DocumentKey): string {
  return `${key.kind}/${key.namespace}/${key.name}`;
}

/** Kind, then namespace, then name: the order of list(). */
export function compareKeys(a: DocumentKey, b: DocumentKey): number {
  if (a.kind !== b.kind) return a.kind < b.kind ? -1 : 1;
  if (a.namespace !== b.namespace) return a.namespace < b.namespace ? -1 : 1;
  return a.name < b.name ? -1 : a.name > b.name ? 1 : 0;
}

export function keyOf(document: ConfigDocument): DocumentKey {
  return { kind: document.kind, namespace: document.metadata.namespace, name: document.metadata.name };
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return false;
  const proto: unknown = Object.getPrototypeOf(value);
  return proto === Object.prototype || proto === null;
}

function describe(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}…` : value);
  if (typeof value === 'object') return isPlainObject(value) ? 'a mapping' : `a ${value.constructor?.name ?? 'non-plain'} object`;
  return `${typeof value} ${String(value)}`;
}

/** The path of the first value that is not plain JSON, and why; undefined when all is JSON. */
function firstNonJson(value: unknown, path: string, depth: number): string | undefined {
  if (value === null || typeof value === 'string' || typeof value === 'boolean') return undefined;
  if (typeof value === 'number') return Number.isFinite(value) ? undefined : `${path}: ${value} is not a JSON number`;
  if (depth > MAX_JSON_DEPTH) return `${path}: nested deeper than ${MAX_JSON_DEPTH} levels`;
  if (Array.isArray(value)) {
    for (let i = 0; i < value.length; i++) {
      const issue = firstNonJson(value[i], `${path}[${i}]`, depth + 1);
      if (issue !== undefined) return issue;
    }
    return undefined;
  }
  if (isPlainObject(value)) {
    for (const [field, inner] of Object.entries(value)) {
      const issue = firstNonJson(inner, `${path}.${field}`, depth + 1);
      if (issue !== undefined) return issue;
    }
    return undefined;
  }
  return `${path}: ${describe(value)} is not JSON data`;
}

/** The envelope's problems, each `field: what is wrong` (empty when fine). */
function envelopeIssues(value: unknown): string[] {
  if (!isPlainObject(value)) return [`expected a mapping with apiVersion, kind, metadata and spec, got ${describe(value)}`];
  const issues: string[] = [];
  for (const field of Object.keys(value)) if (!TOP_LEVEL_FIELDS.has(field)) issues.push(`${field}: unknown field`);
  const { apiVersion, kind, metadata } = value;
  if (typeof apiVersion !== 'string' || apiVersion.length === 0) issues.push(`apiVersion: expected a non-empty string, got ${describe(apiVersion)}`);
  if (typeof kind !== 'string' || !KIND_NAME.test(kind)) issues.push(`kind: expected a kind name such as Service, got ${describe(kind)}`);
  if (!('spec' in value)) issues.push('spec: missing');
  if (!isPlainObject(metadata)) {
    issues.push(`metadata: expected a mapping with name and namespace, got ${describe(metadata)}`);
    return issues;
  }
  for (const field of Object.keys(metadata)) if (!METADATA_FIELDS.has(field)) issues.push(`metadata.${field}: unknown field`);
  for (const field of ['name', 'namespace'] as const) {
    const text = metadata[field];
    if (typeof text !== 'string' || !DNS_LABEL.test(text)) issues.push(`metadata.${field}: expected a DNS-1123 label, got ${describe(text)}`);
  }
  const labels = metadata['labels'];
  if (labels !== undefined && (!isPlainObject(labels) || Object.values(labels).some((label) => typeof label !== 'string'))) {
    issues.push(`metadata.labels: expected a mapping of strings, got ${describe(labels)}`);
  }
  return issues;
}

/**
 * Checks a document given to the store and serialises it. `where` names it
 * for the error (`document 2 of the set`). Throws TM_ERR_CP_STORE_BAD_DOCUMENT
 * or TM_ERR_CP_STORE_TOO_LARGE.
 */
export function encodeDocument(value: unknown, where: string): EncodedDocument {
  const issues = envelopeIssues(value);
  const nonJson = issues.length === 0 ? firstNonJson(value, '', 0) : undefined;
  if (nonJson !== undefined) issues.push(nonJson.slice(1));
  if (issues.length > 0) throw storeError('TM_ERR_CP_STORE_BAD_DOCUMENT', `${where}: not a storable document: ${issues.join('; ')}`);
  const text = JSON.stringify(value);
  const bytes = Buffer.byteLength(text);
  const document = JSON.parse(text) as ConfigDocument;
  const key = keyOf(document);
  const id = documentId(key);
  if (bytes > MAX_DOCUMENT_BYTES) {
    throw storeError('TM_ERR_CP_STORE_TOO_LARGE', `${where} (${id}): ${bytes} bytes of JSON; a document may have at most ${MAX_DOCUMENT_BYTES} (1 MiB)`);
  }
  return { key, id, document, text, bytes };
}

/** Checks a key given to get() or delete(). */
export function checkKey(key: DocumentKey, where: string): DocumentKey {
  const issues: string[] = [];
  if (typeof key.kind !== 'string' || !KIND_NAME.test(key.kind)) issues.push(`kind: expected a kind name such as Service, got ${describe(key.kind)}`);
  if (typeof key.namespace !== 'string' || !DNS_LABEL.test(key.namespace)) issues.push(`namespace: expected a DNS-1123 label, got ${describe(key.namespace)}`);
  if (typeof key.name !== 'string' || !DNS_LABEL.test(key.name)) issues.push(`name: expected a DNS-1123 label, got ${describe(key.name)}`);
  if (issues.length > 0) throw storeError('TM_ERR_CP_STORE_BAD_DOCUMENT', `${where}: ${issues.join('; ')}`);
  return { kind: key.kind, namespace: key.namespace, name: key.name };
}

/**
 * Reads back a stored text. `where` names its place (a file path, an etcd key
 * and URL); `expected` is the key the place implies, which the document must
 * carry. Throws TM_ERR_CP_STORE_CORRUPT.
 */
export function decodeDocument(text: string, where: string, expected: DocumentKey): ConfigDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw storeError('TM_ERR_CP_STORE_CORRUPT', `${where}: not valid JSON (${err instanceof Error ? err.message : String(err)})`, err);
  }
  const issues = envelopeIssues(value);
  if (issues.length > 0) throw storeError('TM_ERR_CP_STORE_CORRUPT', `${where}: not a configuration document: ${issues.join('; ')}`);
  const document = value as ConfigDocument;
  const found = documentId(keyOf(document));
  if (found !== documentId(expected)) {
    throw storeError('TM_ERR_CP_STORE_CORRUPT', `${where}: holds ${found}, but its place is for ${documentId(expected)}`);
  }
  return document;
}

