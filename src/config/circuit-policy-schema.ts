/**
 * The `CircuitPolicy` kind: thresholds the policy engine applies to the
 * trace aggregates of a service (or one subset of it), as one circuit or one
 * per endpoint. Over `window`, with at least `minRequests`, an error rate or
 * a latency quantile above its threshold opens the circuit for `openFor`;
 * then `halfOpenRequests` trial requests decide. `mode: recommend` records
 * the decision without sending it to proxies. Defined and validated now;
 * the policy engine uses it in later work.
 *
 *   spec:
 *     target: { service: reviews, subset: v2 }
 *     scope: endpoint
 *     window: 1m
 *     minRequests: 20
 *     errorRatePercent: 50
 *     latency: { quantile: p99, thresholdMs: 800 }
 *     openFor: 30s
 *     halfOpenRequests: 5
 *     mode: enforce
 */
import type * as z from 'zod';
import { defineKind } from './kind-definition.js';
import type { CheckedDocument, PlacedIssue } from './kind-definition.js';
import type { ObjectMeta } from './metadata-schema.js';
import { atLeastOneOf, dnsLabel, duration, integer, oneOf, percent, resolveServiceRef, serviceRef, strictFields, whenMapping } from './schema-parts.js';
import type { CircuitPolicySpec } from './types.js';
import { describeServiceRef, whereIs } from './where.js';

const ERROR_RATE_WORDS = 'a percentage above 0, at most 100';

const latencySchema = strictFields(
  { quantile: oneOf(['p50', 'p90', 'p99']), thresholdMs: integer(1, 3_600_000, 'a whole number of milliseconds 1..3600000') },
  'a mapping with quantile and thresholdMs',
);

export const circuitPolicySpecSchema = strictFields(
  {
    target: strictFields({ service: serviceRef(), subset: dnsLabel().optional() }, 'a target: a mapping with service and optionally subset'),
    scope: oneOf(['destination', 'endpoint']).default('destination'),
    // The engine decides every few seconds; a shorter window holds too little evidence.
    window: duration('10s', '24h').default(60_000),
    minRequests: integer(1, 1_000_000_000).default(20),
    errorRatePercent: percent(ERROR_RATE_WORDS)
      .refine((value) => value > 0, { error: (issue) => `expected ${ERROR_RATE_WORDS}, got ${String(issue.input)}` })
      .optional(),
    latency: latencySchema.optional(),
    openFor: duration('1s', '24h').default(30_000),
    halfOpenRequests: integer(1, 1_000).default(1),
    mode: oneOf(['enforce', 'recommend']).default('recommend'),
  },
  'a mapping with target, errorRatePercent and/or latency, and optionally scope, window, minRequests, openFor, halfOpenRequests and mode',
).superRefine(atLeastOneOf(['errorRatePercent', 'latency']), whenMapping);

type ParsedSpec = z.output<typeof circuitPolicySpecSchema>;

function buildCircuitPolicy(metadata: ObjectMeta, spec: ParsedSpec): CircuitPolicySpec {
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    target: resolveServiceRef(spec.target.service, metadata.namespace),
    subset: spec.target.subset ?? null,
    scope: spec.scope,
    windowMs: spec.window,
    minRequests: spec.minRequests,
    errorRatePercent: spec.errorRatePercent ?? null,
    latency: spec.latency === undefined ? null : { quantile: spec.latency.quantile, thresholdMs: spec.latency.thresholdMs },
    openForMs: spec.openFor,
    halfOpenRequests: spec.halfOpenRequests,
    mode: spec.mode,
  };
}

/** Two policies for the same circuits would open and close them against each other. */
function checkOnePerTarget(documents: readonly CheckedDocument<CircuitPolicySpec>[]): PlacedIssue[] {
  const owners = new Map<string, CheckedDocument<CircuitPolicySpec>>();
  const issues: PlacedIssue[] = [];
  for (const document of documents) {
    const model = document.model;
    const subset = model.subset === null ? '' : ` subset ${model.subset}`;
    const key = `${model.scope === 'endpoint' ? 'the endpoints of ' : ''}service ${describeServiceRef(model.target)}${subset}`;
    const owner = owners.get(key);
    if (owner === undefined) {
      owners.set(key, document);
      continue;
    }
    issues.push({ source: document.source, path: ['spec', 'target'], message: `${key} already has ${whereIs('CircuitPolicy', owner.model, owner.source)}`, at: 'value' });
  }
  return issues;
}

export const circuitPolicyKind = defineKind({
  kind: 'CircuitPolicy',
  spec: circuitPolicySpecSchema,
  build: buildCircuitPolicy,
  crossCheck: checkOnePerTarget,
  collect(models: CircuitPolicySpec[], config) {
    (config.circuitPolicies ??= []).push(...models);
  },
});
