import { describe, expect, it } from 'vitest';
import { at, doc, issues, valid } from './schema.test-helper.js';
import type { BriefIssue } from './schema.test-helper.js';
import type { DestinationPolicySpec, TrafficPolicy } from './types.js';

/** A DestinationPolicy for reviews with `fields` (one line, block content) after `host:` (so the fields are on line 6). */
function policy(fields: string): string {
  return doc('DestinationPolicy', `  host: reviews\n${fields}\n`);
}

const FULL = doc(
  'DestinationPolicy',
  `  host: reviews.shop
  loadBalancer: { consistentHash: { cookie: { name: session, ttl: 1h } } }
  endpointWeights:
    - { labels: { zone: b }, weight: 3 }
    - { address: 10.0.0.5, port: 9080, weight: 2 }
    - { address: 10.0.0.6, weight: 1 }
  connectionPool: { maxConnections: 100, maxPendingRequests: 0, maxRequests: 200, maxRetries: 5, connectTimeout: 250ms }
  healthCheck: { path: /healthz, interval: 5s, timeout: 500ms, healthyThreshold: 1, unhealthyThreshold: 4 }
  outlierDetection: { consecutive5xx: 3, consecutiveGatewayErrors: 2, interval: 5s, baseEjectionTime: 1m, maxEjectionPercent: 50 }
  tls: { mode: MESH }
  panicThreshold: 30
  subsets:
    - { name: v1, labels: { version: v1 } }
    - name: v2
      labels: { version: v2, track: canary }
      overrides:
        loadBalancer: { simple: random }
        connectionPool: { maxRequests: 10 }
        tls: { mode: DISABLE }
        panicThreshold: 0
    - name: v3
      labels: { version: v3 }
      overrides: { loadBalancer: { consistentHash: { header: X-User } }, outlierDetection: { consecutiveGatewayErrors: 1 } }
    - name: v4
      labels: { version: v4 }
      overrides: { loadBalancer: { consistentHash: { sourceAddress: true } }, healthCheck: { path: /ready }, endpointWeights: [] }
`,
  '{ name: reviews-policy, namespace: web }',
);

const TOP: TrafficPolicy = {
  loadBalancer: { kind: 'consistentHash', key: { kind: 'cookie', name: 'session', ttlMs: 3_600_000 } },
  endpointWeights: [
    { kind: 'labels', labels: { zone: 'b' }, weight: 3 },
    { kind: 'address', address: '10.0.0.5', port: 9080, weight: 2 },
    { kind: 'address', address: '10.0.0.6', port: null, weight: 1 },
  ],
  connectionPool: { maxConnections: 100, maxPendingRequests: 0, maxRequests: 200, maxRetries: 5, connectTimeoutMs: 250 },
  healthCheck: { path: '/healthz', intervalMs: 5000, timeoutMs: 500, healthyThreshold: 1, unhealthyThreshold: 4 },
  outlierDetection: { consecutive5xx: 3, consecutiveGatewayErrors: 2, intervalMs: 5000, baseEjectionTimeMs: 60_000, maxEjectionPercent: 50 },
  tls: { mode: 'MESH' },
  panicThresholdPercent: 30,
};

const UNLIMITED = { maxConnections: null, maxPendingRequests: null, maxRequests: null, maxRetries: null, connectTimeoutMs: null };

const FULL_MODEL: DestinationPolicySpec = {
  name: 'reviews-policy',
  namespace: 'web',
  host: { name: 'reviews', namespace: 'shop' },
  policy: TOP,
  subsets: [
    { name: 'v1', labels: { version: 'v1' }, policy: TOP },
    {
      name: 'v2',
      labels: { version: 'v2', track: 'canary' },
      // Each block written replaces the service's whole block: the other pool limits are not inherited.
      policy: { ...TOP, loadBalancer: { kind: 'random' }, connectionPool: { ...UNLIMITED, maxRequests: 10 }, tls: { mode: 'DISABLE' }, panicThresholdPercent: 0 },
    },
    {
      name: 'v3',
      labels: { version: 'v3' },
      policy: {
        ...TOP,
        loadBalancer: { kind: 'consistentHash', key: { kind: 'header', name: 'x-user' } },
        // The defaults of a block written without them.
        outlierDetection: { consecutive5xx: 5, consecutiveGatewayErrors: 1, intervalMs: 10_000, baseEjectionTimeMs: 30_000, maxEjectionPercent: 10 },
      },
    },
    {
      name: 'v4',
      labels: { version: 'v4' },
      policy: {
        ...TOP,
        loadBalancer: { kind: 'consistentHash', key: { kind: 'sourceAddress' } },
        healthCheck: { path: '/ready', intervalMs: 10_000, timeoutMs: 1000, healthyThreshold: 2, unhealthyThreshold: 3 },
        endpointWeights: [],
      },
    },
  ],
};

