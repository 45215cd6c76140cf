import { describe, expect, it } from 'vitest';
import type { EndpointSpec, RouteMatch, RouteRule, RouteSpec, ServiceSpec } from '../../src/config/types.js';
import { readFileSync } from 'node:fs';
import { validateMeshConfigText } from '../../src/config/load.js';
import { isTracemeshError } from '../../src/lib/errors.js';
import { Random } from '../../test/support/fuzz/random.js';
import { createStaticRegistry, singleEndpointCluster } from '../clusters/static-registry.js';
import type { Cluster, ClusterEndpoint, ClusterRegistry } from '../clusters/types.js';
import { EMPTY_HEADER_EDIT } from './header-edits.js';
import { createRouteTable, type DestinationOf } from './route-table.js';
import { NO_FAULT, type Destination, type DestinationLimits, type RequestFacts, type RoutePlan } from './types.js';

function endpoint(address: string, port: number, version: string): EndpointSpec {
  return { address, port, ports: {}, labels: { version } };
}

const SERVICES: ServiceSpec[] = [
  {
    name: 'reviews',
    namespace: 'default',
    ports: [
      { name: 'http', port: 9080, protocol: 'http' },
      { name: 'metrics', port: 9091, protocol: 'http' },
    ],
    vips: ['10.96.0.20'],
    endpoints: [endpoint('127.0.0.1', 25306, 'v1'), endpoint('127.0.0.1', 25307, 'v2'), endpoint('127.0.0.1', 25308, 'v3')],
  },
  { name: 'ratings', namespace: 'default', ports: [{ name: 'http', port: 9080, protocol: 'http' }], vips: [], endpoints: [endpoint('127.0.0.1', 25406, 'v1')] },
  { name: 'details', namespace: 'default', ports: [{ name: 'http', port: 8080, protocol: 'http' }], vips: [], endpoints: [endpoint('127.0.0.1', 25506, 'v1')] },
  { name: 'reviews', namespace: 'shop', ports: [{ name: 'http', port: 9080, protocol: 'http' }], vips: [], endpoints: [endpoint('127.0.0.1', 25606, 'v1')] },
];

const NO_LIMITS: DestinationLimits = {
  tryStartRequest: () => true,
  requestEnded: () => undefined,
  tryStartRetry: () => true,
  retryEnded: () => undefined,
  tryOpenConnection: () => true,
  connectionClosed: () => undefined,
  tryStartPending: () => true,
  pendingEnded: () => undefined,
  connectTimeoutMs: null,
};

/**
 * The destinations of a small real registry, the way TrafficConfig keys
 * them: one per cluster (subset '') and one per subset, selecting endpoints
 * by labels (by default, for reviews.default, v1..v3 by version). Unknown
 * subsets: undefined.
 */
class Destinations {
  readonly registry: ClusterRegistry;
  readonly byKey = new Map<string, Destination>();
  calls = 0;
  readonly destinationOf: DestinationOf = (cluster, subset) => {
    this.calls++;
    return this.byKey.get(`${cluster.name}|${subset}`);
  };

  constructor(
    filled = true,
    services: readonly ServiceSpec[] = SERVICES,
    private readonly subsets: ReadonlyMap<string, ReadonlyMap<string, Readonly<Record<string, string>>>> = new Map([
      ['reviews.default', new Map([['v1', { version: 'v1' }], ['v2', { version: 'v2' }], ['v3', { version: 'v3' }]])],
    ]),
  ) {
    this.registry = createStaticRegistry(services, 'test-1');
    if (filled) this.fill();
  }

  fill(): void {
    for (const cluster of this.registry.clusters) {
      this.add(cluster, '', cluster.endpoints);
      for (const [subset, labels] of this.subsets.get(`${cluster.service}.${cluster.namespace}`) ?? []) {
        this.add(cluster, subset, cluster.endpoints.filter((e) => Object.entries(labels).every(([k, v]) => e.labels[k] === v)));
      }
    }
  }

