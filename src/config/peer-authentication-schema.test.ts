import { describe, expect, it } from 'vitest';
import { at, doc, issues, valid } from './schema.test-helper.js';
import type { BriefIssue } from './schema.test-helper.js';

/** A PeerAuthentication whose spec is `fields` (block content from line 5). */
function peer(fields: string, name = 'test'): string {
  return doc('PeerAuthentication', `${fields}\n`, `{ name: ${name} }`);
}

describe('PeerAuthentication schema: valid documents', () => {
  it('parses a service policy with port overrides, and a mesh-wide one', () => {
    const text = [
      peer('  selector: { service: reviews.shop }\n  mtls: { mode: STRICT }\n  portLevelMtls:\n    9091: { mode: PERMISSIVE }\n    15090: { mode: DISABLE }', 'reviews'),
      peer('  mtls: { mode: PERMISSIVE }', 'mesh'),
    ].join('---\n');
    expect(valid(text).peerAuthentications).toEqual([
      {
        name: 'reviews',
        namespace: 'default',
        selector: { name: 'reviews', namespace: 'shop' },
        mode: 'STRICT',
        portOverrides: [
          { port: 9091, mode: 'PERMISSIVE' },
          { port: 15090, mode: 'DISABLE' },
        ],
      },
      { name: 'mesh', namespace: 'default', selector: null, mode: 'PERMISSIVE', portOverrides: [] },
    ]);
  });
});

describe('PeerAuthentication schema: each rule names the field, says what was expected, and where', () => {
  const cases: Array<[string, string, BriefIssue[]]> = [
    ['no mtls', peer('  selector: { service: a }'), [at('spec.mtls', 'missing; expected a mapping with mode (STRICT, PERMISSIVE, DISABLE)', 4)]],
    ['a misspelt mode', peer('  mtls: { mode: Strict }'), [at('spec.mtls.mode', 'expected one of STRICT, PERMISSIVE, DISABLE, got "Strict"; did you mean STRICT?', 5)]],
    [
      'port overrides without a selector',
      peer('  mtls: { mode: STRICT }\n  portLevelMtls: { 9080: { mode: DISABLE } }'),
      [at('spec.portLevelMtls', 'needs a selector: ports belong to one service', 6)],
    ],
    [
      'port overrides keyed by a name and by a port out of range, and one that is not a mapping',
      peer('  selector: { service: a }\n  mtls: { mode: STRICT }\n  portLevelMtls: { http: { mode: DISABLE }, 70000: { mode: DISABLE }, 8080: DISABLE }'),
      [
        at('spec.portLevelMtls.http', 'expected a port number 1..65535, got "http"', 7),
        at('spec.portLevelMtls["70000"]', 'expected a port number 1..65535, got "70000"', 7),
        at('spec.portLevelMtls["8080"]', 'expected a mapping with mode (STRICT, PERMISSIVE, DISABLE), got "DISABLE"', 7),
      ],
    ],
  ];

  it.each(cases)('%s', (_what, text, expected) => {
    expect(issues(text)).toEqual(expected);
  });
});

describe('PeerAuthentication: across documents', () => {
  it('allows one mesh-wide policy and one per service, naming the other document', () => {
    const text = [
      peer('  mtls: { mode: STRICT }', 'a'),
      peer('  mtls: { mode: PERMISSIVE }', 'b'),
      peer('  selector: { service: reviews }\n  mtls: { mode: STRICT }', 'c'),
      peer('  selector: { service: reviews.default }\n  mtls: { mode: DISABLE }', 'd'),
    ].join('---\n');
    expect(issues(text)).toEqual([
      at('spec', 'the mesh already has PeerAuthentication default/a (test.yaml, document 0)', 11),
      at('spec.selector.service', 'service default/reviews already has PeerAuthentication default/c (test.yaml, document 2)', 24),
    ]);
  });
});
