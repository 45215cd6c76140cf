/**
 * How messages name documents and the services they refer to, so that an
 * error about two documents says where the other one is.
 */
import type { RawDocument } from './yaml-documents.js';

interface Named {
  readonly name: string;
  readonly namespace: string;
}

/** `default/reviews`. */
export function describeServiceRef(ref: Named): string {
  return `${ref.namespace}/${ref.name}`;
}

/** `Route default/reviews (routes.yaml, document 2)`. */
export function whereIs(kind: string, model: Named, source: RawDocument): string {
  return `${kind} ${model.namespace}/${model.name} (${source.file}, document ${source.index})`;
}
