/**
 * Raw documents → MeshConfig, or every problem at once: per document (the
 * common envelope, then the kind's own schema) and across documents (a kind,
 * namespace and name defined twice; the kinds' own cross-checks; references
 * from one kind to another, reference-checks.ts).
 */
import * as z from 'zod';
import { didYouMean } from './did-you-mean.js';
import type { ConfigIssue } from './issues.js';
import { formatFieldPath } from './issues.js';
import type { KindRun, PlacedIssue } from './kind-definition.js';
import { API_VERSION, emptyMeshConfig, KINDS, SUPPORTED_KINDS } from './kinds.js';
import { metadataSchema, toObjectMeta } from './metadata-schema.js';
import { checkReferences } from './reference-checks.js';
import type { Placed, PlacedSet } from './reference-checks.js';
import type { ObjectMeta } from './metadata-schema.js';
import { fallbackErrorMap, fromZodIssues } from './schema-issues.js';
import type { DocumentIssue } from './schema-issues.js';
import { describeValue, expecting, strictFields } from './schema-parts.js';
import type { MeshConfig } from './types.js';
import type { RawDocument } from './yaml-documents.js';

export type ValidationResult = { readonly ok: true; readonly config: MeshConfig } | { readonly ok: false; readonly errors: ConfigIssue[] };

const ENVELOPE_WORDS = 'a mapping with apiVersion, kind, metadata and spec';

/**
 * The fields every document has. kind, metadata and spec are only named here
 * (so they are not unknown fields); each is checked on its own below, so that
 * a wrong apiVersion does not hide a wrong port.
 */
const envelopeSchema = strictFields(
  {
    apiVersion: z.literal(API_VERSION, { error: expecting(API_VERSION) }),
    // optional here: whether they are missing is each one's own check's to say.
    kind: z.unknown().optional(),
    metadata: z.unknown().optional(),
    spec: z.unknown().optional(),
  },
  ENVELOPE_WORDS,
);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** kind and name for ConfigIssue, from the raw document (they may be wrong or missing). */
function labelsOf(value: unknown): { kind: string; name: string } {
  if (!isRecord(value)) return { kind: '', name: '' };
  const kind = typeof value['kind'] === 'string' ? value['kind'] : '';
  const metadata = value['metadata'];
  const name = isRecord(metadata) && typeof metadata['name'] === 'string' ? metadata['name'] : '';
  return { kind, name };
}

function toConfigIssue(source: RawDocument, issue: DocumentIssue): ConfigIssue {
  const { kind, name } = labelsOf(source.value);
  const position = source.positions.locate(issue.path, issue.at);
  return {
    file: source.file,
    document: source.index,
    kind,
    name,
    path: formatFieldPath(issue.path),
    message: issue.message,
    ...(position !== undefined ? { line: position.line, column: position.column } : {}),
  };
}

function kindIssue(found: unknown): DocumentIssue {
  const words = `one of ${SUPPORTED_KINDS.join(', ')}`;
  const message =
    found === undefined
      ? `missing; expected ${words}`
      : `expected ${words}, got ${describeValue(found)}${typeof found === 'string' ? didYouMean(found, SUPPORTED_KINDS) : ''}`;
  return { path: ['kind'], message, at: 'value' };
}

interface CheckedEnvelope {
  readonly issues: DocumentIssue[];
  readonly kind?: string;
  readonly metadata?: ObjectMeta;
  /** Its kind's run kept its model (valid metadata and spec), so it is in the config. */
  readonly accepted: boolean;
}

/** Issues of one document; `runs` receives it when its kind is known. */
function checkDocument(source: RawDocument, runs: Map<string, KindRun>): CheckedEnvelope {
  const value = source.value;
  if (!isRecord(value)) {
    return { issues: [{ path: [], message: `expected ${ENVELOPE_WORDS}, got ${describeValue(value)}`, at: 'value' }], accepted: false };
  }
  const envelope = envelopeSchema.safeParse(value, { error: fallbackErrorMap });
  const issues = envelope.success ? [] : fromZodIssues(envelope.error.issues, []);

  const parsedMetadata = metadataSchema.safeParse(value['metadata'], { error: fallbackErrorMap });
  const metadata = parsedMetadata.success ? toObjectMeta(parsedMetadata.data) : undefined;
  if (!parsedMetadata.success) issues.push(...fromZodIssues(parsedMetadata.error.issues, ['metadata']));

  const kind = value['kind'];
  const registered = typeof kind === 'string' ? KINDS.get(kind) : undefined;
  if (registered === undefined) {
    issues.push(kindIssue(kind));
    return { issues, accepted: false, ...(metadata !== undefined ? { metadata } : {}) };
  }
  let run = runs.get(registered.kind);
  if (run === undefined) {
    run = registered.begin();
    runs.set(registered.kind, run);
  }
  const specIssues = run.add(source, metadata, value['spec']);
  issues.push(...specIssues);
  // The same condition as defineKind's add() for keeping the model.
  const accepted = specIssues.length === 0 && metadata !== undefined;
  return { issues, kind: registered.kind, accepted, ...(metadata !== undefined ? { metadata } : {}) };
}

