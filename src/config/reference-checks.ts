/**
 * Checks across kinds: what one document names must exist in the set.
 *
 * - A service named anywhere (Route hosts, destinations and mirror,
 *   DestinationPolicy host, RateLimit target and override sources,
 *   AuthorizationPolicy and PeerAuthentication selectors and source services,
 *   CircuitPolicy target) must be a Service document of the set, and a port
 *   named with it one of its ports, when the set has Service documents. A set
 *   without any is valid on its own: proxies register their services with
 *   the control plane, so a set of routes need not declare them. The control
 *   plane validates the whole stored set, so a set that declares services
 *   declares the ones it routes to.
 * - A subset (Route destinations and mirror, CircuitPolicy target) must be
 *   defined by the DestinationPolicy of its service, always: subsets exist
 *   only there.
 * - A RateLimit's route names must be rules of the Route for its service,
 *   always: rule names exist only there.
 *
 * References into a kind with an invalid document are not checked: that
 * document's own errors are the ones to fix, and what it would define is
 * unknown.
 */
import { closestMatch } from './did-you-mean.js';
import type { PlacedIssue } from './kind-definition.js';
import type {
  AuthorizationPolicySpec,
  CircuitPolicySpec,
  DestinationPolicySpec,
  PeerAuthenticationSpec,
  RateLimitSpec,
  RouteSpec,
  ServiceRef,
  ServiceSpec,
} from './types.js';
import { describeServiceRef, whereIs } from './where.js';
import type { RawDocument } from './yaml-documents.js';

/** A valid document's model with the document it came from. */
export interface Placed<Model> {
  readonly source: RawDocument;
  readonly model: Model;
}

export interface PlacedSet {
  readonly services: readonly Placed<ServiceSpec>[];
  readonly routes: readonly Placed<RouteSpec>[];
  readonly destinationPolicies: readonly Placed<DestinationPolicySpec>[];
  readonly rateLimits: readonly Placed<RateLimitSpec>[];
  readonly authorizationPolicies: readonly Placed<AuthorizationPolicySpec>[];
  readonly peerAuthentications: readonly Placed<PeerAuthenticationSpec>[];
  readonly circuitPolicies: readonly Placed<CircuitPolicySpec>[];
  /** Kinds that have a document that failed validation. */
  readonly incomplete: ReadonlySet<string>;
}

type Path = readonly PropertyKey[];

/** The references of one document, reported against it. */
class Checker {
  readonly issues: PlacedIssue[] = [];
  private readonly services: Map<string, Placed<ServiceSpec>> | undefined;
  private readonly serviceNames: ReadonlySet<string>;
  private readonly policies: Map<string, Placed<DestinationPolicySpec>> | undefined;
  private readonly routesByHost: Map<string, Placed<RouteSpec>> | undefined;

  constructor(set: PlacedSet) {
    const checkServices = set.services.length > 0 && !set.incomplete.has('Service');
    this.services = checkServices ? new Map(set.services.map((placed) => [describeServiceRef(placed.model), placed])) : undefined;
    this.serviceNames = new Set(set.services.map((placed) => placed.model.name));
    // The first document wins; a second for the same service is reported by its kind.
    this.policies = set.incomplete.has('DestinationPolicy') ? undefined : firstBy(set.destinationPolicies, (model) => [describeServiceRef(model.host)]);
    this.routesByHost = set.incomplete.has('Route') ? undefined : firstBy(set.routes, (model) => model.hosts.map(describeServiceRef));
  }

  private report(source: RawDocument, path: Path, message: string, at: 'key' | 'value' = 'value'): void {
    this.issues.push({ source, path, message, at });
  }

  /** The service exists (when the set declares services); its Service document, when known. */
  service(source: RawDocument, ref: ServiceRef, path: Path): Placed<ServiceSpec> | undefined {
    if (this.services === undefined) return undefined;
    const key = describeServiceRef(ref);
    const found = this.services.get(key);
    if (found === undefined) this.report(source, path, `service ${key} is not defined by any Service document in the set${this.serviceHint(ref)}`);
    return found;
  }

  /** A service of a close name in the same namespace, or of the same name in another. */
  private serviceHint(ref: ServiceRef): string {
    const services = [...(this.services?.values() ?? [])].map((placed) => placed.model);
    const sameNamespace = services.filter((service) => service.namespace === ref.namespace).map((service) => service.name);
    const close = hint(ref.name, sameNamespace);
    if (close !== '') return `; did you mean ${ref.namespace}/${close}?`;
    const elsewhere = services.find((service) => service.name === ref.name);
    return elsewhere === undefined ? '' : `; did you mean ${describeServiceRef(elsewhere)}?`;
  }

  /** A service named without namespace (an authorization source): some Service of that name. */
  serviceName(source: RawDocument, name: string, path: Path): void {
    if (this.services === undefined || name.includes('*') || this.serviceNames.has(name)) return;
    const close = hint(name, [...this.serviceNames]);
    this.report(source, path, `no Service document in the set is named ${name}${close === '' ? '' : `; did you mean ${close}?`}`);
  }

  port(source: RawDocument, service: Placed<ServiceSpec> | undefined, port: number | null, path: Path, at: 'key' | 'value' = 'value'): void {
    if (service === undefined || port === null) return;
    const ports = service.model.ports.map((p) => p.port);
    if (ports.includes(port)) return;
    this.report(source, path, `port ${port} is not a port of ${whereIs('Service', service.model, service.source)}, which has ${ports.join(', ')}`, at);
  }

