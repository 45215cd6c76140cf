/**
 * `metadata` as every kind has it: name, namespace (default "default") and
 * optional labels, Kubernetes-shaped so the same documents work there.
 */
import type * as z from 'zod';
import { dnsLabel, labelMap, strictFields } from './schema-parts.js';

export const DEFAULT_NAMESPACE = 'default';

export const metadataSchema = strictFields(
  {
    name: dnsLabel(),
    namespace: dnsLabel().default(DEFAULT_NAMESPACE),
    labels: labelMap().optional(),
  },
  'a mapping with name and optionally namespace and labels',
);

export interface ObjectMeta {
  readonly name: string;
  readonly namespace: string;
  readonly labels: Readonly<Record<string, string>>;
}

/** The validated metadata in a fixed shape (no pass-through fields, labels always present). */
export function toObjectMeta(parsed: z.output<typeof metadataSchema>): ObjectMeta {
  return { name: parsed.name, namespace: parsed.namespace, labels: parsed.labels ?? {} };
}
