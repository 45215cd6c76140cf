import { describe, expect, it } from 'vitest';
import type { ConfigIssue } from './issues.js';
import { parseYamlDocuments } from './yaml-documents.js';
import { validateDocuments } from './validate.js';
import { emptyMeshConfig } from './kinds.js';

const PORTS = 'spec: { ports: [{ name: http, port: 80, protocol: http }] }';

function service(name: string, extra = '', spec = PORTS): string {
  return `apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: { name: ${name}${extra} }\n${spec}\n`;
}

function validate(text: string, file = 'mesh.yaml') {
  const sources = parseYamlDocuments(text, file);
  return validateDocuments(sources.documents, sources.issues);
}

function errorsOf(text: string): ConfigIssue[] {
  const result = validate(text);
  if (result.ok) throw new Error('expected issues, got a valid config');
  return result.errors;
}

function brief(issues: ConfigIssue[]): Array<[number | null, string, string, string, string]> {
  return issues.map((issue) => [issue.document, issue.kind, issue.name, issue.path, issue.message]);
}

describe('validateDocuments: the envelope every document has', () => {
  it('accepts services in document order', () => {
    const result = validate([service('a'), service('b', ', namespace: shop')].join('---\n'));
    expect(result.ok).toBe(true);
    if (!result.ok) return;
    expect(result.config.services.map((s) => `${s.namespace}/${s.name}`)).toEqual(['default/a', 'shop/b']);
  });

  const cases: Array<[string, string, Array<[string, string]>]> = [
    ['a wrong apiVersion', service('a').replace('tracemesh.dev/v1', 'v1'), [['apiVersion', 'expected tracemesh.dev/v1, got "v1"']]],
    ['a missing apiVersion', service('a').replace('apiVersion: tracemesh.dev/v1\n', ''), [['apiVersion', 'missing; expected tracemesh.dev/v1']]],
    ['an unknown kind', service('a').replace('kind: Service', 'kind: Gateway'), [['kind', 'expected one of Service, Route, DestinationPolicy, RateLimit, AuthorizationPolicy, PeerAuthentication, CircuitPolicy, got "Gateway"']]],
    ['a misspelt kind', service('a').replace('kind: Service', 'kind: service'), [['kind', 'expected one of Service, Route, DestinationPolicy, RateLimit, AuthorizationPolicy, PeerAuthentication, CircuitPolicy, got "service"; did you mean Service?']]],
    ['a missing kind', service('a').replace('kind: Service\n', ''), [['kind', 'missing; expected one of Service, Route, DestinationPolicy, RateLimit, AuthorizationPolicy, PeerAuthentication, CircuitPolicy']]],
    ['a missing spec', service('a', '', ''), [['spec', 'missing; expected a mapping with ports and optionally vips and endpoints']]],
    [
      'a missing metadata',
      'apiVersion: tracemesh.dev/v1\nkind: Service\n' + PORTS + '\n',
      [['metadata', 'missing; expected a mapping with name and optionally namespace and labels']],
    ],
    [
      'a bad name and namespace',
      service('Reviews', ', namespace: -shop'),
      [
        [
          'metadata.name',
          "expected a DNS-1123 label (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit), got \"Reviews\"; did you mean reviews?",
        ],
        [
          'metadata.namespace',
          "expected a DNS-1123 label (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit), got \"-shop\"; did you mean shop?",
        ],
      ],
    ],
    [
      'a name longer than 63 characters',
      service('a'.repeat(64)),
      [
        [
          'metadata.name',
          `expected a DNS-1123 label (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit), got "${'a'.repeat(57)}..."; did you mean ${'a'.repeat(63)}?`,
        ],
      ],
    ],
    ['a missing name', service('a').replace('{ name: a }', '{ namespace: x }'), [['metadata.name', 'missing; expected ' + "a DNS-1123 label (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit)"]]],
    ['an unknown metadata field', service('a', ', namespce: shop'), [['metadata.namespce', 'unknown field; did you mean namespace?']]],
    ['an unknown top-level field', service('a') + 'status: {}\nspecs: {}\n', [['status', 'unknown field'], ['specs', 'unknown field; did you mean spec?']]],
    ['a document that is a list', '- a\n- b\n', [['', 'expected a mapping with apiVersion, kind, metadata and spec, got a list']]],
    ['a document that is a scalar', 'hello\n', [['', 'expected a mapping with apiVersion, kind, metadata and spec, got "hello"']]],
  ];

  it.each(cases)('%s', (_what, text, expected) => {
    expect(errorsOf(text).map((issue) => [issue.path, issue.message])).toEqual(expected);
  });

  it('names the document by kind and name in each issue, as far as the document says them', () => {
    const text = [service('a').replace('tracemesh.dev/v1', 'v2'), 'kind: Gateway\n', '- x\n'].join('---\n');
    expect(brief(errorsOf(text))).toEqual([
      [0, 'Service', 'a', 'apiVersion', 'expected tracemesh.dev/v1, got "v2"'],
      [1, 'Gateway', '', 'apiVersion', 'missing; expected tracemesh.dev/v1'],
      [1, 'Gateway', '', 'metadata', 'missing; expected a mapping with name and optionally namespace and labels'],
      [1, 'Gateway', '', 'kind', 'expected one of Service, Route, DestinationPolicy, RateLimit, AuthorizationPolicy, PeerAuthentication, CircuitPolicy, got "Gateway"'],
      [2, '', '', '', 'expected a mapping with apiVersion, kind, metadata and spec, got a list'],
    ]);
  });

  it('reports every problem of every document at once, in reading order', () => {
    const text = [
      service('a').replace('tracemesh.dev/v1', 'v1').replace('port: 80', 'port: -1'),
      service('B'),
      service('c', '', 'spec: { ports: [{ name: http, port: 80, protocol: udp }], vips: [x] }'),
    ].join('---\n');
    const errors = errorsOf(text);
    expect(errors.map((issue) => [issue.document, issue.path])).toEqual([
      [0, 'apiVersion'],
      [0, 'spec.ports[0].port'],
      [1, 'metadata.name'],
      [2, 'spec.ports[0].protocol'],
      [2, 'spec.vips[0]'],
    ]);
    // Positions are where the values are written.
    expect(errors.map((issue) => [issue.line, issue.column])).toEqual([
      [1, 13],
      [4, 37],
      [8, 19],
      [14, 51],
      [14, 66],
    ]);
  });

  it('is invalid when reading found problems, even with no document issues', () => {
    const readIssue: ConfigIssue = { file: 'x.yaml', document: null, kind: '', name: '', path: '', message: 'contains no YAML documents' };
    expect(validateDocuments([], [readIssue])).toEqual({ ok: false, errors: [readIssue] });
    expect(validateDocuments([])).toEqual({ ok: true, config: emptyMeshConfig() });
  });
});

