/**
 * The `DestinationPolicy` kind (Istio's DestinationRule): how a proxy treats
 * the endpoints of one service: subsets by labels, load balancing, endpoint
 * weights, connection-pool limits, active health checks, outlier detection
 * and TLS. A subset's `overrides` replace whole blocks of the service's
 * policy for that subset (Istio's subset trafficPolicy).
 *
 *   spec:
 *     host: reviews
 *     loadBalancer: { simple: leastRequest }
 *     outlierDetection: { consecutive5xx: 3, baseEjectionTime: 30s }
 *     panicThreshold: 50        # % usable below which all endpoints get traffic; 0: off
 *     subsets:
 *       - { name: v1, labels: { version: v1 } }
 *       - { name: v2, labels: { version: v2 }, overrides: { connectionPool: { maxRequests: 10 } } }
 */
import * as z from 'zod';
import { headerName, httpPath, isHeaderName } from './http-schema-parts.js';
import { defineKind } from './kind-definition.js';
import type { CheckedDocument, PlacedIssue } from './kind-definition.js';
import type { ObjectMeta } from './metadata-schema.js';
import {
  AT_KEY,
  dnsLabel,
  duration,
  exactlyOneOf,
  expecting,
  fieldOf,
  hostOrIp,
  integer,
  labelMap,
  listOf,
  oneOf,
  percent,
  portNumber,
  resolveServiceRef,
  serviceRef,
  strictFields,
  stringKey,
  textMatching,
  uniqueItems,
  whenList,
  whenMapping,
  whenValid,
} from './schema-parts.js';
import type { ConnectionPool, DestinationPolicySpec, EndpointWeight, HealthCheck, LoadBalancer, OutlierDetection, TrafficPolicy } from './types.js';
import { describeServiceRef, whereIs } from './where.js';

const LOAD_BALANCERS = ['roundRobin', 'leastRequest', 'random'] as const;

const cookieSchema = strictFields(
  { name: textMatching('a cookie name (letters, digits and !#$%&\'*+-.^_`|~)', isHeaderName), ttl: duration('1s', '365d').optional() },
  'a cookie: a mapping with name and optionally ttl',
);

const consistentHashSchema = strictFields(
  {
    header: headerName().optional(),
    cookie: cookieSchema.optional(),
    sourceAddress: z.literal(true, { error: expecting('true') }).optional(),
  },
  'a mapping with one of header, cookie and sourceAddress',
).superRefine(exactlyOneOf(['header', 'cookie', 'sourceAddress']), whenMapping);

const loadBalancerSchema = strictFields(
  { simple: oneOf(LOAD_BALANCERS).optional(), consistentHash: consistentHashSchema.optional() },
  `a mapping with simple (${LOAD_BALANCERS.join(', ')}) or consistentHash`,
).superRefine(exactlyOneOf(['simple', 'consistentHash']), whenMapping);

/** A label selector must select something: an empty one would match every endpoint. */
function nonEmptyLabels() {
  return labelMap().refine((labels) => Object.keys(labels).length > 0, { error: 'expected at least one label, got an empty mapping' });
}

const endpointWeightSchema = strictFields(
  { labels: nonEmptyLabels().optional(), address: hostOrIp().optional(), port: portNumber().optional(), weight: integer(1, 128) },
  'an endpoint weight: a mapping with labels or address (and optionally port), and weight',
)
  .superRefine(exactlyOneOf(['labels', 'address']), whenMapping)
  .superRefine((value, ctx) => {
    if (value.port !== undefined && value.address === undefined) {
      ctx.addIssue({ code: 'custom', path: ['port'], message: 'can only be used with address', params: AT_KEY, input: value.port });
    }
  }, whenMapping);

const LIMIT = 1_000_000;

const connectionPoolSchema = strictFields(
  {
    maxConnections: integer(1, LIMIT).optional(),
    maxPendingRequests: integer(0, LIMIT).optional(),
    maxRequests: integer(1, LIMIT).optional(),
    maxRetries: integer(0, LIMIT).optional(),
    connectTimeout: duration('1ms', '1m').optional(),
  },
  'a mapping with any of maxConnections, maxPendingRequests, maxRequests, maxRetries and connectTimeout',
);