  private add(cluster: Cluster, subset: string, endpoints: readonly ClusterEndpoint[]): void {
    this.byKey.set(`${cluster.name}|${subset}`, {
      cluster,
      subset,
      name: subset === '' ? cluster.name : `${cluster.name}|${subset}`,
      endpoints,
      pick: () => endpoints[0],
      recordOutcome: () => undefined,
      limits: NO_LIMITS,
    });
  }

  cluster(host: string, port: number): Cluster {
    const cluster = this.registry.resolve(host, port);
    if (cluster === undefined) throw new Error(`no cluster ${host}:${port}`);
    return cluster;
  }
}

interface FactsInput {
  host?: string;
  port?: number;
  method?: string;
  path?: string;
  query?: string;
  headers?: Record<string, string>;
}

/** RequestFacts that count how often the query string is read (it must be parsed only when a rule needs it). */
function facts(input: FactsInput = {}): RequestFacts & { queryReads: number } {
  const headers = new Map(Object.entries(input.headers ?? {}).map(([name, value]) => [name.toLowerCase(), value]));
  const query = input.query ?? '';
  return {
    host: input.host ?? 'reviews',
    port: input.port ?? 9080,
    method: input.method ?? 'GET',
    path: input.path ?? '/',
    queryReads: 0,
    get query() {
      this.queryReads++;
      return query;
    },
    header: (name) => headers.get(name),
    sourceService: 'productpage',
    sourceNamespace: 'default',
    sourceAddress: '127.0.0.1',
  };
}

function match(parts: Partial<RouteMatch>): RouteMatch {
  return { host: null, path: null, method: null, headers: [], queryParams: [], ...parts };
}

function rule(name: string, parts: Partial<RouteRule> = {}): RouteRule {
  return {
    name,
    matches: [],
    destinations: [{ service: { name: 'reviews', namespace: 'default' }, subset: null, port: null, weight: 100 }],
    redirect: null,
    rewrite: null,
    headers: { request: EMPTY_HEADER_EDIT, response: EMPTY_HEADER_EDIT },
    mirror: null,
    timeoutMs: null,
    retries: null,
    fault: null,
    ...parts,
  };
}

function to(service: string, subset: string | null = null, weight = 100, port: number | null = null, namespace = 'default') {
  return { service: { name: service, namespace }, subset, port, weight };
}

function reviewsRoute(rules: RouteRule[]): RouteSpec {
  return { name: 'reviews', namespace: 'default', hosts: [{ name: 'reviews', namespace: 'default' }], rules };
}

const noDraws = (): number => {
  throw new Error('no random draw expected');
};

/** Draws in order; one too many fails the test. */
function draws(...values: number[]): () => number {
  let next = 0;
  return () => {
    if (next >= values.length) throw new Error(`unexpected random draw #${next + 1}`);
    return values[next++] as number;
  };
}

function table(rules: RouteRule[], random: () => number = noDraws, destinations = new Destinations()) {
  const routes = createRouteTable([reviewsRoute(rules)], destinations.registry, destinations.destinationOf, random);
  const reviews = destinations.cluster('reviews', 9080);
  return { routes, destinations, reviews, select: (input: FactsInput = {}): RoutePlan => routes.select(reviews, facts(input)) };
}

/** The rule that matched, or NR / the whole service. */
function outcome(plan: RoutePlan): string {
  if (plan.noRuleMatched === true) return 'NR';
  return plan.routeName === '' ? 'default' : plan.routeName;
}

