import { describe, expect, it } from 'vitest';
import { validateMeshConfigText } from './load.js';
import { doc, issues, valid } from './schema.test-helper.js';

// Each document below is 6 lines or fewer; sets are joined with '---'.
const SERVICES = [
  doc('Service', '  ports: [{ name: http, port: 9080, protocol: http }, { name: metrics, port: 9091, protocol: http }]\n', '{ name: reviews }'),
  doc('Service', '  ports: [{ name: http, port: 8080, protocol: http }]\n', '{ name: web }'),
];
const POLICY = doc('DestinationPolicy', '  host: reviews\n  subsets: [{ name: v1, labels: { version: v1 } }, { name: v2, labels: { version: v2 } }]\n', '{ name: reviews }');
const ROUTE = doc('Route', '  hosts: [reviews]\n  http: [{ name: api, destinations: [{ service: reviews, subset: v1, port: 9080 }] }]\n', '{ name: reviews }');

function set(...documents: string[]): string {
  return documents.join('---\n');
}

/** [document, path, message] of every issue. */
function where(text: string): Array<[number | null, string, string]> {
  const result = validateMeshConfigText(text, 'set.yaml');
  if (result.ok) throw new Error('expected issues, got a valid config');
  return result.errors.map((issue) => [issue.document, issue.path, issue.message]);
}

describe('references to services', () => {
  it('accepts a set whose references all resolve', () => {
    const config = valid(set(...SERVICES, POLICY, ROUTE));
    expect(config.routes[0]!.rules[0]!.destinations[0]!.subset).toBe('v1');
  });

  it('are not checked in a set without Service documents: services may register themselves', () => {
    const route = doc('Route', '  hosts: [nowhere]\n  http: [{ name: a, destinations: [{ service: elsewhere, port: 1 }] }]\n');
    expect(valid(route).routes).toHaveLength(1);
  });

  it('must resolve in a set with Service documents, everywhere a service is named, with did-you-mean', () => {
    const text = set(
      ...SERVICES,
      doc('Route', '  hosts: [reviewz]\n  http: [{ name: a, destinations: [{ service: web.shop }], mirror: { service: webb } }]\n', '{ name: r }'),
      doc('DestinationPolicy', '  host: ratings\n', '{ name: d }'),
      doc('RateLimit', '  target: { service: ratings }\n  tokenBucket: { maxTokens: 1, fillInterval: 1s }\n  overrides: [{ source: batch, tokenBucket: { maxTokens: 1, fillInterval: 1s } }]\n', '{ name: l }'),
      doc('AuthorizationPolicy', '  selector: { service: ratings }\n  rules: [{ from: [{ services: [webb, "*-gateway", web] }] }]\n', '{ name: a }'),
      doc('PeerAuthentication', '  selector: { service: ratings }\n  mtls: { mode: STRICT }\n', '{ name: p }'),
      doc('CircuitPolicy', '  target: { service: ratings }\n  errorRatePercent: 50\n', '{ name: c }'),
    );
    const unknown = (ref: string, hint = ''): string => `service ${ref} is not defined by any Service document in the set${hint}`;
    expect(where(text)).toEqual([
      [2, 'spec.hosts[0]', unknown('default/reviewz', '; did you mean default/reviews?')],
      [2, 'spec.http[0].destinations[0].service', unknown('shop/web', '; did you mean default/web?')],
      [2, 'spec.http[0].mirror.service', unknown('default/webb', '; did you mean default/web?')],
      [3, 'spec.host', unknown('default/ratings')],
      [4, 'spec.target.service', unknown('default/ratings')],
      [4, 'spec.overrides[0].source', unknown('default/batch')],
      [5, 'spec.selector.service', unknown('default/ratings')],
      [5, 'spec.rules[0].from[0].services[0]', 'no Service document in the set is named webb; did you mean web?'],
      [6, 'spec.selector.service', unknown('default/ratings')],
      [7, 'spec.target.service', unknown('default/ratings')],
    ]);
  });

  it('checks that a port named with a service is one of its ports, naming the Service document', () => {
    const text = set(
      ...SERVICES,
      doc('Route', '  hosts: [reviews]\n  http: [{ name: a, destinations: [{ service: reviews, port: 9090 }], mirror: { service: web, port: 8080 } }]\n', '{ name: r }'),
      doc('PeerAuthentication', '  selector: { service: reviews }\n  mtls: { mode: STRICT }\n  portLevelMtls: { 9091: { mode: DISABLE }, 9092: { mode: DISABLE } }\n', '{ name: p }'),
    );
    expect(where(text)).toEqual([
      [2, 'spec.http[0].destinations[0].port', 'port 9090 is not a port of Service default/reviews (set.yaml, document 0), which has 9080, 9091'],
      [3, 'spec.portLevelMtls["9092"]', 'port 9092 is not a port of Service default/reviews (set.yaml, document 0), which has 9080, 9091'],
    ]);
  });
});

