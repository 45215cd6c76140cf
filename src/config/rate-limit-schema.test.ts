import { describe, expect, it } from 'vitest';
import { at, doc, issues, valid } from './schema.test-helper.js';
import type { BriefIssue } from './schema.test-helper.js';

const BUCKET = 'tokenBucket: { maxTokens: 10, fillInterval: 1s }';

/** The Route whose rules the limits name (rate limits may only name rules that exist). */
function routeWithRules(namespace: string, ...rules: string[]): string {
  const http = rules.map((rule, index) => `    - { name: ${rule}, match: [{ path: { exact: /${index} } }], destinations: [{ service: reviews }] }\n`).join('');
  return doc('Route', `  hosts: [reviews]\n  http:\n${http}`, `{ name: reviews, namespace: ${namespace} }`);
}

/** A RateLimit whose spec is `fields` (block content; line 5 onwards). */
function rateLimit(fields: string, name = 'test'): string {
  return doc('RateLimit', `${fields}\n`, `{ name: ${name} }`);
}

describe('RateLimit schema: valid documents', () => {
  it('parses a full example to the typed model', () => {
    const text = rateLimit(
      [
        '  target: { service: reviews.shop, routes: [api, canary] }',
        '  tokenBucket: { maxTokens: 100, tokensPerFill: 10, fillInterval: 250ms }',
        '  perSource: true',
        '  overrides:',
        '    - { source: web, tokenBucket: { maxTokens: 5, tokensPerFill: 5, fillInterval: 1m } }',
        '    - { source: batch.jobs, tokenBucket: { maxTokens: 1, fillInterval: 1h } }',
        '  statusCode: 503',
      ].join('\n'),
    ) + `---\n${routeWithRules('shop', 'api', 'canary')}`;
    expect(valid(text).rateLimits).toEqual([
      {
        name: 'test',
        namespace: 'default',
        service: { name: 'reviews', namespace: 'shop' },
        routes: ['api', 'canary'],
        bucket: { maxTokens: 100, tokensPerFill: 10, fillIntervalMs: 250 },
        perSource: true,
        overrides: [
          { source: { name: 'web', namespace: 'default' }, bucket: { maxTokens: 5, tokensPerFill: 5, fillIntervalMs: 60_000 } },
          { source: { name: 'batch', namespace: 'jobs' }, bucket: { maxTokens: 1, tokensPerFill: 1, fillIntervalMs: 3_600_000 } },
        ],
        statusCode: 503,
      },
    ]);
  });

  it('defaults to one shared bucket for every request, one token per fill, 429', () => {
    expect(valid(rateLimit(`  target: { service: reviews }\n  ${BUCKET}`)).rateLimits).toEqual([
      {
        name: 'test',
        namespace: 'default',
        service: { name: 'reviews', namespace: 'default' },
        routes: [],
        bucket: { maxTokens: 10, tokensPerFill: 1, fillIntervalMs: 1000 },
        perSource: false,
        overrides: [],
        statusCode: 429,
      },
    ]);
  });
});

describe('RateLimit schema: each rule names the field, says what was expected, and where', () => {
  const cases: Array<[string, string, BriefIssue[]]> = [
    [
      'no target, no bucket',
      rateLimit('  perSource: false'),
      [
        // Missing fields are placed at the key of their mapping.
        at('spec.target', 'missing; expected a target: a mapping with service and optionally routes', 4),
        at('spec.tokenBucket', 'missing; expected a token bucket: a mapping with maxTokens, fillInterval and optionally tokensPerFill', 4),
      ],
    ],
    [
      'an empty list of routes, a route twice, a bad route name',
      rateLimit(`  target: { service: reviews, routes: [] }\n  ${BUCKET}\n---\n${rateLimit(`  target: { service: reviews, routes: [a, a, B] }\n  ${BUCKET}`, 'other')}`),
      [
        at('spec.target.routes', 'expected a non-empty list of Route rule names, got an empty list', 5),
        at('spec.target.routes[1]', 'route a is already used by routes[0]', 12),
        at(
          'spec.target.routes[2]',
          "expected a DNS-1123 label (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit), got \"B\"; did you mean b?",
          12,
        ),
      ],
    ],
    [
      'a bucket that is empty, refills more than it holds, never refills, and a misspelt field',
      rateLimit('  target: { service: reviews }\n  tokenBucket: { maxTokens: 0, tokensPerFil: 2 }\n---\n' + rateLimit('  target: { service: r }\n  tokenBucket: { maxTokens: 5, tokensPerFill: 6, fillInterval: 1 }', 'b')),
      [
        at('spec.tokenBucket.fillInterval', 'missing; expected a duration from 1ms to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s', 6),
        at('spec.tokenBucket.maxTokens', 'expected an integer 1..1000000000, got 0', 6),
        at('spec.tokenBucket.tokensPerFil', 'unknown field; did you mean tokensPerFill?', 6),
        at('spec.tokenBucket.tokensPerFill', 'expected at most maxTokens (5): the bucket never holds more', 13),
        at('spec.tokenBucket.fillInterval', 'expected a duration from 1ms to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got 1 (add a unit: 1s or 1ms)', 13),
      ],
    ],
    [
      'perSource that is not true or false, a status that is not an error, an override twice and one without bucket',
      rateLimit(`  target: { service: reviews }\n  ${BUCKET}\n  perSource: yes\n  statusCode: 200\n  overrides: [{ source: web, ${BUCKET} }, { source: web, ${BUCKET} }, { source: api }]`),
      [
        at('spec.perSource', 'expected true or false, got "yes"', 7),
        at('spec.statusCode', 'expected an HTTP status code 400..599, got 200', 8),
        at('spec.overrides[1].source', 'source web is already used by overrides[0]', 9),
        at('spec.overrides[2].tokenBucket', 'missing; expected a token bucket: a mapping with maxTokens, fillInterval and optionally tokensPerFill', 9),
      ],
    ],
    [
      'a quoted number, a percent sign',
      rateLimit('  target: { service: reviews }\n  tokenBucket: { maxTokens: "10", fillInterval: 1s }\n  statusCode: "429%"'),
      [
        at('spec.tokenBucket.maxTokens', 'expected an integer 1..1000000000, got "10" (write it without quotes)', 6),
        at('spec.statusCode', 'expected an HTTP status code 400..599, got "429%" (write the number without %)', 7),
      ],
    ],
  ];

  it.each(cases)('%s', (_what, text, expected) => {
    expect(issues(text)).toEqual(expected);
  });
});

describe('RateLimit: across documents', () => {
  it('refuses two limits on the same requests, naming the other document', () => {
    const text = [
      rateLimit(`  target: { service: reviews }\n  ${BUCKET}`, 'a'),
      rateLimit(`  target: { service: reviews.default }\n  ${BUCKET}`, 'b'),
      rateLimit(`  target: { service: reviews, routes: [api] }\n  ${BUCKET}`, 'c'),
      rateLimit(`  target: { service: reviews, routes: [web, api] }\n  ${BUCKET}`, 'd'),
      routeWithRules('default', 'api', 'web'),
    ].join('---\n');
    expect(issues(text)).toEqual([
      at('spec.target.service', 'every request to default/reviews is already limited by RateLimit default/a (test.yaml, document 0)', 12),
      at('spec.target.routes[1]', 'route api of default/reviews is already limited by RateLimit default/c (test.yaml, document 2)', 26),
    ]);
  });
});