describe('no Route, or no rule matching', () => {
  it('a service no Route covers goes to the whole service, one cached plan per cluster', () => {
    const { routes, destinations } = table([rule('any')]);
    const ratings = destinations.cluster('ratings', 9080);
    const plan = routes.select(ratings, facts({ host: 'ratings' }));
    expect(plan).toEqual({
      routeName: '',
      redirect: undefined,
      destination: destinations.byKey.get('ratings.default:9080|'),
      path: undefined,
      authority: undefined,
      requestHeaders: EMPTY_HEADER_EDIT,
      responseHeaders: EMPTY_HEADER_EDIT,
      timeoutMs: 0,
      retry: null,
      fault: NO_FAULT,
      mirror: undefined,
      noRuleMatched: false,
    });
    const calls = destinations.calls;
    expect(routes.select(ratings, facts({ host: 'ratings', path: '/other' }))).toBe(plan);
    expect(destinations.calls).toBe(calls);
  });

  it('a covered service whose rules all miss: noRuleMatched (404 NR), no destination', () => {
    const { select } = table([rule('api', { matches: [match({ path: { kind: 'prefix', value: '/api/' } })] })]);
    const plan = select({ path: '/web' });
    expect(plan.noRuleMatched).toBe(true);
    expect(plan.routeName).toBe('');
    expect(plan.destination).toBeUndefined();
    expect(plan.redirect).toBeUndefined();
    expect(select({ path: '/api/x' }).noRuleMatched).toBe(false);
  });

  it('a Route covers every port of its service; the route of another namespace is not ours', () => {
    const { routes, destinations } = table([rule('api', { matches: [match({ path: { kind: 'exact', value: '/api' } })] })]);
    expect(outcome(routes.select(destinations.cluster('reviews', 9091), facts({ port: 9091, path: '/metrics' })))).toBe('NR');
    expect(outcome(routes.select(destinations.cluster('reviews.shop', 9080), facts({ host: 'reviews.shop', path: '/metrics' })))).toBe('default');
  });

  it('a cluster that is not the registry\'s own (captured to a pod address) is routed by its service', () => {
    const { routes, destinations } = table([rule('api', { matches: [match({ path: { kind: 'exact', value: '/api' } })] })]);
    const pod = singleEndpointCluster('reviews', 'default', { name: 'pod', port: 25306, protocol: 'http' }, endpoint('127.0.0.1', 25306, 'v1'));
    expect(outcome(routes.select(pod, facts({ path: '/other' })))).toBe('NR');
    const stranger = singleEndpointCluster('unknown', 'default', { name: 'x', port: 1234, protocol: 'http' }, endpoint('127.0.0.2', 1234, ''));
    const plan = routes.select(stranger, facts({ path: '/api' }));
    expect(outcome(plan)).toBe('default');
    // destinationOf knows nothing of it: UH, and not cached (a later answer would be used).
    expect(plan.destination).toBeUndefined();
  });
});