const healthCheckSchema = strictFields(
  {
    path: httpPath(),
    interval: duration('100ms', '1h').default(10_000),
    timeout: duration('1ms', '1m').default(1_000),
    healthyThreshold: integer(1, 100).default(2),
    unhealthyThreshold: integer(1, 100).default(3),
  },
  'a health check: a mapping with path and optionally interval, timeout, healthyThreshold and unhealthyThreshold',
).superRefine((value, ctx) => {
  if (value.timeout > value.interval) {
    ctx.addIssue({ code: 'custom', path: ['timeout'], message: 'expected a duration no longer than interval: a check must end before the next one starts', input: value.timeout });
  }
}, whenValid(['timeout'], ['interval']));

const outlierDetectionSchema = strictFields(
  {
    consecutive5xx: integer(0, 10_000).default(5),
    consecutiveGatewayErrors: integer(0, 10_000).default(0),
    interval: duration('100ms', '1h').default(10_000),
    baseEjectionTime: duration('1ms', '1h').default(30_000),
    maxEjectionPercent: percent().default(10),
  },
  'a mapping with any of consecutive5xx, consecutiveGatewayErrors, interval, baseEjectionTime and maxEjectionPercent',
).superRefine((value, ctx) => {
  if (value.consecutive5xx === 0 && value.consecutiveGatewayErrors === 0) {
    ctx.addIssue({ code: 'custom', message: 'consecutive5xx and consecutiveGatewayErrors are both 0: nothing would ever eject an endpoint', input: value });
  }
}, whenValid(['consecutive5xx'], ['consecutiveGatewayErrors']));

const tlsSchema = strictFields({ mode: oneOf(['MESH', 'DISABLE']) }, 'a mapping with mode (MESH or DISABLE)');

/** The policy blocks, at the top of spec and in a subset's overrides. */
const policyFields = {
  loadBalancer: loadBalancerSchema.optional(),
  endpointWeights: listOf(endpointWeightSchema, 'a list of endpoint weights').optional(),
  connectionPool: connectionPoolSchema.optional(),
  healthCheck: healthCheckSchema.optional(),
  outlierDetection: outlierDetectionSchema.optional(),
  tls: tlsSchema.optional(),
  panicThreshold: percent().optional(),
};

const POLICY_WORDS = 'loadBalancer, endpointWeights, connectionPool, healthCheck, outlierDetection, tls and panicThreshold';

const subsetSchema = strictFields(
  { name: dnsLabel(), labels: nonEmptyLabels(), overrides: strictFields(policyFields, `a mapping with any of ${POLICY_WORDS}`).optional() },
  'a subset: a mapping with name, labels and optionally overrides',
);

export const destinationPolicySpecSchema = strictFields(
  {
    host: serviceRef(),
    subsets: listOf(subsetSchema, 'a list of subsets')
      .superRefine(
        uniqueItems('subsets', (subset) => stringKey(fieldOf(subset, 'name')), (name) => `subset name ${name}`, 'name'),
        whenList,
      )
      .default([]),
    ...policyFields,
  },
  `a mapping with host and optionally subsets, ${POLICY_WORDS}`,
);

type ParsedSpec = z.output<typeof destinationPolicySpecSchema>;
type ParsedPolicy = Pick<ParsedSpec, keyof typeof policyFields>;

function buildLoadBalancer(parsed: NonNullable<ParsedPolicy['loadBalancer']>): LoadBalancer {
  const hash = parsed.consistentHash;
  if (hash === undefined) return { kind: parsed.simple ?? 'roundRobin' };
  if (hash.header !== undefined) return { kind: 'consistentHash', key: { kind: 'header', name: hash.header.toLowerCase() } };
  if (hash.cookie !== undefined) return { kind: 'consistentHash', key: { kind: 'cookie', name: hash.cookie.name, ttlMs: hash.cookie.ttl ?? null } };
  return { kind: 'consistentHash', key: { kind: 'sourceAddress' } };
}

function buildEndpointWeight(parsed: NonNullable<ParsedPolicy['endpointWeights']>[number]): EndpointWeight {
  if (parsed.labels !== undefined) return { kind: 'labels', labels: { ...parsed.labels }, weight: parsed.weight };
  return { kind: 'address', address: parsed.address as string, port: parsed.port ?? null, weight: parsed.weight };
}