describe('DestinationPolicy schema: valid documents', () => {
  it('parses a full example to the typed model, with each subset policy in effect', () => {
    expect(valid(FULL).destinationPolicies).toEqual([FULL_MODEL]);
  });

  it('defaults to round robin, no limits, no checks, TLS as peers decide, no subsets', () => {
    expect(valid(doc('DestinationPolicy', '  host: reviews\n')).destinationPolicies).toEqual([
      {
        name: 'test',
        namespace: 'default',
        host: { name: 'reviews', namespace: 'default' },
        policy: { loadBalancer: { kind: 'roundRobin' }, endpointWeights: [], connectionPool: UNLIMITED, healthCheck: null, outlierDetection: null, tls: null, panicThresholdPercent: null },
        subsets: [],
      },
    ]);
  });

  it('reads simple load balancers by name', () => {
    for (const simple of ['roundRobin', 'leastRequest', 'random'] as const) {
      expect(valid(policy(`  loadBalancer: { simple: ${simple} }`)).destinationPolicies[0]!.policy.loadBalancer).toEqual({ kind: simple });
    }
  });
});

describe('DestinationPolicy schema: each rule names the field, says what was expected, and where', () => {
  const cases: Array<[string, string, BriefIssue[]]> = [
    [
      'no host',
      doc('DestinationPolicy', '  subsets: []\n'),
      [at('spec.host', 'missing; expected a service name (a DNS-1123 label, e.g. reviews), optionally with its namespace after a dot (reviews.shop)', 4)],
    ],
    [
      'a load balancer that is both, and a misspelt one',
      policy('  loadBalancer: { simple: leastRequests, consistentHash: { sourceAddress: true } }'),
      [
        at('spec.loadBalancer.simple', 'expected one of roundRobin, leastRequest, random, got "leastRequests"; did you mean leastRequest?', 6),
        at('spec.loadBalancer.consistentHash', 'cannot be used together with simple: write exactly one of simple, consistentHash', 6),
      ],
    ],
    [
      'consistent hashing on nothing, on two keys, on sourceAddress false, on a cookie without name',
      [
        doc('DestinationPolicy', '  host: a\n  loadBalancer: { consistentHash: {} }\n', '{ name: a }'),
        doc('DestinationPolicy', '  host: b\n  loadBalancer: { consistentHash: { header: x, sourceAddress: false } }\n', '{ name: b }'),
        doc('DestinationPolicy', '  host: c\n  loadBalancer: { consistentHash: { cookie: { ttl: 1h } } }\n', '{ name: c }'),
      ].join('---\n'),
      [
        at('spec.loadBalancer.consistentHash', 'expected exactly one of header, cookie, sourceAddress, got none of them', 6),
        at('spec.loadBalancer.consistentHash.sourceAddress', 'cannot be used together with header: write exactly one of header, cookie, sourceAddress', 13),
        at('spec.loadBalancer.consistentHash.sourceAddress', 'expected true, got false', 13),
        at('spec.loadBalancer.consistentHash.cookie.name', "missing; expected a cookie name (letters, digits and !#$%&'*+-.^_`|~)", 20),
      ],
    ],
    [
      'endpoint weights: labels and address, neither, a port without address, weight 0, empty labels',
      policy('  endpointWeights: [{ labels: { a: b }, address: 10.0.0.1, weight: 1 }, { weight: 1 }, { labels: { a: b }, port: 80, weight: 0 }, { labels: {}, weight: 1 }]'),
      [
        at('spec.endpointWeights[0].address', 'cannot be used together with labels: write exactly one of labels, address', 6),
        at('spec.endpointWeights[1]', 'expected exactly one of labels, address, got none of them', 6),
        at('spec.endpointWeights[2].port', 'can only be used with address', 6),
        at('spec.endpointWeights[2].weight', 'expected an integer 1..128, got 0', 6),
        at('spec.endpointWeights[3].labels', 'expected at least one label, got an empty mapping', 6),
      ],
    ],
    [
      'connection pool limits out of range, a zero connect timeout',
      policy('  connectionPool: { maxConnections: 0, maxRequests: 1.5, maxPendingRequests: -1, connectTimeout: 0ms, maxConnection: 5 }'),
      [
        at('spec.connectionPool.maxConnections', 'expected an integer 1..1000000, got 0', 6),
        at('spec.connectionPool.maxRequests', 'expected an integer 1..1000000, got 1.5', 6),
        at('spec.connectionPool.maxPendingRequests', 'expected an integer 0..1000000, got -1', 6),
        at('spec.connectionPool.connectTimeout', 'expected a duration from 1ms to 1m, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got "0ms"', 6),
        at('spec.connectionPool.maxConnection', 'unknown field; did you mean maxConnections?', 6),
      ],
    ],
    [
      'a health check without path, a timeout longer than its interval, a zero threshold',
      [
        policy('  healthCheck: { interval: 1s }'),
        doc('DestinationPolicy', '  host: b\n  healthCheck: { path: /h, interval: 1s, timeout: 2s, unhealthyThreshold: 0 }\n', '{ name: b }'),
      ].join('---\n'),
      [
        at('spec.healthCheck.path', 'missing; expected a path starting with / (without spaces)', 6),
        at('spec.healthCheck.timeout', 'expected a duration no longer than interval: a check must end before the next one starts', 13),
        at('spec.healthCheck.unhealthyThreshold', 'expected an integer 1..100, got 0', 13),
      ],
    ],
    [
      'outlier detection that never ejects, an ejection share over 100',
      policy('  outlierDetection: { consecutive5xx: 0, maxEjectionPercent: 101 }'),
      [
        at('spec.outlierDetection', 'consecutive5xx and consecutiveGatewayErrors are both 0: nothing would ever eject an endpoint', 6),
        at('spec.outlierDetection.maxEjectionPercent', 'expected a percentage 0..100, got 101', 6),
      ],
    ],
    ['a panic threshold over 100', policy('  panicThreshold: 120'), [at('spec.panicThreshold', 'expected a percentage 0..100, got 120', 6)]],
    ['a lowercase TLS mode', policy('  tls: { mode: mesh }'), [at('spec.tls.mode', 'expected one of MESH, DISABLE, got "mesh"; did you mean MESH?', 6)]],
    [
      'subsets: a name twice, no labels, empty labels, an override of the host, a misspelt override',
      policy('  subsets: [{ name: v1, labels: { v: a } }, { name: v1 }, { name: v2, labels: {} }, { name: v3, labels: { v: c }, overrides: { host: x, loadbalancer: {} } }]'),
      [
        // A missing field is placed at its mapping, which starts before its fields.
        at('spec.subsets[1].labels', 'missing; expected a mapping of label names to values', 6),
        at('spec.subsets[1].name', 'subset name v1 is already used by subsets[0]', 6),
        at('spec.subsets[2].labels', 'expected at least one label, got an empty mapping', 6),
        at('spec.subsets[3].overrides.host', 'unknown field', 6),
        at('spec.subsets[3].overrides.loadbalancer', 'unknown field; did you mean loadBalancer?', 6),
      ],
    ],
  ];

  it.each(cases)('%s', (_what, text, expected) => {
    expect(issues(text)).toEqual(expected);
  });

  it('reports every problem at once, top-level and in subsets', () => {
    const text = policy('  loadBalancer: { simple: fastest }\n  tls: {}\n  subsets: [{ name: V1, labels: { v: a }, overrides: { connectionPool: { maxRetries: x } } }]');
    expect(issues(text).map((issue) => [issue.path, issue.line])).toEqual([
      ['spec.loadBalancer.simple', 6],
      ['spec.tls.mode', 7],
      ['spec.subsets[0].name', 8],
      ['spec.subsets[0].overrides.connectionPool.maxRetries', 8],
    ]);
  });
});

describe('DestinationPolicy: across documents', () => {
  it('allows one policy per service, naming the other document', () => {
    const text = [policy('  subsets: []'), doc('DestinationPolicy', '  host: reviews.default\n', '{ name: second }')].join('---\n');
    expect(issues(text)).toEqual([
      at('spec.host', 'service default/reviews already has DestinationPolicy default/test (test.yaml, document 0); one DestinationPolicy per service', 12),
    ]);
  });
});
