/**
 * The `AuthorizationPolicy` kind (Istio's AuthorizationPolicy, with `from`,
 * `to` and `when` written flat): ALLOW, DENY or AUDIT requests to a service
 * by the caller's identity, namespace and service, the method, path and
 * port, and request headers. Defined and validated now; the proxies enforce
 * it in later work.
 *
 *   spec:
 *     selector: { service: reviews }          # absent: every service in the namespace
 *     action: ALLOW
 *     rules:
 *       - from: [{ principals: ["spiffe://cluster.local/ns/default/sa/web"] }]
 *         to: [{ methods: [GET], paths: ["/api/*"] }]
 *         when: [{ header: x-tenant, values: [acme] }]
 */
import type * as z from 'zod';
import { headerName, HTTP_METHODS, isHttpPath } from './http-schema-parts.js';
import { defineKind } from './kind-definition.js';
import type { ObjectMeta } from './metadata-schema.js';
import {
  atLeastOneOf,
  isDnsLabel,
  listOf,
  nonEmptyListOf,
  oneOf,
  portNumber,
  resolveServiceRef,
  serviceRef,
  strictFields,
  text,
  textMatching,
  whenMapping,
} from './schema-parts.js';
import type { AuthorizationPolicySpec, AuthorizationRule } from './types.js';

const PATTERN_WORDS = "(or a pattern: *, a prefix followed by '*', or '*' followed by a suffix)";

/**
 * Istio's patterns: `*`, `prefix*`, `*suffix`, or an exact value. An exact
 * value must be a valid `literal`; the part before or after the `*` must be
 * a valid `prefix` or `suffix`.
 */
interface PatternRules {
  readonly literal: (value: string) => boolean;
  readonly prefix: (value: string) => boolean;
  readonly suffix: (value: string) => boolean;
}

function isPattern(value: string, rules: PatternRules): boolean {
  if (value === '*') return true;
  const stars = value.split('*').length - 1;
  if (stars === 0) return rules.literal(value);
  if (stars > 1) return false;
  if (value.startsWith('*')) return rules.suffix(value.slice(1));
  if (value.endsWith('*')) return rules.prefix(value.slice(0, -1));
  return false;
}

const NO_SPACE = (value: string): boolean => value.length > 0 && !/[\s\0]/.test(value);

const SPIFFE = /^spiffe:\/\/[^/\s]+\/ns\/[^/\s]+\/sa\/[^/\s]+$/;

/** Istio's `cluster.local/ns/default/sa/web` → our `spiffe://cluster.local/ns/default/sa/web`. */
function spiffeLike(value: string): string | undefined {
  const candidate = `spiffe://${value}`;
  return SPIFFE.test(candidate) ? candidate : undefined;
}

function principal() {
  return textMatching(
    `a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service>) ${PATTERN_WORDS}`,
    (value) => isPattern(value, { literal: (literal) => SPIFFE.test(literal), prefix: (prefix) => prefix.startsWith('spiffe://') && NO_SPACE(prefix), suffix: NO_SPACE }),
    spiffeLike,
  );
}

function labelPattern(what: string) {
  const piece = (text: string): boolean => /^[-a-z0-9]+$/.test(text);
  return textMatching(`${what} ${PATTERN_WORDS}`, (value) => isPattern(value, { literal: isDnsLabel, prefix: piece, suffix: piece }));
}

function pathPattern() {
  return textMatching(`a path starting with / ${PATTERN_WORDS}`, (value) => isPattern(value, { literal: isHttpPath, prefix: isHttpPath, suffix: NO_SPACE }));
}

function valuePattern() {
  return text('a string').superRefine((value, ctx) => {
    const oneLine = (text: string): boolean => !/[\r\n\0]/.test(text);
    if (isPattern(value, { literal: oneLine, prefix: oneLine, suffix: oneLine })) return;
    ctx.addIssue({ code: 'custom', message: `expected a header value without line breaks ${PATTERN_WORDS}, got ${JSON.stringify(value)}`, input: value });
  });
}

/** Lists in a source or operation are alternatives; an empty one would be ambiguous, so it is refused. */
function alternatives<Item extends z.ZodType>(item: Item, what: string) {
  return nonEmptyListOf(item, `a non-empty list of ${what}`).optional();
}

const sourceSchema = strictFields(
  {
    principals: alternatives(principal(), 'SPIFFE IDs'),
    namespaces: alternatives(labelPattern('a namespace'), 'namespaces'),
    services: alternatives(labelPattern('a service name'), 'service names'),
  },
  'a source: a mapping with any of principals, namespaces and services',
).superRefine(atLeastOneOf(['principals', 'namespaces', 'services']), whenMapping);

const operationSchema = strictFields(
  {
    methods: alternatives(oneOf([...HTTP_METHODS, '*']), 'HTTP methods'),
    paths: alternatives(pathPattern(), 'paths'),
    ports: alternatives(portNumber(), 'ports'),
  },
  'an operation: a mapping with any of methods, paths and ports',
).superRefine(atLeastOneOf(['methods', 'paths', 'ports']), whenMapping);

const conditionSchema = strictFields(
  { header: headerName(), values: nonEmptyListOf(valuePattern(), 'a non-empty list of values') },
  'a condition: a mapping with header and values',
);

const ruleSchema = strictFields(
  {
    from: listOf(sourceSchema, 'a list of sources (any one must match)').optional(),
    to: listOf(operationSchema, 'a list of operations (any one must match)').optional(),
    when: listOf(conditionSchema, 'a list of conditions (all must hold)').optional(),
  },
  'a rule: a mapping with any of from, to and when',
);

export const authorizationPolicySpecSchema = strictFields(
  {
    selector: strictFields({ service: serviceRef() }, 'a selector: a mapping with service').optional(),
    action: oneOf(['ALLOW', 'DENY', 'AUDIT']).default('ALLOW'),
    rules: listOf(ruleSchema, 'a list of rules').default([]),
  },
  'a mapping with any of selector, action and rules',
);

type ParsedSpec = z.output<typeof authorizationPolicySpecSchema>;

function buildRule(parsed: ParsedSpec['rules'][number]): AuthorizationRule {
  return {
    from: (parsed.from ?? []).map((source) => ({
      principals: [...(source.principals ?? [])],
      namespaces: [...(source.namespaces ?? [])],
      services: [...(source.services ?? [])],
    })),
    to: (parsed.to ?? []).map((operation) => ({
      methods: [...(operation.methods ?? [])],
      paths: [...(operation.paths ?? [])],
      ports: [...(operation.ports ?? [])],
    })),
    when: (parsed.when ?? []).map((condition) => ({ header: condition.header.toLowerCase(), values: [...condition.values] })),
  };
}

function buildAuthorizationPolicy(metadata: ObjectMeta, spec: ParsedSpec): AuthorizationPolicySpec {
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    selector: spec.selector === undefined ? null : resolveServiceRef(spec.selector.service, metadata.namespace),
    action: spec.action,
    rules: spec.rules.map(buildRule),
  };
}

// Several policies for one service combine (DENY first, then ALLOW), as in Istio: no conflicts to check.
export const authorizationPolicyKind = defineKind({
  kind: 'AuthorizationPolicy',
  spec: authorizationPolicySpecSchema,
  build: buildAuthorizationPolicy,
  collect(models: AuthorizationPolicySpec[], config) {
    (config.authorizationPolicies ??= []).push(...models);
  },
});