describe('matching', () => {
  it('rules in order, the first match wins; a rule without matches takes everything', () => {
    const { select } = table([
      rule('exact', { matches: [match({ path: { kind: 'exact', value: '/a' } })] }),
      rule('prefix', { matches: [match({ path: { kind: 'prefix', value: '/a' } })] }),
      rule('rest'),
    ]);
    expect(['/a', '/ab', '/a/b', '/b', '/'].map((path) => outcome(select({ path })))).toEqual(['exact', 'prefix', 'prefix', 'rest', 'rest']);
  });

  it('any one match of a rule; every part of a match', () => {
    const { select } = table([
      rule('jason', {
        matches: [
          match({ method: 'GET', headers: [{ name: 'end-user', match: { kind: 'exact', value: 'jason' } }] }),
          match({ path: { kind: 'prefix', value: '/jason' }, method: 'POST' }),
        ],
      }),
    ]);
    expect(outcome(select({ headers: { 'end-user': 'jason' } }))).toBe('jason');
    expect(outcome(select({ method: 'PUT', headers: { 'end-user': 'jason' } }))).toBe('NR');
    expect(outcome(select({ method: 'POST', path: '/jason/1' }))).toBe('jason');
    expect(outcome(select({ method: 'GET', path: '/jason/1' }))).toBe('NR');
  });

  it('host: exact, lowercase, without port', () => {
    const { select } = table([rule('short', { matches: [match({ host: 'reviews' })] }), rule('long', { matches: [match({ host: 'Reviews.Default.Svc.Cluster.Local' })] })]);
    expect(outcome(select({ host: 'reviews' }))).toBe('short');
    expect(outcome(select({ host: 'reviews.default.svc.cluster.local' }))).toBe('long');
    expect(outcome(select({ host: '10.96.0.20' }))).toBe('NR');
  });

  it('a path regex must match the whole path, never a part of it', () => {
    const { select } = table([rule('legacy', { matches: [match({ path: { kind: 'regex', value: '/v[01]/reviews(/.*)?' } })] }), rule('alt', { matches: [match({ path: { kind: 'regex', value: 'a|/b' } })] })]);
    expect(['/v0/reviews', '/v1/reviews/7', '/v2/reviews', '/x/v1/reviews', '/v1/reviewsX'].map((path) => outcome(select({ path })))).toEqual(['legacy', 'legacy', 'NR', 'NR', 'NR']);
    // The anchors wrap the whole alternation: `a|/b` is `^(?:a|/b)$`, so `/a` and `/bc` miss.
    expect(['/b', '/a', '/bc', 'a'].map((path) => outcome(select({ path })))).toEqual(['alt', 'NR', 'NR', 'alt']);
  });

  it('headers: exact, prefix, whole-value regex, present, absent; names are case-insensitive', () => {
    const header = (name: string, m: RouteMatch['headers'][number]['match']) => match({ headers: [{ name, match: m }] });
    const { select } = table([
      rule('exact', { matches: [header('X-User', { kind: 'exact', value: 'jason' })] }),
      rule('prefix', { matches: [header('x-user', { kind: 'prefix', value: 'ja' })] }),
      rule('regex', { matches: [header('x-user', { kind: 'regex', value: '[0-9]+' })] }),
      rule('absent', { matches: [header('x-debug', { kind: 'absent' })] }),
      rule('present', { matches: [header('x-debug', { kind: 'present' })] }),
    ]);
    expect(outcome(select({ headers: { 'x-user': 'jason', 'x-debug': '1' } }))).toBe('exact');
    expect(outcome(select({ headers: { 'x-user': 'Jason', 'x-debug': '1' } }))).toBe('present');
    expect(outcome(select({ headers: { 'x-user': 'jane', 'x-debug': '1' } }))).toBe('prefix');
    expect(outcome(select({ headers: { 'x-user': '123', 'x-debug': '1' } }))).toBe('regex');
    expect(outcome(select({ headers: { 'x-user': 'u123', 'x-debug': '' } }))).toBe('present');
    expect(outcome(select({ headers: { 'x-user': 'u123' } }))).toBe('absent');
  });

  it('query parameters: decoded like URLSearchParams, first value counts, parsed only when needed and once', () => {
    const param = (name: string, m: RouteMatch['queryParams'][number]['match']) => ({ name, match: m });
    const { routes, reviews, select } = table([
      rule('header-only', { matches: [match({ headers: [{ name: 'x-a', match: { kind: 'present' } }] })] }),
      rule('user', { matches: [match({ queryParams: [param('user', { kind: 'exact', value: 'jason bourne' }), param('Mode', { kind: 'absent' })] })] }),
      rule('flag', { matches: [match({ queryParams: [param('debug', { kind: 'present' })] })] }),
    ]);
    const headerOnly = facts({ query: 'user=jason', headers: { 'x-a': '1' } });
    expect(outcome(routes.select(reviews, headerOnly))).toBe('header-only');
    expect(headerOnly.queryReads).toBe(0);
    const twoRules = facts({ query: 'other=1' });
    expect(outcome(routes.select(reviews, twoRules))).toBe('NR');
    expect(twoRules.queryReads).toBe(1);
    expect(outcome(select({ query: 'user=jason+bourne' }))).toBe('user');
    expect(outcome(select({ query: 'user=jason%20bourne&user=x' }))).toBe('user');
    expect(outcome(select({ query: 'user=x&user=jason%20bourne' }))).toBe('NR');
    // Names are case-sensitive: `mode` is not `Mode`.
    expect(outcome(select({ query: 'user=jason+bourne&mode=1' }))).toBe('user');
    expect(outcome(select({ query: 'user=jason+bourne&Mode=1' }))).toBe('NR');
    expect(outcome(select({ query: 'debug' }))).toBe('flag');
    expect(outcome(select({ query: '' }))).toBe('NR');
  });

  it('a regex that does not compile is refused at build time, naming where it is', () => {
    const destinations = new Destinations();
    const bad = rule('broken', { matches: [match({}), match({ headers: [{ name: 'x-user', match: { kind: 'regex', value: '(' } }] })] });
    let error: unknown;
    try {
      createRouteTable([reviewsRoute([bad])], destinations.registry, destinations.destinationOf, noDraws);
    } catch (err) {
      error = err;
    }
    expect(isTracemeshError(error, 'TM_ERR_CONFIG_INVALID')).toBe(true);
    expect((error as Error).message).toMatch(/^Route default\/reviews, rule broken, match\[1\]\.headers\.x-user: regex "\(" does not compile: /);
  });
});

