/**
 * What a configuration kind (Service, and later Route, DestinationPolicy…)
 * provides: a schema for its `spec`, how a valid document becomes the model
 * the rest of the code uses, checks across documents of the kind, and where
 * the models go in MeshConfig. validate.ts handles everything common
 * (apiVersion, metadata, unknown top-level fields, duplicates); a new kind is
 * one file calling defineKind() and one row in kinds.ts.
 */
import type * as z from 'zod';
import type { ObjectMeta } from './metadata-schema.js';
import { fallbackErrorMap, fromZodIssues } from './schema-issues.js';
import type { DocumentIssue } from './schema-issues.js';
import type { MeshConfig } from './types.js';
import type { RawDocument } from './yaml-documents.js';

/** A document that passed its kind's schema, as its model. */
export interface CheckedDocument<Model> {
  readonly source: RawDocument;
  readonly metadata: ObjectMeta;
  readonly model: Model;
}

/** An issue found by comparing documents; it belongs to `source`. */
export interface PlacedIssue extends DocumentIssue {
  readonly source: RawDocument;
}

export interface KindDefinition<Parsed, Model> {
  readonly kind: string;
  /** Validates `spec` (the document's, as plain values). */
  readonly spec: z.ZodType<Parsed>;
  /** The model of one valid document, in a fixed object shape. */
  build(metadata: ObjectMeta, spec: Parsed): Model;
  /** Conflicts between documents of this kind (two services claiming a VIP). */
  crossCheck?(documents: readonly CheckedDocument<Model>[]): PlacedIssue[];
  /** Puts the models (in document order) into the config. */
  collect(models: Model[], config: MeshConfig): void;
}

/** One validation pass over the documents of one kind. */
export interface KindRun {
  /**
   * Validates one document's spec. Its model is kept for the cross-checks and
   * the config only when `metadata` is valid too (undefined when it is not).
   */
  add(source: RawDocument, metadata: ObjectMeta | undefined, spec: unknown): DocumentIssue[];
  /** Cross-document checks, then (when `config` is given) the models into it. */
  finish(config: MeshConfig | undefined): PlacedIssue[];
}

/** A kind as the table in kinds.ts holds it: its types stay inside. */
export interface RegisteredKind {
  readonly kind: string;
  begin(): KindRun;
}

export function defineKind<Parsed, Model>(definition: KindDefinition<Parsed, Model>): RegisteredKind {
  return {
    kind: definition.kind,
    begin(): KindRun {
      const documents: CheckedDocument<Model>[] = [];
      return {
        add(source, metadata, spec) {
          const result = definition.spec.safeParse(spec, { error: fallbackErrorMap });
          if (!result.success) return fromZodIssues(result.error.issues, ['spec']);
          if (metadata !== undefined) documents.push({ source, metadata, model: definition.build(metadata, result.data) });
          return [];
        },
        finish(config) {
          const issues = definition.crossCheck?.(documents) ?? [];
          if (config !== undefined) definition.collect(documents.map((document) => document.model), config);
          return issues;
        },
      };
    },
  };
}