describe('references to subsets', () => {
  it('must name a subset of the DestinationPolicy of the service, naming that document', () => {
    const text = set(
      POLICY,
      doc('Route', '  hosts: [reviews]\n  http: [{ name: a, destinations: [{ service: reviews, subset: v3 }], mirror: { service: reviews, subset: v-2 } }]\n', '{ name: r }'),
      doc('CircuitPolicy', '  target: { service: reviews, subset: v4 }\n  errorRatePercent: 50\n', '{ name: c }'),
    );
    const policy = 'DestinationPolicy default/reviews (set.yaml, document 0), which defines v1, v2';
    expect(where(text)).toEqual([
      // No did-you-mean for names this short: v3 is not a typo of v1.
      [1, 'spec.http[0].destinations[0].subset', `subset v3 is not defined by ${policy}`],
      [1, 'spec.http[0].mirror.subset', `subset v-2 is not defined by ${policy}; did you mean v2?`],
      [2, 'spec.target.subset', `subset v4 is not defined by ${policy}`],
    ]);
  });

  it('need a DestinationPolicy for the service, even in a set without one: subsets exist only there', () => {
    const text = doc('Route', '  hosts: [reviews]\n  http: [{ name: a, destinations: [{ service: reviews, subset: v1 }] }]\n');
    expect(issues(text).map((issue) => issue.message)).toEqual(['subset v1 needs a DestinationPolicy for service default/reviews that defines it; the set has none']);
  });

  it('say when the policy defines no subsets', () => {
    const text = set(doc('DestinationPolicy', '  host: reviews\n'), doc('CircuitPolicy', '  target: { service: reviews, subset: v1 }\n  errorRatePercent: 50\n'));
    expect(where(text)).toEqual([[1, 'spec.target.subset', 'subset v1 is not defined by DestinationPolicy default/test (set.yaml, document 0), which defines no subsets']]);
  });
});

describe('references to Route rules', () => {
  it('must name a rule of the Route for the service, naming that document', () => {
    const text = set(ROUTE, POLICY, doc('RateLimit', '  target: { service: reviews, routes: [apj, web] }\n  tokenBucket: { maxTokens: 1, fillInterval: 1s }\n'));
    expect(where(text)).toEqual([
      [2, 'spec.target.routes[0]', 'route apj is not a rule of Route default/reviews (set.yaml, document 0), which has api; did you mean api?'],
      [2, 'spec.target.routes[1]', 'route web is not a rule of Route default/reviews (set.yaml, document 0), which has api'],
    ]);
  });

  it('need a Route for the service', () => {
    const text = doc('RateLimit', '  target: { service: reviews, routes: [api] }\n  tokenBucket: { maxTokens: 1, fillInterval: 1s }\n');
    expect(issues(text).map((issue) => issue.message)).toEqual(['route api needs a Route for service default/reviews with a rule of that name; the set has none']);
  });
});

describe('references and invalid documents', () => {
  it('are not checked against a kind with an invalid document: its own errors come first, and what it defines is unknown', () => {
    const text = set(
      doc('Service', '  ports: [{ name: http, port: 0, protocol: http }]\n', '{ name: reviews }'),
      doc('DestinationPolicy', '  host: reviews\n  subsets: [{ name: v1 }]\n', '{ name: reviews }'),
      doc('Route', '  hosts: [reviews]\n  http: [{ name: a, timeout: 5, destinations: [{ service: reviews, subset: v1 }] }]\n', '{ name: r }'),
      doc('RateLimit', '  target: { service: reviews, routes: [a] }\n  tokenBucket: { maxTokens: 1, fillInterval: 1s }\n', '{ name: l }'),
    );
    expect(where(text)).toEqual([
      [0, 'spec.ports[0].port', 'expected an integer 1..65535, got 0'],
      [1, 'spec.subsets[0].labels', 'missing; expected a mapping of label names to values'],
      [2, 'spec.http[0].timeout', 'expected a duration from 1ms to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got 5 (add a unit: 5s or 5ms)'],
    ]);
  });

  it('are reported together with every other problem of the set', () => {
    const text = set(
      ...SERVICES,
      doc('Route', '  hosts: [ratings]\n  http: [{ name: a, destinations: [{ service: reviews }] }]\n', '{ name: r }'),
      doc('RateLimit', '  target: { service: reviews }\n  tokenBucket: { maxTokens: 0, fillInterval: 1s }\n', '{ name: l }'),
      doc('Gateway', '  {}\n', '{ name: g }'),
    );
    expect(where(text).map(([document, path]) => [document, path])).toEqual([
      [2, 'spec.hosts[0]'],
      [3, 'spec.tokenBucket.maxTokens'],
      [4, 'kind'],
    ]);
  });

  it('report a kind, namespace and name defined twice for the new kinds too, and the set is rejected whole', () => {
    const text = set(POLICY, ROUTE, ROUTE.replace('hosts: [reviews]', 'hosts: [ratings]'));
    const result = validateMeshConfigText(text, 'set.yaml');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((issue) => [issue.document, issue.path, issue.message])).toEqual([
      [2, 'metadata.name', 'duplicate Route default/reviews: already defined in set.yaml, document 1'],
    ]);
  });
});
