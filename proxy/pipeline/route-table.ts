/**
 * The route table of one configuration version (Istio's VirtualServices as
 * Envoy's route configuration): Route documents compiled once into, per
 * service port, the ordered rules of the Route covering the service, with
 * regexes compiled, destinations resolved to Destinations and redirects and
 * rewrites ready to apply. `select` then only matches and decides:
 *
 * - the first rule whose match holds wins; a rule matches when any one of
 *   its matches holds (no matches: every request), a match when all of its
 *   parts hold: host (exact, lowercase, no port), path (exact, prefix, or a
 *   regex that must match the whole path), method, headers and query
 *   parameters (exact, prefix, whole-value regex, present, absent). The
 *   query string is parsed only when a rule reaches a query match, with
 *   URLSearchParams' decoding ('+' is a space, %XX decoded; the first value
 *   of a repeated parameter counts).
 * - several destinations: one is chosen by weight; a destination names a
 *   service (this one or another), a subset and a port (none: the port the
 *   request was sent to, or the target's only port when it has just one, as
 *   Istio does). A destination that names no known service port or an
 *   undefined subset leaves the plan's destination undefined: the path
 *   answers 503 UH. Nothing here throws per request.
 * - no Route covers the service: the whole service, routeName '' (the
 *   common, fast case: one cached plan per cluster). A Route covers it but no
 *   rule matches: `noRuleMatched`, which the paths answer 404 NR, as Istio does.
 *
 * Random draws, in this order and only where a choice exists: the
 * destination (more than one with weight > 0), the mirror (percent strictly
 * between 0 and 100), the fault's delay, then its abort (see fault.ts). A
 * redirect rule's fault is rolled too (Envoy's fault filter runs before
 * the router); the paths answer the redirect first all the same.
 */
import type { HeaderEdit, NamedMatch, RedirectSpec, RetryPolicy, RewriteSpec, RouteMatch, RouteRule, RouteSpec, StringMatch, FaultSpec, PresenceMatch } from '../../src/config/types.js';
import { TracemeshError } from '../../src/lib/errors.js';
import type { Cluster, ClusterRegistry } from '../clusters/types.js';
import { decideFault, rollPercent } from './fault.js';
import { EMPTY_HEADER_EDIT } from './header-edits.js';
import { NO_FAULT, type Destination, type FaultDecision, type RequestFacts, type RoutePlan, type RouteTable } from './types.js';

export type DestinationOf = (cluster: Cluster, subset: string) => Destination | undefined;

// Value matcher kinds: numbers, so matching is one switch on a small integer.
const EXACT = 0;
const PREFIX = 1;
const REGEX = 2;
const PRESENT = 3;
const ABSENT = 4;

/** One compiled string or presence match. */
class ValueMatcher {
  constructor(
    readonly kind: number,
    readonly value: string,
    /** Anchored `^(?:source)$`, compiled once; null unless kind is REGEX. */
    readonly regex: RegExp | null,
  ) {}

  matches(value: string | undefined): boolean {
    switch (this.kind) {
      case EXACT:
        return value === this.value;
      case PREFIX:
        return value !== undefined && value.startsWith(this.value);
      case REGEX:
        return value !== undefined && (this.regex as RegExp).test(value);
      case PRESENT:
        return value !== undefined;
      default:
        return value === undefined;
    }
  }
}

class NamedMatcher {
  constructor(
    readonly name: string,
    readonly matcher: ValueMatcher,
  ) {}
}

class CompiledMatch {
  constructor(
    readonly host: string | null,
    readonly path: ValueMatcher | null,
    readonly method: string | null,
    readonly headers: readonly NamedMatcher[],
    readonly queryParams: readonly NamedMatcher[],
  ) {}
}

/** What a rule without matches "matched": no path part, so a rewrite replaces the whole path. */
const MATCH_EVERYTHING = new CompiledMatch(null, null, null, [], []);

/** Where a compile error is, for its message: `Route default/reviews, rule api, match[1].headers.x-user`. */
function where(route: RouteSpec, rule: RouteRule, part: string): string {
  return `Route ${route.namespace}/${route.name}, rule ${rule.name}, ${part}`;
}

