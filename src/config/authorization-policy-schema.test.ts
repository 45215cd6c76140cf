import { describe, expect, it } from 'vitest';
import { at, doc, issues, valid } from './schema.test-helper.js';
import type { BriefIssue } from './schema.test-helper.js';

/** An AuthorizationPolicy whose spec is `fields` (block content from line 5). */
function authz(fields: string): string {
  return doc('AuthorizationPolicy', `${fields}\n`);
}

/** One rule (flow YAML) of an ALLOW policy for reviews; the rule is on line 7. */
function rule(text: string): string {
  return authz(`  selector: { service: reviews }\n  rules:\n    - ${text}`);
}

const PATTERN = "(or a pattern: *, a prefix followed by '*', or '*' followed by a suffix)";

describe('AuthorizationPolicy schema: valid documents', () => {
  it('parses a full example to the typed model', () => {
    const text = authz(
      [
        '  selector: { service: reviews.shop }',
        '  action: DENY',
        '  rules:',
        '    - from:',
        '        - principals: ["spiffe://cluster.local/ns/default/sa/web", "spiffe://cluster.local/ns/batch/*"]',
        '        - { namespaces: [default, "team-*"], services: ["*-gateway", web] }',
        '      to:',
        '        - { methods: [POST, "*"], paths: [/admin, "/api/*", "*.json"], ports: [9080] }',
        '      when:',
        '        - { header: X-Tenant, values: [acme, "beta-*"] }',
        '    - {}',
      ].join('\n'),
    );
    expect(valid(text).authorizationPolicies).toEqual([
      {
        name: 'test',
        namespace: 'default',
        selector: { name: 'reviews', namespace: 'shop' },
        action: 'DENY',
        rules: [
          {
            from: [
              { principals: ['spiffe://cluster.local/ns/default/sa/web', 'spiffe://cluster.local/ns/batch/*'], namespaces: [], services: [] },
              { principals: [], namespaces: ['default', 'team-*'], services: ['*-gateway', 'web'] },
            ],
            to: [{ methods: ['POST', '*'], paths: ['/admin', '/api/*', '*.json'], ports: [9080] }],
            when: [{ header: 'x-tenant', values: ['acme', 'beta-*'] }],
          },
          // A rule with nothing in it matches every request.
          { from: [], to: [], when: [] },
        ],
      },
    ]);
  });

  it('defaults to ALLOW with no rules (which allows nothing) for every service of the namespace', () => {
    expect(valid(authz('  {}')).authorizationPolicies).toEqual([{ name: 'test', namespace: 'default', selector: null, action: 'ALLOW', rules: [] }]);
  });

  it('lets several policies name one service: they combine', () => {
    const text = [authz('  selector: { service: reviews }'), doc('AuthorizationPolicy', '  selector: { service: reviews }\n  action: DENY\n', '{ name: b }')].join('---\n');
    expect(valid(text).authorizationPolicies.map((p) => p.action)).toEqual(['ALLOW', 'DENY']);
  });
});

describe('AuthorizationPolicy schema: each rule names the field, says what was expected, and where', () => {
  const cases: Array<[string, string, BriefIssue[]]> = [
    ['a lowercase action', authz('  action: allow'), [at('spec.action', 'expected one of ALLOW, DENY, AUDIT, got "allow"; did you mean ALLOW?', 5)]],
    [
      'a selector without service, a selector that is a string',
      [authz('  selector: {}'), doc('AuthorizationPolicy', '  selector: reviews\n', '{ name: b }')].join('---\n'),
      [
        at('spec.selector.service', 'missing; expected a service name (a DNS-1123 label, e.g. reviews), optionally with its namespace after a dot (reviews.shop)', 5),
        at('spec.selector', 'expected a selector: a mapping with service, got "reviews"', 11),
      ],
    ],
    [
      "principals: Istio's form without spiffe://, a * in the middle, an empty list",
      rule('{ from: [{ principals: ["cluster.local/ns/default/sa/web", "spiffe://a/*/sa/web"] }, { principals: [] }] }'),
      [
        at(
          'spec.rules[0].from[0].principals[0]',
          `expected a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service>) ${PATTERN}, got "cluster.local/ns/default/sa/web"; did you mean spiffe://cluster.local/ns/default/sa/web?`,
          7,
        ),
        at('spec.rules[0].from[0].principals[1]', `expected a SPIFFE ID (spiffe://<trust-domain>/ns/<namespace>/sa/<service>) ${PATTERN}, got "spiffe://a/*/sa/web"`, 7),
        at('spec.rules[0].from[1].principals', 'expected a non-empty list of SPIFFE IDs, got an empty list', 7),
      ],
    ],
    [
      'a source with nothing in it, bad namespace and service patterns',
      rule('{ from: [{}, { namespaces: [Default, "*"], services: ["web*api"] }] }'),
      [
        at('spec.rules[0].from[0]', 'expected at least one of principals, namespaces, services, got none of them', 7),
        at('spec.rules[0].from[1].namespaces[0]', `expected a namespace ${PATTERN}, got "Default"`, 7),
        at('spec.rules[0].from[1].services[0]', `expected a service name ${PATTERN}, got "web*api"`, 7),
      ],
    ],
    [
      'an operation with nothing in it, a lowercase method, a path without /, port 0',
      rule('{ to: [{}, { methods: [get], paths: ["api/*"], ports: [0] }] }'),
      [
        at('spec.rules[0].to[0]', 'expected at least one of methods, paths, ports, got none of them', 7),
        at('spec.rules[0].to[1].methods[0]', 'expected one of GET, HEAD, POST, PUT, DELETE, CONNECT, OPTIONS, TRACE, PATCH, *, got "get"; did you mean GET?', 7),
        at('spec.rules[0].to[1].paths[0]', `expected a path starting with / ${PATTERN}, got "api/*"`, 7),
        at('spec.rules[0].to[1].ports[0]', 'expected an integer 1..65535, got 0', 7),
      ],
    ],
    [
      'conditions: no values, a bad header name, a value with a line break, a misspelt field',
      rule('{ when: [{ header: x-a }, { header: "x a", values: ["a\\nb"] }, { header: x-b, value: [a] }] }'),
      [
        at('spec.rules[0].when[0].values', 'missing; expected a non-empty list of values', 7),
        at('spec.rules[0].when[1].header', "expected an HTTP header name (letters, digits and !#$%&'*+-.^_`|~), got \"x a\"; did you mean x-a?", 7),
        at('spec.rules[0].when[1].values[0]', `expected a header value without line breaks ${PATTERN}, got "a\\nb"`, 7),
        at('spec.rules[0].when[2].values', 'missing; expected a non-empty list of values', 7),
        at('spec.rules[0].when[2].value', 'unknown field; did you mean values?', 7),
      ],
    ],
    [
      'rules written as a mapping, from written as a mapping',
      [authz('  rules: { from: [] }'), doc('AuthorizationPolicy', '  rules: [{ from: { namespaces: [a] } }]\n', '{ name: b }')].join('---\n'),
      [
        at('spec.rules', 'expected a list of rules, got a mapping', 5),
        at('spec.rules[0].from', 'expected a list of sources (any one must match), got a mapping', 11),
      ],
    ],
  ];

  it.each(cases)('%s', (_what, text, expected) => {
    expect(issues(text)).toEqual(expected);
  });
});
