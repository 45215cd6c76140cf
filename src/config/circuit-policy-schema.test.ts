import { describe, expect, it } from 'vitest';
import { at, doc, issues, valid } from './schema.test-helper.js';
import type { BriefIssue } from './schema.test-helper.js';

/** A CircuitPolicy whose spec is `fields` (block content from line 5). */
function circuit(fields: string, name = 'test'): string {
  return doc('CircuitPolicy', `${fields}\n`, `{ name: ${name} }`);
}

const POLICY_V2 = doc('DestinationPolicy', '  host: reviews\n  subsets: [{ name: v2, labels: { version: v2 } }]\n', '{ name: reviews }');

describe('CircuitPolicy schema: valid documents', () => {
  it('parses a full example to the typed model', () => {
    const text = [
      circuit(
        [
          '  target: { service: reviews, subset: v2 }',
          '  scope: endpoint',
          '  window: 2m',
          '  minRequests: 50',
          '  errorRatePercent: 12.5',
          '  latency: { quantile: p90, thresholdMs: 300 }',
          '  openFor: 45s',
          '  halfOpenRequests: 3',
          '  mode: enforce',
        ].join('\n'),
      ),
      POLICY_V2,
    ].join('---\n');
    expect(valid(text).circuitPolicies).toEqual([
      {
        name: 'test',
        namespace: 'default',
        target: { name: 'reviews', namespace: 'default' },
        subset: 'v2',
        scope: 'endpoint',
        windowMs: 120_000,
        minRequests: 50,
        errorRatePercent: 12.5,
        latency: { quantile: 'p90', thresholdMs: 300 },
        openForMs: 45_000,
        halfOpenRequests: 3,
        mode: 'enforce',
      },
    ]);
  });

  it('defaults to one circuit for the destination, a one-minute window, and recommending only', () => {
    expect(valid(circuit('  target: { service: reviews.shop }\n  errorRatePercent: 50')).circuitPolicies).toEqual([
      {
        name: 'test',
        namespace: 'default',
        target: { name: 'reviews', namespace: 'shop' },
        subset: null,
        scope: 'destination',
        windowMs: 60_000,
        minRequests: 20,
        errorRatePercent: 50,
        latency: null,
        openForMs: 30_000,
        halfOpenRequests: 1,
        mode: 'recommend',
      },
    ]);
  });
});

describe('CircuitPolicy schema: each rule names the field, says what was expected, and where', () => {
  const cases: Array<[string, string, BriefIssue[]]> = [
    [
      'no threshold at all, no target',
      circuit('  window: 1m'),
      [
        at('spec.target', 'missing; expected a target: a mapping with service and optionally subset', 4),
        at('spec', 'expected at least one of errorRatePercent, latency, got none of them', 5),
      ],
    ],
    [
      'an error rate of 0 and over 100',
      [circuit('  target: { service: a }\n  errorRatePercent: 0', 'a'), circuit('  target: { service: a }\n  errorRatePercent: 101', 'b')].join('---\n'),
      [
        at('spec.errorRatePercent', 'expected a percentage above 0, at most 100, got 0', 6),
        at('spec.errorRatePercent', 'expected a percentage above 0, at most 100, got 101', 13),
      ],
    ],
    [
      'a quantile we do not aggregate, a threshold of 0, a latency as a duration',
      circuit('  target: { service: a }\n  latency: { quantile: p95, thresholdMs: 0, threshold: 1s }'),
      [
        at('spec.latency.quantile', 'expected one of p50, p90, p99, got "p95"; did you mean p90?', 6),
        at('spec.latency.thresholdMs', 'expected a whole number of milliseconds 1..3600000, got 0', 6),
        at('spec.latency.threshold', 'unknown field; did you mean thresholdMs?', 6),
      ],
    ],
    [
      'a window too short to hold evidence, a bad openFor, no trial requests, misspelt mode and scope',
      circuit('  target: { service: a }\n  errorRatePercent: 5\n  window: 1s\n  openFor: forever\n  halfOpenRequests: 0\n  mode: enforcing\n  scope: endpoints'),
      [
        at('spec.window', 'expected a duration from 10s to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got "1s"', 7),
        at('spec.openFor', 'expected a duration from 1s to 24h, written as a whole number and a unit (ms, s, m, h) like 250ms or 2s, got "forever"', 8),
        at('spec.halfOpenRequests', 'expected an integer 1..1000, got 0', 9),
        at('spec.mode', 'expected one of enforce, recommend, got "enforcing"; did you mean enforce?', 10),
        at('spec.scope', 'expected one of destination, endpoint, got "endpoints"; did you mean endpoint?', 11),
      ],
    ],
  ];

  it.each(cases)('%s', (_what, text, expected) => {
    expect(issues(text)).toEqual(expected);
  });
});

describe('CircuitPolicy: across documents', () => {
  it('allows one policy per set of circuits, naming the other document', () => {
    const text = [
      circuit('  target: { service: reviews }\n  errorRatePercent: 50', 'a'),
      circuit('  target: { service: reviews }\n  scope: endpoint\n  errorRatePercent: 50', 'b'),
      circuit('  target: { service: reviews.default }\n  errorRatePercent: 20', 'c'),
    ].join('---\n');
    expect(issues(text)).toEqual([
      at('spec.target', 'service default/reviews already has CircuitPolicy default/a (test.yaml, document 0)', 20),
    ]);
  });
});