function compileRegex(source: string, place: string): RegExp {
  try {
    return new RegExp(`^(?:${source})$`);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `${place}: regex ${JSON.stringify(source)} does not compile: ${reason}`, { cause: err });
  }
}

function compileValueMatch(match: StringMatch | PresenceMatch, place: string): ValueMatcher {
  switch (match.kind) {
    case 'exact':
      return new ValueMatcher(EXACT, match.value, null);
    case 'prefix':
      return new ValueMatcher(PREFIX, match.value, null);
    case 'regex':
      return new ValueMatcher(REGEX, match.value, compileRegex(match.value, place));
    case 'present':
      return new ValueMatcher(PRESENT, '', null);
    case 'absent':
      return new ValueMatcher(ABSENT, '', null);
  }
}

function compileNamed(matches: readonly NamedMatch[], lowercase: boolean, place: string): NamedMatcher[] {
  return matches.map((named) => new NamedMatcher(lowercase ? named.name.toLowerCase() : named.name, compileValueMatch(named.match, `${place}.${named.name}`)));
}

function compileMatch(route: RouteSpec, rule: RouteRule, match: RouteMatch, index: number): CompiledMatch {
  const place = `match[${index}]`;
  return new CompiledMatch(
    match.host === null ? null : match.host.toLowerCase(),
    match.path === null ? null : compileValueMatch(match.path, where(route, rule, `${place}.path`)),
    match.method === null ? null : match.method.toUpperCase(),
    compileNamed(match.headers, true, where(route, rule, `${place}.headers`)),
    compileNamed(match.queryParams, false, where(route, rule, `${place}.queryParams`)),
  );
}

/** Every port of every service in the registry, to find a target's only port. */
function portsByService(registry: ClusterRegistry): Map<string, number[]> {
  const ports = new Map<string, number[]>();
  for (const cluster of registry.clusters) {
    const key = `${cluster.service}.${cluster.namespace}`;
    let list = ports.get(key);
    if (list === undefined) ports.set(key, (list = []));
    list.push(cluster.port.port);
  }
  return ports;
}

/**
 * A destination or mirror as written (service, subset, port), resolved to
 * a Destination per request port. Resolutions that succeed are kept (at
 * most one per port of the target service); a failing one is retried on the
 * next request, so a destinationOf that is filled after the table is built
 * still works.
 */
class Target {
  /** `name.namespace`: the registry resolves it to this one service. */
  private readonly host: string;
  private readonly subset: string;
  private readonly byPort = new Map<number, Destination>();

  constructor(
    service: { readonly name: string; readonly namespace: string },
    subset: string | null,
    /** null: the request's port. */
    private readonly port: number | null,
    /** The target service's port when it has exactly one (Istio's rule for a destination without port); null otherwise. */
    private readonly onlyPort: number | null,
    private readonly registry: ClusterRegistry,
    private readonly destinationOf: DestinationOf,
  ) {
    this.host = `${service.name}.${service.namespace}`;
    this.subset = subset ?? '';
  }

  resolve(requestPort: number): Destination | undefined {
    const port = this.port ?? requestPort;
    const known = this.byPort.get(port);
    if (known !== undefined) return known;
    let cluster = this.registry.resolve(this.host, port);
    if (cluster === undefined && this.port === null && this.onlyPort !== null) cluster = this.registry.resolve(this.host, this.onlyPort);
    if (cluster === undefined) return undefined;
    const destination = this.destinationOf(cluster, this.subset);
    if (destination !== undefined) this.byPort.set(port, destination);
    return destination;
  }
}

class CompiledRule {
  readonly name: string;
  /** Empty: every request. */
  readonly matches: readonly CompiledMatch[];
  readonly targets: readonly Target[];
  /** Running sums of the targets' weights, for the weighted choice. */
  readonly cumulativeWeights: readonly number[];
  readonly totalWeight: number;
  /** More than one target with weight > 0: a random draw decides. */
  readonly weighted: boolean;
  readonly redirect: RedirectSpec | null;
  readonly rewrite: RewriteSpec | null;
  readonly requestHeaders: HeaderEdit;
  readonly responseHeaders: HeaderEdit;
  readonly mirror: Target | null;
  readonly mirrorPercent: number;
  readonly timeoutMs: number;
  readonly retry: RetryPolicy | null;
  readonly fault: FaultSpec | null;

