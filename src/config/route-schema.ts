/**
 * The `Route` kind (Istio's VirtualService): for the services in `hosts`,
 * rules tried in order; the first whose match holds decides where the
 * request goes (weighted destinations by subset, or a redirect) and how
 * (rewrite, header edits, mirror, timeout, retries, fault injection).
 *
 *   spec:
 *     hosts: [reviews]
 *     http:
 *       - name: canary
 *         match: [{ path: { prefix: /api }, headers: { x-canary: { present: true } } }]
 *         destinations: [{ service: reviews, subset: v1, weight: 90 }, { service: reviews, subset: v2, weight: 10 }]
 *         timeout: 2s
 *         retries: { attempts: 2, retryOn: [5xx, connect-failure] }
 */
import * as z from 'zod';
import { headerMap, httpMethod, httpPath, presenceMatch, stringMatch, toNamedMatches, toStringMatch, uniqueHeaderNames } from './http-schema-parts.js';
import { defineKind } from './kind-definition.js';
import type { CheckedDocument, PlacedIssue } from './kind-definition.js';
import type { ObjectMeta } from './metadata-schema.js';
import { buildFault, buildHeaderEdits, buildMirror, buildRetries, faultSchema, headerEditsSchema, mirrorSchema, retriesSchema } from './route-policy-schema.js';
import {
  AT_KEY,
  atLeastOneOf,
  dnsLabel,
  duration,
  expectingNumber,
  fieldOf,
  hostOrIp,
  integer,
  isPlainObject,
  listOf,
  mapOf,
  nonEmptyListOf,
  portNumber,
  resolveServiceRef,
  serviceRef,
  strictFields,
  stringKey,
  uniqueItems,
  whenList,
  whenMapping,
  whenValid,
} from './schema-parts.js';
import { describeServiceRef, whereIs } from './where.js';
import type { RedirectCode, RouteDestination, RouteMatch, RouteRule, RouteSpec } from './types.js';

const MATCH_WORDS = 'a match: a mapping with any of host, path, method, headers and queryParams';

const matchSchema = strictFields(
  {
    host: hostOrIp().optional(),
    path: stringMatch(httpPath(), 'a path match: a mapping with one of exact, prefix and regex').optional(),
    method: httpMethod().optional(),
    headers: headerMap(presenceMatch('a header match: a mapping with one of exact, prefix, regex and present'), 'a mapping of header names to matches')
      .superRefine(uniqueHeaderNames, whenMapping)
      .optional(),
    queryParams: mapOf(
      presenceMatch('a query parameter match: a mapping with one of exact, prefix, regex and present'),
      'a mapping of query parameter names to matches',
      'a query parameter name (not empty)',
      (name) => name.length > 0,
    ).optional(),
  },
  MATCH_WORDS,
);

const destinationSchema = strictFields(
  { service: serviceRef(), subset: dnsLabel().optional(), port: portNumber().optional(), weight: integer(0, 100).optional() },
  'a destination: a mapping with service and optionally subset, port and weight',
);

/** `reviews subset v2 port 9080`, for "already used" messages. */
function destinationKey(item: unknown): string | undefined {
  const service = serviceRefKey(fieldOf(item, 'service'));
  if (service === undefined) return undefined;
  const subset = stringKey(fieldOf(item, 'subset'));
  const port = fieldOf(item, 'port');
  let key = service;
  if (subset !== undefined) key += ` subset ${subset}`;
  if (typeof port === 'number') key += ` port ${port}`;
  return key;
}

/** `reviews` or `reviews.shop` as written (after parsing), for "already used" messages. */
function serviceRefKey(item: unknown): string | undefined {
  const name = stringKey(fieldOf(item, 'name'));
  const namespace = stringKey(fieldOf(item, 'namespace'));
  return name === undefined ? undefined : namespace === undefined ? name : `${name}.${namespace}`;
}

/** One destination takes every request; several share them by weights that add up to 100. */
function checkWeights(items: readonly unknown[], ctx: z.RefinementCtx): void {
  if (items.length === 0) return;
  if (items.length === 1) {
    const weight = fieldOf(items[0], 'weight');
    if (typeof weight === 'number' && weight !== 100) {
      ctx.addIssue({ code: 'custom', path: [0, 'weight'], message: `a single destination takes every request: write 100 or leave weight out, got ${weight}`, input: weight });
    }
    return;
  }
  let sum = 0;
  let complete = true;
  items.forEach((item, index) => {
    const weight = fieldOf(item, 'weight');
    if (typeof weight === 'number' && Number.isInteger(weight) && weight >= 0 && weight <= 100) {
      sum += weight;
      return;
    }
    complete = false;
    if (isPlainObject(item) && weight === undefined) {
      ctx.addIssue({ code: 'custom', path: [index, 'weight'], message: 'missing; with more than one destination each needs a weight 0..100', input: undefined });
    }
  });
  if (complete && sum !== 100) {
    ctx.addIssue({ code: 'custom', message: `expected weights that add up to 100, got ${sum}`, input: items });
  }
}