describe('destinations', () => {
  it('a 90/10 split over 2,000 requests lands within 3 points (seeded)', () => {
    const rng = new Random(20240605);
    const { select, destinations } = table([rule('canary', { destinations: [to('reviews', 'v1', 90), to('reviews', 'v3', 10)] })], () => rng.float());
    const counts = new Map<string, number>();
    for (let i = 0; i < 2000; i++) {
      const name = select().destination?.name ?? 'none';
      counts.set(name, (counts.get(name) ?? 0) + 1);
    }
    const v1 = counts.get('reviews.default:9080|v1') ?? 0;
    const v3 = counts.get('reviews.default:9080|v3') ?? 0;
    expect(v1 + v3).toBe(2000);
    expect(Math.abs((v1 / 2000) * 100 - 90)).toBeLessThanOrEqual(3);
    expect(Math.abs((v3 / 2000) * 100 - 10)).toBeLessThanOrEqual(3);
    expect(destinations.byKey.get('reviews.default:9080|v1')).toBeDefined();
  });

  it('the draw picks by running sums of the weights; weight 0 is never picked', () => {
    const pick = (draw: number) => table([rule('w', { destinations: [to('reviews', 'v1', 90), to('reviews', 'v2', 0), to('reviews', 'v3', 10)] })], draws(draw)).select().destination?.subset;
    expect([0, 0.5, 0.8999, 0.9, 0.9999].map(pick)).toEqual(['v1', 'v1', 'v1', 'v3', 'v3']);
    // One destination with weight > 0: no draw at all.
    expect(table([rule('w', { destinations: [to('reviews', 'v2', 0), to('reviews', 'v3', 100)] })]).select().destination?.subset).toBe('v3');
  });

  it('port null: the port the request was sent to; another service; an explicit port', () => {
    const { routes, destinations } = table([rule('x', { destinations: [to('reviews', 'v2')] })]);
    const plan = routes.select(destinations.cluster('reviews', 9091), facts({ port: 9091 }));
    expect(plan.destination?.name).toBe('reviews.default:9091|v2');
    expect(table([rule('x', { destinations: [to('ratings')] })]).select().destination?.name).toBe('ratings.default:9080');
    expect(table([rule('x', { destinations: [to('reviews', null, 100, 9091)] })]).select().destination?.name).toBe('reviews.default:9091');
    expect(table([rule('x', { destinations: [to('reviews', null, 100, null, 'shop')] })]).select().destination?.name).toBe('reviews.shop:9080');
  });

  it('port null and a target with only one port: that port (Istio)', () => {
    expect(table([rule('x', { destinations: [to('details')] })]).select().destination?.name).toBe('details.default:8080');
  });

  it('what cannot be resolved leaves the destination undefined (503 UH) and never throws', () => {
    const cases: Array<[string, ReturnType<typeof to>]> = [
      ['an unknown service', to('nosuch')],
      ['an undefined subset', to('reviews', 'v9')],
      ['a subset of a service without subsets', to('ratings', 'v1')],
      ['a port the service does not have', to('reviews', null, 100, 1234)],
    ];
    for (const [what, destination] of cases) {
      const plan = table([rule('bad', { destinations: [destination] })]).select();
      expect(plan.routeName, what).toBe('bad');
      expect(plan.noRuleMatched, what).toBe(false);
      expect(plan.destination, what).toBeUndefined();
    }
  });

  it('port null and a target with several ports, none of them the request\'s: undefined', () => {
    const destinations = new Destinations();
    const route: RouteSpec = { name: 'details', namespace: 'default', hosts: [{ name: 'details', namespace: 'default' }], rules: [rule('to-reviews', { destinations: [to('reviews')] })] };
    const routes = createRouteTable([route], destinations.registry, destinations.destinationOf, noDraws);
    const plan = routes.select(destinations.cluster('details', 8080), facts({ host: 'details', port: 8080 }));
    expect(plan.routeName).toBe('to-reviews');
    expect(plan.destination).toBeUndefined();
  });

  it('resolved once and kept; a destination the lookup learns later is found then', () => {
    const late = new Destinations(false);
    const { select } = table([rule('x', { destinations: [to('reviews', 'v1')] })], noDraws, late);
    expect(select().destination).toBeUndefined();
    late.fill();
    const first = select().destination;
    expect(first?.name).toBe('reviews.default:9080|v1');
    const calls = late.calls;
    expect(select().destination).toBe(first);
    expect(late.calls).toBe(calls);
  });
});

