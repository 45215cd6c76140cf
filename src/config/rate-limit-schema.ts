/**
 * The `RateLimit` kind (Envoy's local rate limit, as Istio users write it in
 * an EnvoyFilter): a token bucket in front of a service, or of some of its
 * Route rules, optionally one bucket per calling service, answering
 * `statusCode` (429) when empty.
 *
 *   spec:
 *     target: { service: reviews, routes: [canary] }
 *     tokenBucket: { maxTokens: 100, tokensPerFill: 10, fillInterval: 1s }
 *     perSource: true
 *     overrides: [{ source: web, tokenBucket: { maxTokens: 20, tokensPerFill: 2, fillInterval: 1s } }]
 */
import type * as z from 'zod';
import { httpStatus } from './http-schema-parts.js';
import { defineKind } from './kind-definition.js';
import type { CheckedDocument, PlacedIssue } from './kind-definition.js';
import type { ObjectMeta } from './metadata-schema.js';
import {
  dnsLabel,
  duration,
  fieldOf,
  flag,
  integer,
  listOf,
  nonEmptyListOf,
  resolveServiceRef,
  serviceRef,
  strictFields,
  stringKey,
  uniqueItems,
  whenList,
  whenValid,
} from './schema-parts.js';
import type { RateLimitSpec, TokenBucket } from './types.js';
import { describeServiceRef, whereIs } from './where.js';

const MAX_TOKENS = 1_000_000_000;

const tokenBucketSchema = strictFields(
  { maxTokens: integer(1, MAX_TOKENS), tokensPerFill: integer(1, MAX_TOKENS).default(1), fillInterval: duration('1ms', '24h') },
  'a token bucket: a mapping with maxTokens, fillInterval and optionally tokensPerFill',
).superRefine((value, ctx) => {
  if (value.tokensPerFill > value.maxTokens) {
    ctx.addIssue({ code: 'custom', path: ['tokensPerFill'], message: `expected at most maxTokens (${value.maxTokens}): the bucket never holds more`, input: value.tokensPerFill });
  }
}, whenValid(['maxTokens'], ['tokensPerFill']));

const targetSchema = strictFields(
  {
    service: serviceRef(),
    routes: nonEmptyListOf(dnsLabel(), 'a non-empty list of Route rule names')
      .superRefine(
        uniqueItems('routes', stringKey, (name) => `route ${name}`),
        whenList,
      )
      .optional(),
  },
  'a target: a mapping with service and optionally routes',
);

const overrideSchema = strictFields({ source: serviceRef(), tokenBucket: tokenBucketSchema }, 'an override: a mapping with source and tokenBucket');

/** `web` or `web.shop` as written, for "already used" messages. */
function sourceKey(override: unknown): string | undefined {
  const source = fieldOf(override, 'source');
  const name = stringKey(fieldOf(source, 'name'));
  const namespace = stringKey(fieldOf(source, 'namespace'));
  return name === undefined ? undefined : namespace === undefined ? name : `${name}.${namespace}`;
}

export const rateLimitSpecSchema = strictFields(
  {
    target: targetSchema,
    tokenBucket: tokenBucketSchema,
    perSource: flag().default(false),
    overrides: listOf(overrideSchema, 'a list of overrides')
      .superRefine(
        uniqueItems('overrides', sourceKey, (source) => `source ${source}`, 'source'),
        whenList,
      )
      .default([]),
    statusCode: httpStatus(400, 599).default(429),
  },
  'a mapping with target, tokenBucket and optionally perSource, overrides and statusCode',
);

type ParsedSpec = z.output<typeof rateLimitSpecSchema>;

function buildBucket(parsed: ParsedSpec['tokenBucket']): TokenBucket {
  return { maxTokens: parsed.maxTokens, tokensPerFill: parsed.tokensPerFill, fillIntervalMs: parsed.fillInterval };
}

function buildRateLimit(metadata: ObjectMeta, spec: ParsedSpec): RateLimitSpec {
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    service: resolveServiceRef(spec.target.service, metadata.namespace),
    routes: [...(spec.target.routes ?? [])],
    bucket: buildBucket(spec.tokenBucket),
    perSource: spec.perSource,
    overrides: spec.overrides.map((override) => ({ source: resolveServiceRef(override.source, metadata.namespace), bucket: buildBucket(override.tokenBucket) })),
    statusCode: spec.statusCode,
  };
}

/**
 * Two limits for the same requests (the same service, or the same rule of
 * it) would make the effective limit depend on which one a proxy applies first.
 */
function checkOnePerScope(documents: readonly CheckedDocument<RateLimitSpec>[]): PlacedIssue[] {
  const owners = new Map<string, CheckedDocument<RateLimitSpec>>();
  const issues: PlacedIssue[] = [];
  for (const document of documents) {
    const service = describeServiceRef(document.model.service);
    const scopes: Array<{ key: string; path: PropertyKey[] }> =
      document.model.routes.length === 0 ? [{ key: `every request to ${service}`, path: ['spec', 'target', 'service'] }] : [];
    document.model.routes.forEach((route, index) => scopes.push({ key: `route ${route} of ${service}`, path: ['spec', 'target', 'routes', index] }));
    for (const scope of scopes) {
      const owner = owners.get(scope.key);
      if (owner === undefined) {
        owners.set(scope.key, document);
        continue;
      }
      issues.push({ source: document.source, path: scope.path, message: `${scope.key} is already limited by ${whereIs('RateLimit', owner.model, owner.source)}`, at: 'value' });
    }
  }
  return issues;
}

export const rateLimitKind = defineKind({
  kind: 'RateLimit',
  spec: rateLimitSpecSchema,
  build: buildRateLimit,
  crossCheck: checkOnePerScope,
  collect(models: RateLimitSpec[], config) {
    (config.rateLimits ??= []).push(...models);
  },
});