const destinationsSchema = nonEmptyListOf(destinationSchema, 'a non-empty list of destinations')
  .superRefine(checkWeights, whenList)
  .superRefine(
    uniqueItems('destinations', destinationKey, (key) => `destination ${key}`),
    whenList,
  );

const REDIRECT_CODES = [301, 302, 303, 307, 308] as const satisfies readonly RedirectCode[];

function redirectCode() {
  const error = expectingNumber(`one of ${REDIRECT_CODES.join(', ')}`);
  return z.number({ error }).refine((code) => (REDIRECT_CODES as readonly number[]).includes(code), { error });
}

const redirectSchema = strictFields(
  { host: hostOrIp().optional(), path: httpPath().optional(), code: redirectCode().default(301) },
  'a redirect: a mapping with host and/or path, and optionally code',
).superRefine(atLeastOneOf(['host', 'path']), whenMapping);

const rewriteSchema = strictFields({ pathPrefix: httpPath().optional(), host: hostOrIp().optional() }, 'a mapping with pathPrefix and/or host').superRefine(
  atLeastOneOf(['pathPrefix', 'host']),
  whenMapping,
);

/** What a redirect rule cannot have: the proxy answers it itself, nothing is forwarded. */
const FORWARDING_ONLY = ['rewrite', 'mirror', 'timeout', 'retries'] as const;

function checkRuleAction(rule: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const forwards = rule['destinations'] !== undefined;
  const redirects = rule['redirect'] !== undefined;
  if (forwards && redirects) {
    ctx.addIssue({ code: 'custom', path: ['redirect'], message: 'cannot be used together with destinations: a rule either forwards or redirects', params: AT_KEY, input: rule['redirect'] });
  } else if (!forwards && !redirects) {
    ctx.addIssue({ code: 'custom', message: 'expected destinations or redirect, got neither', input: rule });
  }
  if (redirects) {
    for (const field of FORWARDING_ONLY) {
      if (rule[field] === undefined) continue;
      ctx.addIssue({ code: 'custom', path: [field], message: 'cannot be used with redirect: the proxy answers a redirect itself and forwards nothing', params: AT_KEY, input: rule[field] });
    }
  }
}

/** Runs only when both durations are valid (milliseconds by then). */
function checkPerTryTimeout(rule: Record<string, unknown>, ctx: z.RefinementCtx): void {
  const timeout = rule['timeout'];
  const perTry = fieldOf(rule['retries'], 'perTryTimeout');
  if (typeof timeout === 'number' && typeof perTry === 'number' && perTry > timeout) {
    ctx.addIssue({ code: 'custom', path: ['retries', 'perTryTimeout'], message: "expected a duration no longer than the rule's timeout: a try cannot outlast the request", input: perTry });
  }
}

const ruleSchema = strictFields(
  {
    name: dnsLabel(),
    match: listOf(matchSchema, 'a list of matches (any one of them must hold)').optional(),
    destinations: destinationsSchema.optional(),
    redirect: redirectSchema.optional(),
    rewrite: rewriteSchema.optional(),
    headers: headerEditsSchema.optional(),
    mirror: mirrorSchema.optional(),
    timeout: duration('1ms', '24h').optional(),
    retries: retriesSchema.optional(),
    fault: faultSchema.optional(),
  },
  'a rule: a mapping with name, optionally match, and destinations or redirect',
)
  .superRefine(checkRuleAction, whenMapping)
  .superRefine(checkPerTryTimeout, whenValid(['timeout'], ['retries', 'perTryTimeout']));

/** A rule without match, or with an empty match, takes every request. */
function matchesEverything(rule: unknown): boolean {
  const match = fieldOf(rule, 'match');
  if (match === undefined) return isPlainObject(rule);
  return Array.isArray(match) && match.some((item) => isPlainObject(item) && Object.keys(item).length === 0);
}