describe('redirects', () => {
  const redirect = (host: string | null, path: string | null, code: 301 | 302 | 303 | 307 | 308 = 301) => rule('r', { destinations: [], redirect: { host, path, code } });

  it('Location from the request: http, host and path replaced when given, port kept unless 80, query kept', () => {
    const cases: Array<[RouteRule, FactsInput, string, number]> = [
      [redirect(null, '/api/reviews', 308), { path: '/v1/reviews', query: 'a=1&b' }, 'http://reviews:9080/api/reviews?a=1&b', 308],
      [redirect('ratings.default', null), { path: '/x' }, 'http://ratings.default:9080/x', 301],
      [redirect('new.example', '/y', 302), { port: 80, path: '/x', query: 'q=%20' }, 'http://new.example/y?q=%20', 302],
      [redirect(null, '/y?from=old'), { path: '/x', query: 'q=1' }, 'http://reviews:9080/y?from=old', 301],
      [redirect('::1', null, 307), { path: '/x' }, 'http://[::1]:9080/x', 307],
    ];
    for (const [r, input, location, status] of cases) {
      const plan = table([r]).select(input);
      expect(plan.redirect).toEqual({ status, location });
      expect(plan.routeName).toBe('r');
      expect(plan.destination).toBeUndefined();
    }
  });
});