/** Reading order for people: by file, then document, then position. */
function byPlace(a: ConfigIssue, b: ConfigIssue): number {
  if (a.file !== b.file) return a.file < b.file ? -1 : 1;
  const docA = a.document ?? -1;
  const docB = b.document ?? -1;
  if (docA !== docB) return docA - docB;
  if ((a.line ?? 0) !== (b.line ?? 0)) return (a.line ?? 0) - (b.line ?? 0);
  return (a.column ?? 0) - (b.column ?? 0);
}

/**
 * Validates every document. `readIssues` are the problems found while reading
 * (YAML syntax, empty files) so that they are reported with the rest and make
 * the result invalid.
 */
export function validateDocuments(documents: readonly RawDocument[], readIssues: readonly ConfigIssue[] = []): ValidationResult {
  const errors: ConfigIssue[] = [...readIssues];
  const runs = new Map<string, KindRun>();
  const firstDefinition = new Map<string, RawDocument>();
  const accepted = new Map<string, RawDocument[]>();
  const incomplete = new Set<string>();

  for (const source of documents) {
    const checked = checkDocument(source, runs);
    for (const issue of checked.issues) errors.push(toConfigIssue(source, issue));
    if (checked.kind !== undefined) {
      if (checked.accepted) getOrAdd(accepted, checked.kind).push(source);
      else incomplete.add(checked.kind);
    }
    if (checked.kind === undefined || checked.metadata === undefined) continue;
    const id = `${checked.kind} ${checked.metadata.namespace}/${checked.metadata.name}`;
    const first = firstDefinition.get(id);
    if (first === undefined) {
      firstDefinition.set(id, source);
    } else {
      errors.push(
        toConfigIssue(source, {
          path: ['metadata', 'name'],
          message: `duplicate ${id}: already defined in ${first.file}, document ${first.index}`,
          at: 'value',
        }),
      );
    }
  }

  // The models are collected even when there are errors already: the
  // references between the valid documents are checked either way, so that
  // every problem is reported at once.
  const crossIssues: PlacedIssue[] = [];
  const config = emptyMeshConfig();
  for (const registered of KINDS.values()) {
    const run = runs.get(registered.kind);
    if (run !== undefined) crossIssues.push(...run.finish(config));
  }
  crossIssues.push(...checkReferences(placeModels(config, accepted, incomplete)));
  for (const issue of crossIssues) errors.push(toConfigIssue(issue.source, issue));

  if (errors.length > 0) return { ok: false, errors: errors.sort(byPlace) };
  return { ok: true, config };
}

function getOrAdd<Key, Value>(map: Map<Key, Value[]>, key: Key): Value[] {
  let list = map.get(key);
  if (list === undefined) {
    list = [];
    map.set(key, list);
  }
  return list;
}

/**
 * Each model with its document. A kind's collect() puts one model per
 * accepted document into the config, in document order, so the two lists
 * pair up; a mismatch is a bug in a kind, not bad input.
 */
function placeModels(config: MeshConfig, accepted: ReadonlyMap<string, RawDocument[]>, incomplete: ReadonlySet<string>): PlacedSet {
  function place<Model>(kind: string, models: readonly Model[] | undefined): Placed<Model>[] {
    const sources = accepted.get(kind) ?? [];
    const list = models ?? [];
    if (sources.length !== list.length) throw new Error(`internal error: ${sources.length} valid ${kind} documents gave ${list.length} models`);
    return list.map((model, index) => ({ source: sources[index] as RawDocument, model }));
  }
  return {
    services: place('Service', config.services),
    routes: place('Route', config.routes),
    destinationPolicies: place('DestinationPolicy', config.destinationPolicies),
    rateLimits: place('RateLimit', config.rateLimits),
    authorizationPolicies: place('AuthorizationPolicy', config.authorizationPolicies),
    peerAuthentications: place('PeerAuthentication', config.peerAuthentications),
    circuitPolicies: place('CircuitPolicy', config.circuitPolicies),
    incomplete,
  };
}