  constructor(route: RouteSpec, rule: RouteRule, registry: ClusterRegistry, destinationOf: DestinationOf, ports: ReadonlyMap<string, readonly number[]>) {
    const onlyPort = (service: { readonly name: string; readonly namespace: string }): number | null => {
      const list = ports.get(`${service.name}.${service.namespace}`);
      return list !== undefined && list.length === 1 ? (list[0] as number) : null;
    };
    this.name = rule.name;
    this.matches = rule.matches.map((match, index) => compileMatch(route, rule, match, index));
    this.targets = rule.destinations.map((d) => new Target(d.service, d.subset, d.port, onlyPort(d.service), registry, destinationOf));
    const cumulative: number[] = [];
    let total = 0;
    let positive = 0;
    for (const destination of rule.destinations) {
      const weight = destination.weight > 0 ? destination.weight : 0;
      if (weight > 0) positive++;
      total += weight;
      cumulative.push(total);
    }
    this.cumulativeWeights = cumulative;
    this.totalWeight = total;
    this.weighted = positive > 1;
    this.redirect = rule.redirect;
    this.rewrite = rule.rewrite;
    this.requestHeaders = rule.headers.request;
    this.responseHeaders = rule.headers.response;
    const mirror = rule.mirror;
    this.mirror = mirror === null ? null : new Target(mirror.service, mirror.subset, mirror.port, onlyPort(mirror.service), registry, destinationOf);
    this.mirrorPercent = mirror === null ? 0 : mirror.percent;
    this.timeoutMs = rule.timeoutMs ?? 0;
    this.retry = rule.retries;
    this.fault = rule.fault;
  }

  /** The weighted choice; undefined when every weight is 0 (nothing may receive traffic: 503 UH). */
  pickTarget(random: () => number): Target | undefined {
    const targets = this.targets;
    const cumulative = this.cumulativeWeights;
    if (!this.weighted) {
      for (let i = 0; i < targets.length; i++) {
        if ((cumulative[i] as number) > (i === 0 ? 0 : (cumulative[i - 1] as number))) return targets[i];
      }
      return undefined;
    }
    const draw = random() * this.totalWeight;
    for (let i = 0; i < targets.length; i++) {
      if (draw < (cumulative[i] as number)) return targets[i];
    }
    // random() is below 1, so the draw is below the total; this is only a guard against a bad random source.
    return targets[targets.length - 1];
  }
}

class Plan implements RoutePlan {
  constructor(
    readonly routeName: string,
    readonly redirect: { readonly status: number; readonly location: string } | undefined,
    readonly destination: Destination | undefined,
    readonly path: string | undefined,
    readonly authority: string | undefined,
    readonly requestHeaders: HeaderEdit,
    readonly responseHeaders: HeaderEdit,
    readonly timeoutMs: number,
    readonly retry: RetryPolicy | null,
    readonly fault: FaultDecision,
    readonly mirror: Destination | undefined,
    readonly noRuleMatched: boolean,
  ) {}
}

/** The plan for a service some Route covers when none of its rules matches: 404 NR. */
const NO_RULE_MATCHED: RoutePlan = Object.freeze(
  new Plan('', undefined, undefined, undefined, undefined, EMPTY_HEADER_EDIT, EMPTY_HEADER_EDIT, 0, null, NO_FAULT, undefined, true),
);

function defaultPlan(destination: Destination | undefined): RoutePlan {
  return Object.freeze(new Plan('', undefined, destination, undefined, undefined, EMPTY_HEADER_EDIT, EMPTY_HEADER_EDIT, 0, null, NO_FAULT, undefined, false));
}

/** A host for an authority or URL: an IPv6 literal needs its brackets. */
function authorityHost(host: string): string {
  return host.includes(':') && !host.startsWith('[') ? `[${host}]` : host;
}