function buildConnectionPool(parsed: ParsedPolicy['connectionPool']): ConnectionPool {
  return {
    maxConnections: parsed?.maxConnections ?? null,
    maxPendingRequests: parsed?.maxPendingRequests ?? null,
    maxRequests: parsed?.maxRequests ?? null,
    maxRetries: parsed?.maxRetries ?? null,
    connectTimeoutMs: parsed?.connectTimeout ?? null,
  };
}

function buildHealthCheck(parsed: NonNullable<ParsedPolicy['healthCheck']>): HealthCheck {
  return {
    path: parsed.path,
    intervalMs: parsed.interval,
    timeoutMs: parsed.timeout,
    healthyThreshold: parsed.healthyThreshold,
    unhealthyThreshold: parsed.unhealthyThreshold,
  };
}

function buildOutlierDetection(parsed: NonNullable<ParsedPolicy['outlierDetection']>): OutlierDetection {
  return {
    consecutive5xx: parsed.consecutive5xx,
    consecutiveGatewayErrors: parsed.consecutiveGatewayErrors,
    intervalMs: parsed.interval,
    baseEjectionTimeMs: parsed.baseEjectionTime,
    maxEjectionPercent: parsed.maxEjectionPercent,
  };
}

/** `base` with the blocks `parsed` writes replaced; the whole policy when there is no base. */
function buildPolicy(parsed: ParsedPolicy, base: TrafficPolicy | undefined): TrafficPolicy {
  return {
    loadBalancer: parsed.loadBalancer !== undefined ? buildLoadBalancer(parsed.loadBalancer) : (base?.loadBalancer ?? { kind: 'roundRobin' }),
    endpointWeights: parsed.endpointWeights !== undefined ? parsed.endpointWeights.map(buildEndpointWeight) : (base?.endpointWeights ?? []),
    connectionPool: parsed.connectionPool !== undefined || base === undefined ? buildConnectionPool(parsed.connectionPool) : base.connectionPool,
    healthCheck: parsed.healthCheck !== undefined ? buildHealthCheck(parsed.healthCheck) : (base?.healthCheck ?? null),
    outlierDetection: parsed.outlierDetection !== undefined ? buildOutlierDetection(parsed.outlierDetection) : (base?.outlierDetection ?? null),
    tls: parsed.tls !== undefined ? { mode: parsed.tls.mode } : (base?.tls ?? null),
    panicThresholdPercent: parsed.panicThreshold !== undefined ? parsed.panicThreshold : (base?.panicThresholdPercent ?? null),
  };
}

function buildDestinationPolicy(metadata: ObjectMeta, spec: ParsedSpec): DestinationPolicySpec {
  const policy = buildPolicy(spec, undefined);
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    host: resolveServiceRef(spec.host, metadata.namespace),
    policy,
    subsets: spec.subsets.map((subset) => ({ name: subset.name, labels: { ...subset.labels }, policy: buildPolicy(subset.overrides ?? {}, policy) })),
  };
}

/** One policy per service: with two, which subsets exist would depend on document order. */
function checkOnePerHost(documents: readonly CheckedDocument<DestinationPolicySpec>[]): PlacedIssue[] {
  const owners = new Map<string, CheckedDocument<DestinationPolicySpec>>();
  const issues: PlacedIssue[] = [];
  for (const document of documents) {
    const key = describeServiceRef(document.model.host);
    const owner = owners.get(key);
    if (owner === undefined) {
      owners.set(key, document);
      continue;
    }
    const message = `service ${key} already has ${whereIs('DestinationPolicy', owner.model, owner.source)}; one DestinationPolicy per service`;
    issues.push({ source: document.source, path: ['spec', 'host'], message, at: 'value' });
  }
  return issues;
}

export const destinationPolicyKind = defineKind({
  kind: 'DestinationPolicy',
  spec: destinationPolicySpecSchema,
  build: buildDestinationPolicy,
  crossCheck: checkOnePerHost,
  collect(models: DestinationPolicySpec[], config) {
    (config.destinationPolicies ??= []).push(...models);
  },
});