describe('validateDocuments: across documents', () => {
  it('reports a kind, namespace and name defined twice, at the second definition', () => {
    const text = [service('a'), service('a', ', namespace: other'), service('a', ', namespace: default')].join('---\n');
    expect(brief(errorsOf(text))).toEqual([
      [2, 'Service', 'a', 'metadata.name', 'duplicate Service default/a: already defined in mesh.yaml, document 0'],
    ]);
  });

  it('finds duplicates across files', () => {
    const first = parseYamlDocuments(service('a'), 'one.yaml');
    const second = parseYamlDocuments(service('a'), 'two.yaml');
    const result = validateDocuments([...first.documents, ...second.documents]);
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      {
        file: 'two.yaml',
        document: 0,
        kind: 'Service',
        name: 'a',
        path: 'metadata.name',
        message: 'duplicate Service default/a: already defined in one.yaml, document 0',
        line: 3,
        column: 19,
      },
    ]);
  });

  it('reports a VIP claimed by two services, whatever the spelling of the address', () => {
    const spec = (vips: string) => `spec: { ports: [{ name: http, port: 80, protocol: http }], vips: [${vips}] }`;
    const text = [
      service('a', '', spec('10.0.0.1, "fd00::1"')),
      service('b', ', namespace: other', spec('10.0.0.2, 10.0.0.1')),
      service('c', '', spec('"FD00:0:0:0:0:0:0:1"')),
    ].join('---\n');
    expect(brief(errorsOf(text))).toEqual([
      [1, 'Service', 'b', 'spec.vips[1]', 'VIP 10.0.0.1 is already claimed by Service default/a (mesh.yaml, document 0)'],
      [2, 'Service', 'c', 'spec.vips[0]', 'VIP FD00:0:0:0:0:0:0:1 is already claimed by Service default/a (mesh.yaml, document 0)'],
    ]);
  });

  it('reports cross-document problems together with the documents own problems', () => {
    const text = [service('a'), service('a', '', 'spec: { ports: [{ name: http, port: 0, protocol: http }] }')].join('---\n');
    expect(brief(errorsOf(text)).map((issue) => issue[3])).toEqual(['metadata.name', 'spec.ports[0].port']);
  });
});