/**
 * The Location of a redirect: always http (the mesh's hop is plain HTTP;
 * TLS is between proxies, not in the URL), the request's host unless the
 * rule names another, the request's port unless it is 80, the rule's path
 * or the request's, and the request's query, kept unless the rule's path
 * brings a query of its own (Envoy keeps the query the same way).
 */
function redirectLocation(redirect: RedirectSpec, facts: RequestFacts): string {
  const host = authorityHost(redirect.host ?? facts.host);
  const authority = facts.port === 80 || facts.port <= 0 ? host : `${host}:${facts.port}`;
  const path = redirect.path ?? facts.path;
  if (redirect.path !== null && redirect.path.includes('?')) return `http://${authority}${path}`;
  return facts.query === '' ? `http://${authority}${path}` : `http://${authority}${path}?${facts.query}`;
}

/**
 * The upstream path after `rewrite.pathPrefix`: it replaces what a prefix
 * match matched, or the whole path for an exact or regex match or a match
 * without path. One slash where the two parts meet is dropped, so prefix
 * `/api` rewritten to `/` sends `/api/x` as `/x`, not `//x` (Envoy would
 * send `//x`; nobody means that).
 */
function rewrittenPath(pathPrefix: string, match: CompiledMatch, facts: RequestFacts): string {
  const matcher = match.path;
  const rest = matcher !== null && matcher.kind === PREFIX ? facts.path.slice(matcher.value.length) : '';
  const path = pathPrefix.endsWith('/') && rest.startsWith('/') ? pathPrefix + rest.slice(1) : pathPrefix + rest;
  return facts.query === '' ? path : `${path}?${facts.query}`;
}

class CompiledRouteTable implements RouteTable {
  /** By cluster name, for every cluster of the registry: the rules of the Route covering its service, or null. */
  private readonly byClusterName = new Map<string, readonly CompiledRule[] | null>();
  /** By `service.namespace`: for clusters that are not the registry's own (their names are not above). */
  private readonly byService = new Map<string, readonly CompiledRule[]>();
  /** The no-route plan per cluster; weak, because callers may pass clusters made per connection. */
  private readonly defaultPlans = new WeakMap<Cluster, RoutePlan>();
  // The request being selected for, and its query parsed at most once; select runs to completion
  // synchronously, so one slot serves every request.
  private queryFacts: RequestFacts | undefined = undefined;
  private queryParams: URLSearchParams | undefined = undefined;

  constructor(
    routes: readonly RouteSpec[],
    registry: ClusterRegistry,
    private readonly destinationOf: DestinationOf,
    private readonly random: () => number,
  ) {
    const ports = portsByService(registry);
    for (const route of routes) {
      const rules = route.rules.map((rule) => new CompiledRule(route, rule, registry, destinationOf, ports));
      for (const host of route.hosts) {
        const key = `${host.name}.${host.namespace}`;
        // Validation allows one Route per service; should two claim one anyway, the first keeps it.
        if (!this.byService.has(key)) this.byService.set(key, rules);
      }
    }
    for (const cluster of registry.clusters) {
      this.byClusterName.set(cluster.name, this.byService.get(`${cluster.service}.${cluster.namespace}`) ?? null);
    }
    // Resolve what can be resolved now, so the first requests do not pay for it.
    for (const cluster of registry.clusters) {
      const rules = this.byClusterName.get(cluster.name);
      if (rules === null || rules === undefined) continue;
      for (const rule of rules) {
        for (const target of rule.targets) target.resolve(cluster.port.port);
        rule.mirror?.resolve(cluster.port.port);
      }
    }
  }

  select(cluster: Cluster, facts: RequestFacts): RoutePlan {
    let rules = this.byClusterName.get(cluster.name);
    if (rules === undefined) rules = this.byService.get(`${cluster.service}.${cluster.namespace}`) ?? null;
    if (rules === null) return this.defaultPlanFor(cluster);
    this.queryFacts = facts;
    this.queryParams = undefined;
    try {
      for (let i = 0; i < rules.length; i++) {
        const rule = rules[i] as CompiledRule;
        const match = this.matchingPart(rule, facts);
        if (match !== undefined) return this.planFor(rule, match, cluster, facts);
      }
      return NO_RULE_MATCHED;
    } finally {
      // Do not keep the request (and its parsed query) alive until the next one.
      this.queryFacts = undefined;
      this.queryParams = undefined;
    }
  }

