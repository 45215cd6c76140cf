import { describe, expect, it } from 'vitest';
import { validateMeshConfigText } from './load.js';
import { at, doc, issues, valid } from './schema.test-helper.js';
import type { BriefIssue } from './schema.test-helper.js';
import type { RouteSpec } from './types.js';

/** A Route for reviews; each rule line goes under `http:` (rule n is on line 6 + n). */
function route(...rules: string[]): string {
  return doc('Route', `  hosts: [reviews]\n  http:\n${rules.map((rule) => `    - ${rule}\n`).join('')}`, '{ name: reviews }');
}

const TO_REVIEWS = 'destinations: [{ service: reviews }]';

const FULL = doc(
  'Route',
  `  hosts: [reviews, ratings.shop]
  http:
    - name: canary
      match:
        - host: Reviews.Example
          path: { prefix: /api/ }
          method: POST
          headers: { X-User: { exact: jason }, x-trace: { present: true }, x-debug: { present: false }, x-tenant: { regex: "a|b" } }
          queryParams: { v: { prefix: "2" } }
        - path: { regex: "/v[0-9]+/.*" }
      destinations:
        - { service: reviews, subset: v1, port: 9080, weight: 90 }
        - { service: reviews.shop, subset: v2, weight: 10 }
      rewrite: { pathPrefix: /, host: reviews.internal }
      headers:
        request: { set: { X-Route: canary }, add: { x-tag: a }, remove: [X-Secret] }
        response: { set: { cache-control: no-store } }
      mirror: { service: reviews, subset: v3, port: 9080, percent: 2.5 }
      timeout: 2s
      retries:
        attempts: 3
        perTryTimeout: 500ms
        retryOn: [5xx, retriable-status-codes]
        retriableStatusCodes: [409, 429]
        backoff: { base: 10ms, max: 1s }
        budget: { percent: 25, minRetriesPerSecond: 5 }
      fault:
        delay: { fixed: 100ms, percent: 10 }
        abort: { grpcStatus: UNAVAILABLE, percent: 0.5 }
    - name: old
      match: [{ path: { exact: /old } }]
      redirect: { host: new.example, path: /new, code: 307 }
      fault: { abort: { status: 503 } }
    - name: rest
      destinations: [{ service: reviews }]
      retries: { attempts: 1 }
`,
  '{ name: reviews, namespace: shop }',
) + `---
${doc('DestinationPolicy', '  host: reviews\n  subsets: [{ name: v1, labels: { v: "1" } }, { name: v2, labels: { v: "2" } }, { name: v3, labels: { v: "3" } }]\n', '{ name: reviews, namespace: shop }')}`;

const NO_EDITS = { set: [], add: [], remove: [] };