describe('rewrites', () => {
  const prefixRule = (prefix: string, pathPrefix: string) =>
    rule('rw', { matches: [match({ path: { kind: 'prefix', value: prefix } })], rewrite: { pathPrefix, host: null } });

  it('pathPrefix replaces what a prefix match matched, keeps the query, never doubles a slash', () => {
    const cases: Array<[string, string, string, string, string]> = [
      ['/api/', '/', '/api/x', 'q=1', '/x?q=1'],
      ['/api', '/', '/api/x', '', '/x'],
      ['/api', '/', '/api', '', '/'],
      ['/api/', '/v2/', '/api/x/y', '', '/v2/x/y'],
      ['/api', '/v2', '/api/x', '', '/v2/x'],
      ['/api/', '/v2', '/api/x', '', '/v2x'],
      ['/', '/base/', '/x', 'a=b', '/base/x?a=b'],
    ];
    for (const [prefix, pathPrefix, path, query, expected] of cases) {
      expect(table([prefixRule(prefix, pathPrefix)]).select({ path, query }).path, `${prefix} → ${pathPrefix} on ${path}`).toBe(expected);
    }
  });

  it('exact, regex and path-less matches have the whole path replaced', () => {
    const rewrite = { pathPrefix: '/new', host: null };
    expect(table([rule('e', { matches: [match({ path: { kind: 'exact', value: '/old' } })], rewrite })]).select({ path: '/old', query: 'q' }).path).toBe('/new?q');
    expect(table([rule('r', { matches: [match({ path: { kind: 'regex', value: '/o.*' } })], rewrite })]).select({ path: '/old/1' }).path).toBe('/new');
    expect(table([rule('m', { matches: [match({ method: 'GET' })], rewrite })]).select({ path: '/old/1' }).path).toBe('/new');
    expect(table([rule('all', { rewrite })]).select({ path: '/old/1' }).path).toBe('/new');
  });

  it('the prefix of the match that held is the one replaced', () => {
    const r = rule('two', {
      matches: [match({ path: { kind: 'prefix', value: '/a/' } }), match({ path: { kind: 'prefix', value: '/bb/' } })],
      rewrite: { pathPrefix: '/', host: null },
    });
    expect(table([r]).select({ path: '/bb/x' }).path).toBe('/x');
    expect(table([r]).select({ path: '/a/x' }).path).toBe('/x');
  });

  it('host replaces the whole authority (as Istio does); no rewrite leaves path and authority undefined', () => {
    const plan = table([rule('h', { rewrite: { pathPrefix: null, host: 'ratings.default' } })]).select({ path: '/x' });
    expect(plan.authority).toBe('ratings.default');
    expect(plan.path).toBeUndefined();
    expect(table([rule('h', { rewrite: { pathPrefix: null, host: 'fe80::1' } })]).select().authority).toBe('[fe80::1]');
    const plain = table([rule('plain')]).select({ path: '/x', query: 'q' });
    expect(plain.path).toBeUndefined();
    expect(plain.authority).toBeUndefined();
  });
});

describe('mirror, fault, timeout, retries, header edits', () => {
  const mirror = (percent: number, subset: string | null = 'v2') => ({ service: { name: 'reviews', namespace: 'default' }, subset, port: null, percent });

  it('a mirror by percent, resolved like a destination; unresolvable: none', () => {
    const r = rule('m', { mirror: mirror(5) });
    expect(table([r], draws(0.0499)).select().mirror?.name).toBe('reviews.default:9080|v2');
    expect(table([r], draws(0.05)).select().mirror).toBeUndefined();
    expect(table([rule('m', { mirror: mirror(100) })]).select().mirror?.name).toBe('reviews.default:9080|v2');
    expect(table([rule('m', { mirror: mirror(0) })]).select().mirror).toBeUndefined();
    expect(table([rule('m', { mirror: mirror(100, 'v9') })]).select().mirror).toBeUndefined();
  });

  it('draws in order: destination, mirror, fault delay, fault abort', () => {
    const r = rule('all', {
      destinations: [to('reviews', 'v1', 50), to('reviews', 'v3', 50)],
      mirror: mirror(50),
      fault: { delay: { fixedMs: 30, percent: 50 }, abort: { kind: 'grpc', status: 14, percent: 50 } },
    });
    const plan = table([r], draws(0.75, 0.25, 0.75, 0.25)).select();
    expect(plan.destination?.subset).toBe('v3');
    expect(plan.mirror?.subset).toBe('v2');
    expect(plan.fault).toEqual({ delayMs: 0, abort: { status: 14, grpc: true } });
  });

  it('timeout, retries and header edits come from the rule as they are', () => {
    const retries = { attempts: 2, perTryTimeoutMs: 500, retryOn: ['gateway-error' as const], retriableStatusCodes: [], backoff: { baseMs: 25, maxMs: 250 }, budget: { percent: 20, minRetriesPerSecond: 3 } };
    const headers = { request: { set: [{ name: 'x-route', value: 'api' }], add: [], remove: [] }, response: { set: [], add: [], remove: ['x-internal-debug'] } };
    const plan = table([rule('api', { timeoutMs: 2000, retries, headers, fault: { delay: { fixedMs: 50, percent: 100 }, abort: null } })]).select();
    expect(plan.timeoutMs).toBe(2000);
    expect(plan.retry).toBe(retries);
    expect(plan.requestHeaders).toBe(headers.request);
    expect(plan.responseHeaders).toBe(headers.response);
    expect(plan.fault).toEqual({ delayMs: 50, abort: undefined });
    const bare = table([rule('bare')]).select();
    expect([bare.timeoutMs, bare.retry, bare.fault, bare.mirror]).toEqual([0, null, NO_FAULT, undefined]);
  });
});