  subset(source: RawDocument, ref: ServiceRef, subset: string | null, path: Path): void {
    if (this.policies === undefined || subset === null) return;
    const key = describeServiceRef(ref);
    const policy = this.policies.get(key);
    if (policy === undefined) {
      this.report(source, path, `subset ${subset} needs a DestinationPolicy for service ${key} that defines it; the set has none`);
      return;
    }
    const names = policy.model.subsets.map((s) => s.name);
    if (names.includes(subset)) return;
    const has = names.length === 0 ? 'which defines no subsets' : `which defines ${names.join(', ')}`;
    const close = hint(subset, names);
    this.report(source, path, `subset ${subset} is not defined by ${whereIs('DestinationPolicy', policy.model, policy.source)}, ${has}${close === '' ? '' : `; did you mean ${close}?`}`);
  }

  routeRule(source: RawDocument, ref: ServiceRef, rule: string, path: Path): void {
    if (this.routesByHost === undefined) return;
    const key = describeServiceRef(ref);
    const route = this.routesByHost.get(key);
    if (route === undefined) {
      this.report(source, path, `route ${rule} needs a Route for service ${key} with a rule of that name; the set has none`);
      return;
    }
    const names = route.model.rules.map((r) => r.name);
    if (names.includes(rule)) return;
    const close = hint(rule, names);
    this.report(source, path, `route ${rule} is not a rule of ${whereIs('Route', route.model, route.source)}, which has ${names.join(', ')}${close === '' ? '' : `; did you mean ${close}?`}`);
  }
}

/** The closest candidate, or ''. Not for words under 3 letters: v3 is not a typo of v1. */
function hint(word: string, candidates: readonly string[]): string {
  if (word.length < 3) return '';
  return closestMatch(word, candidates) ?? '';
}

function firstBy<Model>(placed: readonly Placed<Model>[], keys: (model: Model) => readonly string[]): Map<string, Placed<Model>> {
  const map = new Map<string, Placed<Model>>();
  for (const item of placed) for (const key of keys(item.model)) if (!map.has(key)) map.set(key, item);
  return map;
}

function checkRoute(check: Checker, { source, model }: Placed<RouteSpec>): void {
  model.hosts.forEach((host, index) => check.service(source, host, ['spec', 'hosts', index]));
  model.rules.forEach((rule, r) => {
    const at = ['spec', 'http', r];
    rule.destinations.forEach((destination, d) => {
      const service = check.service(source, destination.service, [...at, 'destinations', d, 'service']);
      check.port(source, service, destination.port, [...at, 'destinations', d, 'port']);
      check.subset(source, destination.service, destination.subset, [...at, 'destinations', d, 'subset']);
    });
    const mirror = rule.mirror;
    if (mirror === null) return;
    const service = check.service(source, mirror.service, [...at, 'mirror', 'service']);
    check.port(source, service, mirror.port, [...at, 'mirror', 'port']);
    check.subset(source, mirror.service, mirror.subset, [...at, 'mirror', 'subset']);
  });
}

function checkRateLimit(check: Checker, { source, model }: Placed<RateLimitSpec>): void {
  check.service(source, model.service, ['spec', 'target', 'service']);
  model.routes.forEach((route, index) => check.routeRule(source, model.service, route, ['spec', 'target', 'routes', index]));
  model.overrides.forEach((override, index) => check.service(source, override.source, ['spec', 'overrides', index, 'source']));
}

function checkAuthorizationPolicy(check: Checker, { source, model }: Placed<AuthorizationPolicySpec>): void {
  if (model.selector !== null) check.service(source, model.selector, ['spec', 'selector', 'service']);
  model.rules.forEach((rule, r) =>
    rule.from.forEach((from, f) => from.services.forEach((name, s) => check.serviceName(source, name, ['spec', 'rules', r, 'from', f, 'services', s]))),
  );
}

function checkPeerAuthentication(check: Checker, { source, model }: Placed<PeerAuthenticationSpec>): void {
  if (model.selector === null) return;
  const service = check.service(source, model.selector, ['spec', 'selector', 'service']);
  // The YAML map's keys are strings; the path names them as written.
  for (const override of model.portOverrides) check.port(source, service, override.port, ['spec', 'portLevelMtls', String(override.port)], 'key');
}

function checkCircuitPolicy(check: Checker, { source, model }: Placed<CircuitPolicySpec>): void {
  check.service(source, model.target, ['spec', 'target', 'service']);
  check.subset(source, model.target, model.subset, ['spec', 'target', 'subset']);
}

export function checkReferences(set: PlacedSet): PlacedIssue[] {
  const check = new Checker(set);
  for (const placed of set.routes) checkRoute(check, placed);
  for (const { source, model } of set.destinationPolicies) check.service(source, model.host, ['spec', 'host']);
  for (const placed of set.rateLimits) checkRateLimit(check, placed);
  for (const placed of set.authorizationPolicies) checkAuthorizationPolicy(check, placed);
  for (const placed of set.peerAuthentications) checkPeerAuthentication(check, placed);
  for (const placed of set.circuitPolicies) checkCircuitPolicy(check, placed);
  return check.issues;
}