const FULL_MODEL: RouteSpec = {
  name: 'reviews',
  namespace: 'shop',
  hosts: [
    { name: 'reviews', namespace: 'shop' },
    { name: 'ratings', namespace: 'shop' },
  ],
  rules: [
    {
      name: 'canary',
      matches: [
        {
          host: 'reviews.example',
          path: { kind: 'prefix', value: '/api/' },
          method: 'POST',
          headers: [
            { name: 'x-user', match: { kind: 'exact', value: 'jason' } },
            { name: 'x-trace', match: { kind: 'present' } },
            { name: 'x-debug', match: { kind: 'absent' } },
            { name: 'x-tenant', match: { kind: 'regex', value: 'a|b' } },
          ],
          queryParams: [{ name: 'v', match: { kind: 'prefix', value: '2' } }],
        },
        { host: null, path: { kind: 'regex', value: '/v[0-9]+/.*' }, method: null, headers: [], queryParams: [] },
      ],
      destinations: [
        { service: { name: 'reviews', namespace: 'shop' }, subset: 'v1', port: 9080, weight: 90 },
        { service: { name: 'reviews', namespace: 'shop' }, subset: 'v2', port: null, weight: 10 },
      ],
      redirect: null,
      rewrite: { pathPrefix: '/', host: 'reviews.internal' },
      headers: {
        request: { set: [{ name: 'x-route', value: 'canary' }], add: [{ name: 'x-tag', value: 'a' }], remove: ['x-secret'] },
        response: { set: [{ name: 'cache-control', value: 'no-store' }], add: [], remove: [] },
      },
      mirror: { service: { name: 'reviews', namespace: 'shop' }, subset: 'v3', port: 9080, percent: 2.5 },
      timeoutMs: 2000,
      retries: {
        attempts: 3,
        perTryTimeoutMs: 500,
        retryOn: ['5xx', 'retriable-status-codes'],
        retriableStatusCodes: [409, 429],
        backoff: { baseMs: 10, maxMs: 1000 },
        budget: { percent: 25, minRetriesPerSecond: 5 },
      },
      fault: { delay: { fixedMs: 100, percent: 10 }, abort: { kind: 'grpc', status: 14, percent: 0.5 } },
    },
    {
      name: 'old',
      matches: [{ host: null, path: { kind: 'exact', value: '/old' }, method: null, headers: [], queryParams: [] }],
      destinations: [],
      redirect: { host: 'new.example', path: '/new', code: 307 },
      rewrite: null,
      headers: { request: NO_EDITS, response: NO_EDITS },
      mirror: null,
      timeoutMs: null,
      retries: null,
      fault: { delay: null, abort: { kind: 'http', status: 503, percent: 100 } },
    },
    {
      name: 'rest',
      matches: [],
      destinations: [{ service: { name: 'reviews', namespace: 'shop' }, subset: null, port: null, weight: 100 }],
      redirect: null,
      rewrite: null,
      headers: { request: NO_EDITS, response: NO_EDITS },
      mirror: null,
      timeoutMs: null,
      // The defaults: safe conditions, Envoy's backoff and budget.
      retries: {
        attempts: 1,
        perTryTimeoutMs: null,
        retryOn: ['connect-failure', 'reset', 'gateway-error'],
        retriableStatusCodes: [],
        backoff: { baseMs: 25, maxMs: 250 },
        budget: { percent: 20, minRetriesPerSecond: 3 },
      },
      fault: null,
    },
  ],
};

describe('Route schema: valid documents', () => {
  it('parses a full example to the typed model: durations in ms, names lowercase, refs resolved', () => {
    expect(valid(FULL).routes).toEqual([FULL_MODEL]);
  });

  it('applies the defaults: redirect code 301, mirror and fault percent 100, codes listed without retryOn are retried', () => {
    const [model] = valid(
      route(
        '{ name: a, match: [{ method: GET }], redirect: { path: /b } }',
        `{ name: b, ${TO_REVIEWS}, mirror: { service: m }, fault: { delay: { fixed: 1s } }, retries: { attempts: 2, retriableStatusCodes: [503] } }`,
      ),
    ).routes;
    const [redirect, forward] = model!.rules;
    expect(redirect!.redirect).toEqual({ host: null, path: '/b', code: 301 });
    expect(forward!.mirror).toEqual({ service: { name: 'm', namespace: 'default' }, subset: null, port: null, percent: 100 });
    expect(forward!.fault).toEqual({ delay: { fixedMs: 1000, percent: 100 }, abort: null });
    expect(forward!.retries!.retryOn).toEqual(['connect-failure', 'reset', 'gateway-error', 'retriable-status-codes']);
    expect(forward!.retries!.backoff).toEqual({ baseMs: 25, maxMs: 250 });
  });

  it('gives every rule the same object shape', () => {
    const rules = valid(FULL).routes[0]!.rules;
    for (const rule of rules) expect(Object.keys(rule)).toEqual(Object.keys(rules[0]!));
  });
});