/** Rules after one that matches every request can never be used; that is always a mistake. */
function checkReachable(rules: readonly unknown[], ctx: z.RefinementCtx): void {
  const catchAll = rules.findIndex(matchesEverything);
  if (catchAll === -1) return;
  const catchAllName = stringKey(fieldOf(rules[catchAll], 'name')) ?? `http[${catchAll}]`;
  for (let index = catchAll + 1; index < rules.length; index++) {
    ctx.addIssue({
      code: 'custom',
      path: [index],
      message: `can never match: rule ${catchAllName} (http[${catchAll}]) before it matches every request`,
      input: rules[index],
    });
  }
}

export const routeSpecSchema = strictFields(
  {
    hosts: nonEmptyListOf(serviceRef(), 'a non-empty list of service names').superRefine(
      uniqueItems('hosts', serviceRefKey, (host) => `service ${host}`),
      whenList,
    ),
    http: nonEmptyListOf(ruleSchema, 'a non-empty list of rules')
      .superRefine(
        uniqueItems('http', (rule) => stringKey(fieldOf(rule, 'name')), (name) => `rule name ${name}`, 'name'),
        whenList,
      )
      .superRefine(checkReachable, whenList),
  },
  'a mapping with hosts and http',
);

type ParsedRouteSpec = z.output<typeof routeSpecSchema>;
type ParsedRule = ParsedRouteSpec['http'][number];
type ParsedMatch = NonNullable<ParsedRule['match']>[number];

function buildMatch(parsed: ParsedMatch): RouteMatch {
  return {
    host: parsed.host?.toLowerCase() ?? null,
    path: parsed.path === undefined ? null : toStringMatch(parsed.path),
    method: parsed.method ?? null,
    headers: toNamedMatches(parsed.headers, true),
    queryParams: toNamedMatches(parsed.queryParams, false),
  };
}

function buildRule(parsed: ParsedRule, namespace: string): RouteRule {
  const destinations: RouteDestination[] = (parsed.destinations ?? []).map((destination) => ({
    service: resolveServiceRef(destination.service, namespace),
    subset: destination.subset ?? null,
    port: destination.port ?? null,
    weight: destination.weight ?? 100,
  }));
  const redirect = parsed.redirect;
  const rewrite = parsed.rewrite;
  return {
    name: parsed.name,
    matches: (parsed.match ?? []).map(buildMatch),
    destinations,
    redirect: redirect === undefined ? null : { host: redirect.host ?? null, path: redirect.path ?? null, code: redirect.code as RedirectCode },
    rewrite: rewrite === undefined ? null : { pathPrefix: rewrite.pathPrefix ?? null, host: rewrite.host ?? null },
    headers: buildHeaderEdits(parsed.headers),
    mirror: parsed.mirror === undefined ? null : buildMirror(parsed.mirror, namespace),
    timeoutMs: parsed.timeout ?? null,
    retries: parsed.retries === undefined ? null : buildRetries(parsed.retries),
    fault: parsed.fault === undefined ? null : buildFault(parsed.fault),
  };
}

function buildRoute(metadata: ObjectMeta, spec: ParsedRouteSpec): RouteSpec {
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    hosts: spec.hosts.map((host) => resolveServiceRef(host, metadata.namespace)),
    rules: spec.http.map((rule) => buildRule(rule, metadata.namespace)),
  };
}

/**
 * A service's traffic is routed by one Route: with two, which rule comes
 * first would depend on document order.
 */
function checkHostOwners(documents: readonly CheckedDocument<RouteSpec>[]): PlacedIssue[] {
  const owners = new Map<string, CheckedDocument<RouteSpec>>();
  const issues: PlacedIssue[] = [];
  for (const document of documents) {
    const hosts = document.model.hosts;
    for (let index = 0; index < hosts.length; index++) {
      const host = hosts[index] as RouteSpec['hosts'][number];
      const key = describeServiceRef(host);
      const owner = owners.get(key);
      if (owner === undefined) {
        owners.set(key, document);
        continue;
      }
      const message =
        owner === document
          ? `service ${key} is listed twice in hosts`
          : `service ${key} is already routed by ${whereIs('Route', owner.model, owner.source)}; one Route per service`;
      issues.push({ source: document.source, path: ['spec', 'hosts', index], message, at: 'value' });
    }
  }
  return issues;
}

export const routeKind = defineKind({
  kind: 'Route',
  spec: routeSpecSchema,
  build: buildRoute,
  crossCheck: checkHostOwners,
  collect(models: RouteSpec[], config) {
    (config.routes ??= []).push(...models);
  },
});