  private defaultPlanFor(cluster: Cluster): RoutePlan {
    const cached = this.defaultPlans.get(cluster);
    if (cached !== undefined) return cached;
    const destination = this.destinationOf(cluster, '');
    const plan = defaultPlan(destination);
    // An undefined destination is not kept: it may be one that destinationOf cannot answer yet.
    if (destination !== undefined) this.defaultPlans.set(cluster, plan);
    return plan;
  }

  /** The match of `rule` that holds for the request (MATCH_EVERYTHING for a rule without matches), or undefined. */
  private matchingPart(rule: CompiledRule, facts: RequestFacts): CompiledMatch | undefined {
    const matches = rule.matches;
    if (matches.length === 0) return MATCH_EVERYTHING;
    for (let i = 0; i < matches.length; i++) {
      const match = matches[i] as CompiledMatch;
      if (this.holds(match, facts)) return match;
    }
    return undefined;
  }

  /** Every part of `match` holds; cheap parts first, the query last (it may need parsing). */
  private holds(match: CompiledMatch, facts: RequestFacts): boolean {
    if (match.method !== null && match.method !== facts.method) return false;
    if (match.host !== null && match.host !== facts.host) return false;
    if (match.path !== null && !match.path.matches(facts.path)) return false;
    const headers = match.headers;
    for (let i = 0; i < headers.length; i++) {
      const header = headers[i] as NamedMatcher;
      if (!header.matcher.matches(facts.header(header.name))) return false;
    }
    const query = match.queryParams;
    for (let i = 0; i < query.length; i++) {
      const param = query[i] as NamedMatcher;
      if (!param.matcher.matches(this.queryParam(param.name))) return false;
    }
    return true;
  }

  /** The first value of a query parameter, decoded; undefined when absent. Parses the query on first use. */
  private queryParam(name: string): string | undefined {
    let params = this.queryParams;
    if (params === undefined) {
      params = new URLSearchParams((this.queryFacts as RequestFacts).query);
      this.queryParams = params;
    }
    const value = params.get(name);
    return value === null ? undefined : value;
  }

  private planFor(rule: CompiledRule, match: CompiledMatch, cluster: Cluster, facts: RequestFacts): RoutePlan {
    const redirect = rule.redirect;
    if (redirect !== null) {
      const location = redirectLocation(redirect, facts);
      const fault = decideFault(rule.fault, this.random);
      return new Plan(rule.name, { status: redirect.code, location }, undefined, undefined, undefined, rule.requestHeaders, rule.responseHeaders, 0, null, fault, undefined, false);
    }
    const port = cluster.port.port;
    const target = rule.pickTarget(this.random);
    const destination = target === undefined ? undefined : target.resolve(port);
    const mirror = rule.mirror !== null && rollPercent(rule.mirrorPercent, this.random) ? rule.mirror.resolve(port) : undefined;
    const fault = decideFault(rule.fault, this.random);
    const rewrite = rule.rewrite;
    let path: string | undefined;
    let authority: string | undefined;
    if (rewrite !== null) {
      if (rewrite.pathPrefix !== null) path = rewrittenPath(rewrite.pathPrefix, match, facts);
      // Istio replaces the whole authority: a rewrite without port sends none.
      if (rewrite.host !== null) authority = authorityHost(rewrite.host);
    }
    return new Plan(rule.name, undefined, destination, path, authority, rule.requestHeaders, rule.responseHeaders, rule.timeoutMs, rule.retry, fault, mirror, false);
  }
}

/**
 * The route table for one configuration version. Throws TM_ERR_CONFIG_INVALID
 * (naming the Route, rule and match) only if a regex does not compile, which
 * validation already rules out; `select` never throws.
 */
export function createRouteTable(routes: readonly RouteSpec[], registry: ClusterRegistry, destinationOf: DestinationOf, random: () => number = Math.random): RouteTable {
  return new CompiledRouteTable(routes, registry, destinationOf, random);
}