describe('Route schema: each rule names the field, says what was expected, and where', () => {
  const DNS = "a DNS-1123 label (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit)";
  const REF = 'a service name (a DNS-1123 label, e.g. reviews), optionally with its namespace after a dot (reviews.shop)';
  const cases: Array<[string, string, BriefIssue[]]> = [
    [
      'hosts: empty, a bad name with a suggestion, a Kubernetes FQDN, a duplicate',
      doc('Route', `  hosts: [Reviews_1, reviews.shop.svc.cluster.local, a, a]\n  http:\n    - { name: r, ${TO_REVIEWS} }\n`),
      [
        at('spec.hosts[0]', `expected ${REF}, got "Reviews_1"; did you mean reviews-1?`, 5),
        at('spec.hosts[1]', `expected ${REF}, got "reviews.shop.svc.cluster.local"; did you mean reviews.shop?`, 5),
        at('spec.hosts[3]', 'service a is already used by hosts[2]', 5),
      ],
    ],
    ['no rules', doc('Route', '  hosts: [reviews]\n  http: []\n'), [at('spec.http', 'expected a non-empty list of rules, got an empty list', 6)]],
    ['a rule without name', route(TO_REVIEWS.replace('destinations: ', '{ destinations: ') + ' }'), [at('spec.http[0].name', `missing; expected ${DNS}`, 7)]],
    [
      'two rules with one name',
      route(`{ name: a, match: [{ method: GET }], ${TO_REVIEWS} }`, `{ name: a, ${TO_REVIEWS} }`),
      [at('spec.http[1].name', 'rule name a is already used by http[0]', 8)],
    ],
    ['a rule that neither forwards nor redirects', route('{ name: a }'), [at('spec.http[0]', 'expected destinations or redirect, got neither', 7)]],
    [
      'a rule that forwards and redirects',
      route(`{ name: a, ${TO_REVIEWS}, redirect: { path: /x } }`),
      [at('spec.http[0].redirect', 'cannot be used together with destinations: a rule either forwards or redirects', 7)],
    ],
    [
      'a redirect with what only forwarding has',
      route('{ name: a, redirect: { path: /x }, rewrite: { host: b }, mirror: { service: m }, timeout: 1s, retries: { attempts: 1 } }'),
      ['rewrite', 'mirror', 'timeout', 'retries'].map((field) =>
        at(`spec.http[0].${field}`, 'cannot be used with redirect: the proxy answers a redirect itself and forwards nothing', 7),
      ),
    ],
    [
      'a redirect to nowhere, with a code that is not a redirect',
      route('{ name: a, redirect: { code: 304 } }'),
      [
        at('spec.http[0].redirect', 'expected at least one of host, path, got none of them', 7),
        at('spec.http[0].redirect.code', 'expected one of 301, 302, 303, 307, 308, got 304', 7),
      ],
    ],
    [
      'path matches: none, two, a regex that does not compile, a path without /',
      route(`{ name: a, match: [{ path: {} }, { path: { exact: /a, prefix: /b } }, { path: { regex: "(" } }, { path: { prefix: api } }], ${TO_REVIEWS} }`),
      [
        at('spec.http[0].match[0].path', 'expected exactly one of exact, prefix, regex, got none of them', 7),
        at('spec.http[0].match[1].path.prefix', 'cannot be used together with exact: write exactly one of exact, prefix, regex', 7),
        at('spec.http[0].match[2].path.regex', 'expected a regular expression, got "(": Invalid regular expression: /(/: Unterminated group', 7),
        at('spec.http[0].match[3].path.prefix', 'expected a path starting with / (without spaces), got "api"; did you mean /api?', 7),
      ],
    ],
    [
      'a regex that is too long',
      route(`{ name: a, match: [{ path: { regex: "${'a'.repeat(1001)}" } }], ${TO_REVIEWS} }`),
      [at('spec.http[0].match[0].path.regex', 'expected a regular expression of at most 1000 characters, got 1001', 7)],
    ],
    [
      'a lowercase method, a bad host',
      route(`{ name: a, match: [{ method: get, host: "a b" }], ${TO_REVIEWS} }`),
      [
        at('spec.http[0].match[0].method', 'expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, got "get"; did you mean GET?', 7),
        at('spec.http[0].match[0].host', 'expected an IPv4 or IPv6 address or a host name, got "a b"', 7),
      ],
    ],
    [
      'header matches: a bad name, one header twice, present that is not true or false, two kinds',
      route(`{ name: a, match: [{ headers: { "x user": { exact: a }, X-A: { exact: a }, x-a: { present: yes }, x-b: { prefix: a, present: true } } }], ${TO_REVIEWS} }`),
      [
        at('spec.http[0].match[0].headers["x user"]', "expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), got \"x user\"", 7),
        at('spec.http[0].match[0].headers.x-a', 'header x-a is already written as X-A (header names are case-insensitive)', 7),
        at('spec.http[0].match[0].headers.x-a.present', 'expected true or false, got "yes"', 7),
        at('spec.http[0].match[0].headers.x-b.present', 'cannot be used together with prefix: write exactly one of exact, prefix, regex, present', 7),
      ],
    ],
    [
      'a query parameter match with an empty name, and one that is not a mapping',
      route(`{ name: a, match: [{ queryParams: { "": { exact: a }, v: "2" } }], ${TO_REVIEWS} }`),
      [
        at('spec.http[0].match[0].queryParams[""]', 'expected a query parameter name (not empty), got ""', 7),
        at('spec.http[0].match[0].queryParams.v', 'expected a query parameter match: a mapping with one of exact, prefix, regex and present, got "2"', 7),
      ],
    ],
    [
      'match written as one mapping instead of a list',
      route(`{ name: a, match: { method: GET }, ${TO_REVIEWS} }`),
      [at('spec.http[0].match', 'expected a list of matches (any one of them must hold), got a mapping', 7)],
    ],
    [
      'weights that do not add up to 100',
      route('{ name: a, destinations: [{ service: r, subset: a, weight: 80 }, { service: r, subset: b, weight: 10 }] }'),
      [at('spec.http[0].destinations', 'expected weights that add up to 100, got 90', 7)],
    ],
    [
      'a missing weight among several, a weight out of range',
      route('{ name: a, destinations: [{ service: r, subset: a, weight: 101 }, { service: r, subset: b }] }'),
      [
        at('spec.http[0].destinations[0].weight', 'expected an integer 0..100, got 101', 7),
        at('spec.http[0].destinations[1].weight', 'missing; with more than one destination each needs a weight 0..100', 7),
      ],
    ],
    [
      'a single destination with a partial weight',
      route('{ name: a, destinations: [{ service: r, weight: 50 }] }'),
      [at('spec.http[0].destinations[0].weight', 'a single destination takes every request: write 100 or leave weight out, got 50', 7)],
    ],
    [
      'the same destination twice, a bad subset and port, no destinations',
      route(
        '{ name: a, match: [{ method: GET }], destinations: [{ service: r, subset: V1, weight: 50 }, { service: r, subset: V1, weight: 50 }, { service: r, port: 0, weight: 0 }] }',
        '{ name: b, destinations: [] }',
      ),
      [
        at('spec.http[0].destinations[0].subset', `expected ${DNS}, got "V1"; did you mean v1?`, 7),
        at('spec.http[0].destinations[1]', 'destination r subset V1 is already used by destinations[0]', 7),
        at('spec.http[0].destinations[1].subset', `expected ${DNS}, got "V1"; did you mean v1?`, 7),
        at('spec.http[0].destinations[2].port', 'expected an integer 1..65535, got 0', 7),
        at('spec.http[1].destinations', 'expected a non-empty list of destinations, got an empty list', 8),
      ],
    ],
    [
      'a rewrite of nothing, and of a path without /',
      route(`{ name: a, match: [{ method: GET }], ${TO_REVIEWS}, rewrite: {} }`, `{ name: b, ${TO_REVIEWS}, rewrite: { pathPrefix: v2 } }`),
      [
        at('spec.http[0].rewrite', 'expected at least one of pathPrefix, host, got none of them', 7),
        at('spec.http[1].rewrite.pathPrefix', 'expected a path starting with / (without spaces), got "v2"; did you mean /v2?', 8),
      ],
    ],
    [
      'header edits: the host, a framing header, a value with a line break, a misspelt field',
      route(`{ name: a, ${TO_REVIEWS}, headers: { request: { set: { Host: x, transfer-encoding: chunked }, add: { x-a: "a\\nb" }, delete: [x-b] }, response: { remove: [Content-Length] } } }`),
      [
        at('spec.http[0].headers.request.set.Host', 'the host is changed with rewrite.host, not as a header', 7),
        at('spec.http[0].headers.request.set.transfer-encoding', 'header transfer-encoding is managed by the proxy and cannot be edited', 7),
        at('spec.http[0].headers.request.add.x-a', 'expected a header value (a string without line breaks), got "a\\nb"', 7),
        at('spec.http[0].headers.request.delete', 'unknown field', 7),
        at('spec.http[0].headers.response.remove[0]', 'header Content-Length is managed by the proxy and cannot be edited', 7),
      ],
    ],
    [
      'a mirror without service, with a share over 100',
      route(`{ name: a, ${TO_REVIEWS}, mirror: { subset: v2, percent: 150 } }`),
      [
        at('spec.http[0].mirror.service', `missing; expected ${REF}`, 7),
        at('spec.http[0].mirror.percent', 'expected a percentage 0..100, got 150', 7),
      ],
    ],
    [
      'timeouts: no unit, too long, not a duration, zero',
      route(`{ name: a, ${TO_REVIEWS}, timeout: 5 }`, `{ name: b, ${TO_REVIEWS}, timeout: 48h }`, `{ name: c, ${TO_REVIEWS}, timeout: 2 seconds }`, `{ name: d, ${TO_REVIEWS}, timeout: 0s }`)
        .replace('name: a,', 'name: a, match: [{ method: GET }],')
        .replace('name: b,', 'name: b, match: [{ method: GET }],')
        .replace('name: c,', 'name: c, match: [{ method: GET }],'),
      [
        at('spec.http[0].timeout', 'expected a duration from 1ms to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got 5 (add a unit: 5s or 5ms)', 7),
        at('spec.http[1].timeout', 'expected a duration from 1ms to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got "48h"', 8),
        at('spec.http[2].timeout', 'expected a duration from 1ms to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got "2 seconds"', 9),
        at('spec.http[3].timeout', 'expected a duration from 1ms to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got "0s"', 10),
      ],
    ],
    [
      'retries: no attempts, a misspelt condition, a condition twice, a budget over 100',
      route(`{ name: a, ${TO_REVIEWS}, retries: { retryOn: [5XX, reset, reset], budget: { percent: 120 } } }`),
      [
        at('spec.http[0].retries.attempts', 'missing; expected an integer 0..10 (retries after the first try)', 7),
        at('spec.http[0].retries.retryOn[0]', 'expected one of 5xx, gateway-error, reset, connect-failure, retriable-status-codes, got "5XX"; did you mean 5xx?', 7),
        at('spec.http[0].retries.retryOn[2]', 'reset is already used by retryOn[1]', 7),
        at('spec.http[0].retries.budget.percent', 'expected a percentage 0..100, got 120', 7),
      ],
    ],
    [
      'retries: too many attempts, codes that retryOn does not retry, retriable-status-codes without codes',
      route(
        `{ name: a, match: [{ method: GET }], ${TO_REVIEWS}, retries: { attempts: 11, retryOn: [5xx], retriableStatusCodes: [409, 99] } }`,
        `{ name: b, ${TO_REVIEWS}, retries: { attempts: 1, retryOn: [retriable-status-codes] } }`,
      ),
      [
        at('spec.http[0].retries.attempts', 'expected an integer 0..10 (retries after the first try), got 11', 7),
        at('spec.http[0].retries.retriableStatusCodes', 'are retried only when retryOn includes retriable-status-codes', 7),
        at('spec.http[0].retries.retriableStatusCodes[1]', 'expected an HTTP status code 100..599, got 99', 7),
        at('spec.http[1].retries.retriableStatusCodes', 'missing; retryOn includes retriable-status-codes, so list the codes', 8),
      ],
    ],
    [
      'retries: a try longer than the request, a backoff maximum below its base',
      route(`{ name: a, ${TO_REVIEWS}, timeout: 1s, retries: { attempts: 1, perTryTimeout: 2s, backoff: { base: 100ms, max: 10ms } } }`),
      [
        at('spec.http[0].retries.perTryTimeout', "expected a duration no longer than the rule's timeout: a try cannot outlast the request", 7),
        at('spec.http[0].retries.backoff.max', 'expected a duration at least as long as base', 7),
      ],
    ],
    [
      'a duration that failed is not compared as if it were milliseconds',
      route(`{ name: a, ${TO_REVIEWS}, timeout: 5, retries: { attempts: 1, perTryTimeout: 2s } }`),
      [at('spec.http[0].timeout', 'expected a duration from 1ms to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got 5 (add a unit: 5s or 5ms)', 7)],
    ],
    [
      'faults: empty, an abort with both statuses, a misspelt gRPC status, a success status, a delay without fixed',
      route(
        `{ name: a, match: [{ method: GET }], ${TO_REVIEWS}, fault: {} }`,
        `{ name: b, match: [{ method: PUT }], ${TO_REVIEWS}, fault: { abort: { status: 503, grpcStatus: UNAVAILABL } } }`,
        `{ name: c, ${TO_REVIEWS}, fault: { abort: { status: 200 }, delay: { percent: 5 } } }`,
      ),
      [
        at('spec.http[0].fault', 'expected at least one of delay, abort, got none of them', 7),
        at('spec.http[1].fault.abort.grpcStatus', 'cannot be used together with status: write exactly one of status, grpcStatus', 8),
        at(
          'spec.http[1].fault.abort.grpcStatus',
          'expected one of CANCELLED, UNKNOWN, INVALID_ARGUMENT, DEADLINE_EXCEEDED, NOT_FOUND, ALREADY_EXISTS, PERMISSION_DENIED, RESOURCE_EXHAUSTED, FAILED_PRECONDITION, ABORTED, OUT_OF_RANGE, UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS, UNAUTHENTICATED, got "UNAVAILABL"; did you mean UNAVAILABLE?',
          8,
        ),
        at('spec.http[2].fault.abort.status', 'expected an HTTP status code 400..599, got 200', 9),
        at('spec.http[2].fault.delay.fixed', 'missing; expected a duration from 1ms to 1h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s', 9),
      ],
    ],
    [
      'rules after one that matches every request',
      route(`{ name: a, match: [{ method: GET }], ${TO_REVIEWS} }`, `{ name: b, match: [{}], ${TO_REVIEWS} }`, `{ name: c, ${TO_REVIEWS} }`, `{ name: d, ${TO_REVIEWS} }`),
      [
        at('spec.http[2]', 'can never match: rule b (http[1]) before it matches every request', 9),
        at('spec.http[3]', 'can never match: rule b (http[1]) before it matches every request', 10),
      ],
    ],
    [
      'unknown fields in a rule, with did-you-mean',
      route(`{ name: a, destination: [{ service: r }], retires: { attempts: 1 }, priority: 1 }`),
      [
        at('spec.http[0]', 'expected destinations or redirect, got neither', 7),
        at('spec.http[0].destination', 'unknown field; did you mean destinations?', 7),
        at('spec.http[0].retires', 'unknown field; did you mean retries?', 7),
        at('spec.http[0].priority', 'unknown field', 7),
      ],
    ],
  ];

  it.each(cases)('%s', (_what, text, expected) => {
    expect(issues(text)).toEqual(expected);
  });

  it('reports the column of the value, and of the key for unknown and conflicting fields', () => {
    const text = doc('Route', `  hosts: [reviews]\n  http:\n    - name: a\n      destinations: [{ service: r }]\n      timeout: 5\n      redirect: { path: /x }\n`);
    const result = validateMeshConfigText(text, 'test.yaml');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors.map((issue) => [issue.path, issue.line, issue.column, issue.kind, issue.name])).toEqual([
      // the key: the field is there but may not be
      ['spec.http[0].timeout', 9, 7, 'Route', 'test'],
      // the value: it is not a duration
      ['spec.http[0].timeout', 9, 16, 'Route', 'test'],
      ['spec.http[0].redirect', 10, 7, 'Route', 'test'],
    ]);
  });

  it('reports every problem of several rules and documents at once', () => {
    const text = [
      route(`{ name: a, ${TO_REVIEWS}, timeout: soon, retries: { attempts: -1 } }`),
      doc('Route', '  hosts: []\n  http: [{ name: B, redirect: { code: 300 } }]\n', '{ name: other }'),
    ].join('---\n');
    expect(issues(text).map((issue) => issue.path)).toEqual([
      'spec.http[0].timeout',
      'spec.http[0].retries.attempts',
      'spec.hosts',
      'spec.http[0].name',
      'spec.http[0].redirect',
      'spec.http[0].redirect.code',
    ]);
  });
});

describe('Route: across documents', () => {
  it('routes a service from one Route only, naming the other document', () => {
    const text = [route(`{ name: a, ${TO_REVIEWS} }`), route(`{ name: a, ${TO_REVIEWS} }`).replace('{ name: reviews }', '{ name: second }')].join('---\n');
    expect(issues(text)).toEqual([
      at('spec.hosts[0]', 'service default/reviews is already routed by Route default/reviews (test.yaml, document 0); one Route per service', 13),
    ]);
  });

  it('sees that reviews and reviews.default are the same host', () => {
    const text = doc('Route', `  hosts: [reviews, reviews.default]\n  http: [{ name: a, ${TO_REVIEWS} }]\n`);
    expect(issues(text)).toEqual([at('spec.hosts[1]', 'service default/reviews is listed twice in hosts', 5)]);
  });
});
