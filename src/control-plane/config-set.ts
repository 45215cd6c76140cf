/**
 * A change to the stored configuration is checked as the whole set it would
 * make: the stored documents with the new ones in place (or one removed),
 * validated by the same code as a proxy's `--config` files. Any problem
 * anywhere rejects the change whole, so an invalid set never reaches a proxy.
 * Problems in the new documents name the file they came from; problems the
 * change causes in stored documents (a Route left pointing at a deleted
 * Service) name the stored document.
 */
import type { ConfigIssue } from '../config/issues.js';
import { validateDocuments } from '../config/validate.js';
import { parseYamlDocuments, type RawDocument } from '../config/yaml-documents.js';
import type { ConfigDocument, DocumentKey, JsonValue, StoreSnapshot } from './store/types.js';

export const STORED_FILE = '<stored configuration>';

export interface SourceText {
  /** The file name the CLI read it from (for messages); any label. */
  readonly file: string;
  readonly text: string;
}

export type SetCheck = { ok: true; put: ConfigDocument[] } | { ok: false; issues: ConfigIssue[] };

export function documentKey(document: ConfigDocument): DocumentKey {
  return { kind: document.kind, namespace: document.metadata.namespace, name: document.metadata.name };
}

export function keyText(key: DocumentKey): string {
  return `${key.kind} ${key.namespace}/${key.name}`;
}

/**
 * Issues about stored documents without line and column: those point into
 * the JSON text made for validation here, which no one can open.
 */
function withoutStoredPositions(issues: readonly ConfigIssue[]): ConfigIssue[] {
  return issues.map((issue) => {
    if (issue.file !== STORED_FILE) return issue;
    const { line: _line, column: _column, ...rest } = issue;
    return rest;
  });
}

/** The stored documents as raw documents of one pseudo-file (JSON is YAML). */
function storedRaw(stored: StoreSnapshot, leaveOut: ReadonlySet<string>): { documents: RawDocument[]; issues: ConfigIssue[] } {
  const kept = stored.documents.map((d) => d.document).filter((d) => !leaveOut.has(keyText(documentKey(d))));
  if (kept.length === 0) return { documents: [], issues: [] };
  return parseYamlDocuments(kept.map((d) => JSON.stringify(d)).join('\n---\n'), STORED_FILE);
}

/** A raw document as it will be stored: namespace filled in as validation reads it. */
function toConfigDocument(raw: RawDocument): ConfigDocument {
  const value = raw.value as { apiVersion: string; kind: string; metadata: { name: string; namespace?: string; labels?: Record<string, string> }; spec?: JsonValue };
  const metadata = { ...value.metadata, namespace: value.metadata.namespace ?? 'default' };
  return { apiVersion: value.apiVersion, kind: value.kind, metadata, spec: value.spec ?? {} };
}

export function checkApply(stored: StoreSnapshot, sources: readonly SourceText[]): SetCheck {
  const fresh: RawDocument[] = [];
  const issues: ConfigIssue[] = [];
  for (const source of sources) {
    const parsed = parseYamlDocuments(source.text, source.file);
    fresh.push(...parsed.documents);
    issues.push(...parsed.issues);
  }
  // Validated alone first: a schema problem in a new document is reported once, against its own file.
  const alone = validateDocuments(fresh, issues);
  if (!alone.ok) return { ok: false, issues: alone.errors };
  const put = fresh.map(toConfigDocument);
  const replaced = new Set(put.map((d) => keyText(documentKey(d))));
  const rest = storedRaw(stored, replaced);
  const whole = validateDocuments([...rest.documents, ...fresh], rest.issues);
  return whole.ok ? { ok: true, put } : { ok: false, issues: withoutStoredPositions(whole.errors) };
}

export function checkDelete(stored: StoreSnapshot, key: DocumentKey): { ok: true } | { ok: false; issues: ConfigIssue[] } {
  const rest = storedRaw(stored, new Set([keyText(key)]));
  const whole = validateDocuments(rest.documents, rest.issues);
  return whole.ok ? { ok: true } : { ok: false, issues: withoutStoredPositions(whole.errors) };
}