describe('the annotated example, examples/config/traffic.yaml, validated for real', () => {
  const file = new URL('../../examples/config/traffic.yaml', import.meta.url);
  const result = validateMeshConfigText(readFileSync(file, 'utf8'), 'traffic.yaml');
  if (!result.ok) throw new Error(`the example does not validate: ${JSON.stringify(result.errors)}`);
  const config = result.config;
  const subsets = new Map(
    (config.destinationPolicies ?? []).map((policy) => [`${policy.host.name}.${policy.host.namespace}`, new Map(policy.subsets.map((subset) => [subset.name, subset.labels]))]),
  );
  const destinations = new Destinations(true, config.services, subsets);
  const reviews = destinations.cluster('reviews', 9080);

  function routes(random: () => number) {
    return createRouteTable(config.routes ?? [], destinations.registry, destinations.destinationOf, random);
  }

  it('routes each request as the comments say', () => {
    // Draws: api's 1% delay (0.5: none), default's split (0.95: v3) and 5% mirror (0.02: yes), api's delay again.
    const table = routes(draws(0.5, 0.95, 0.02, 0.5));
    const jason = table.select(reviews, facts({ headers: { 'End-User': 'jason' } }));
    expect([jason.routeName, jason.destination?.name, jason.requestHeaders.set]).toEqual(['jason-on-v2', 'reviews.default:9080|v2', [{ name: 'x-route', value: 'jason-on-v2' }]]);
    expect(table.select(reviews, facts({ query: 'user=jason' })).destination?.name).toBe('reviews.default:9080|v2');
    expect(table.select(reviews, facts({ path: '/v1/reviews/3', query: 'x=1' })).redirect).toEqual({ status: 308, location: 'http://reviews:9080/api/reviews?x=1' });
    const api = table.select(reviews, facts({ path: '/api/ratings/1' }));
    expect([api.routeName, api.destination?.name, api.path, api.timeoutMs, api.retry?.attempts, api.fault.delayMs]).toEqual(['api', 'reviews.default:9080|v1', '/ratings/1', 2000, 2, 0]);
    // HEAD with x-debug present misses both api matches and falls to default (draws 0.95 → v3, 0.02 → mirrored).
    const head = table.select(reviews, facts({ method: 'HEAD', path: '/api/x', headers: { 'x-debug': '1' } }));
    expect([head.routeName, head.destination?.name, head.mirror?.name, head.timeoutMs]).toEqual(['default', 'reviews.default:9080|v3', 'reviews.default:9080|v2', 5000]);
    const headPlain = table.select(reviews, facts({ method: 'HEAD', path: '/api/x' }));
    expect([headPlain.routeName, headPlain.fault.delayMs]).toEqual(['api', 0]);
  });
});
