import { describe, expect, it } from 'vitest';
import type { ConfigIssue } from './issues.js';
import type { ServiceSpec } from './types.js';
import { validateMeshConfigText } from './load.js';

/** One Service document with `spec` (YAML, indented by the caller as block content under `spec:`). */
function serviceDoc(spec: string, metadata = '{ name: reviews }'): string {
  return `apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: ${metadata}\nspec:\n${spec}`;
}

const PORTS = '  ports: [{ name: http, port: 9080, protocol: http }]\n';

function valid(text: string): ServiceSpec[] {
  const result = validateMeshConfigText(text, 'svc.yaml');
  if (!result.ok) throw new Error(`expected valid, got:\n${result.errors.map((e) => `${e.path}: ${e.message}`).join('\n')}`);
  return result.config.services;
}

function issues(text: string): Array<Pick<ConfigIssue, 'path' | 'message'>> {
  const result = validateMeshConfigText(text, 'svc.yaml');
  if (result.ok) throw new Error('expected issues, got a valid config');
  return result.errors.map((issue) => ({ path: issue.path, message: issue.message }));
}

describe('Service schema: valid documents', () => {
  it('applies the defaults: namespace, vips, endpoints, endpoint labels', () => {
    expect(valid(serviceDoc(PORTS))).toEqual([
      { name: 'reviews', namespace: 'default', ports: [{ name: 'http', port: 9080, protocol: 'http' }], vips: [], endpoints: [] },
    ]);
    expect(valid(serviceDoc(`${PORTS}  endpoints: [{ address: reviews-1.example, port: 80 }]\n`))[0]!.endpoints).toEqual([
      { address: 'reviews-1.example', port: 80, ports: {}, labels: {} },
    ]);
  });

  it('accepts every protocol, IPv4 and IPv6 VIPs and endpoints, and Kubernetes-style labels', () => {
    const spec = [
      '  ports:',
      '    - { name: http, port: 80, protocol: http }',
      '    - { name: h2, port: 81, protocol: http2 }',
      '    - { name: grpc, port: 82, protocol: grpc }',
      '    - { name: tcp, port: 65535, protocol: tcp }',
      '  vips: [10.96.0.20, "fd00::20"]',
      '  endpoints:',
      '    - { address: "::1", port: 1, labels: { version: v1, app.kubernetes.io/name: reviews, empty: "" } }',
      '',
    ].join('\n');
    const [service] = valid(serviceDoc(spec, '{ name: reviews, namespace: shop, labels: { team: a } }'));
    expect(service).toEqual({
      name: 'reviews',
      namespace: 'shop',
      ports: [
        { name: 'http', port: 80, protocol: 'http' },
        { name: 'h2', port: 81, protocol: 'http2' },
        { name: 'grpc', port: 82, protocol: 'grpc' },
        { name: 'tcp', port: 65535, protocol: 'tcp' },
      ],
      vips: ['10.96.0.20', 'fd00::20'],
      endpoints: [{ address: '::1', port: 1, ports: {}, labels: { version: 'v1', 'app.kubernetes.io/name': 'reviews', empty: '' } }],
    });
  });

  it('gives every ServiceSpec the same object shape (nothing passed through)', () => {
    const [service] = valid(serviceDoc(`${PORTS}  endpoints: [{ address: 127.0.0.1, port: 8080 }]\n`));
    expect(Object.keys(service!)).toEqual(['name', 'namespace', 'ports', 'vips', 'endpoints']);
    expect(Object.keys(service!.ports[0]!)).toEqual(['name', 'port', 'protocol']);
    expect(Object.keys(service!.endpoints[0]!)).toEqual(['address', 'port', 'ports', 'labels']);
  });
});

describe('Service schema: per-port endpoint targets', () => {
  const twoPorts = '  ports: [{ name: http, port: 9080, protocol: http }, { name: metrics, port: 9091, protocol: http }]\n';

  it('keeps an endpoint\'s target port per service port name', () => {
    const [service] = valid(serviceDoc(`${twoPorts}  endpoints: [{ address: 10.0.0.7, port: 25006, ports: { metrics: 25007 } }]\n`));
    expect(service!.endpoints).toEqual([{ address: '10.0.0.7', port: 25006, ports: { metrics: 25007 }, labels: {} }]);
  });

  it('refuses a target for a port the service does not have, naming the ports it has', () => {
    expect(issues(serviceDoc(`${twoPorts}  endpoints: [{ address: 10.0.0.7, port: 25006, ports: { metric: 25007 } }]\n`))).toEqual([
      { path: 'spec.endpoints[0].ports.metric', message: 'the service has no port named metric (its ports: http, metrics)' },
    ]);
  });

  it('refuses a target port out of range', () => {
    expect(issues(serviceDoc(`${twoPorts}  endpoints: [{ address: 10.0.0.7, port: 25006, ports: { http: 70000 } }]\n`))).toEqual([
      { path: 'spec.endpoints[0].ports.http', message: 'expected an integer 1..65535, got 70000' },
    ]);
  });
});

describe('Service schema: every kind of bad input names the field and says what was expected', () => {
  const cases: Array<[string, string, Array<{ path: string; message: string }>]> = [
    [
      'a port that is not a number',
      '  ports: [{ name: http, port: abc, protocol: http }]\n',
      [{ path: 'spec.ports[0].port', message: 'expected an integer 1..65535, got "abc"' }],
    ],
    [
      'a quoted port',
      '  ports: [{ name: http, port: "9080", protocol: http }]\n',
      [{ path: 'spec.ports[0].port', message: 'expected an integer 1..65535, got "9080" (write it without quotes)' }],
    ],
    [
      'ports out of range and fractional',
      '  ports:\n    - { name: a, port: 0, protocol: http }\n    - { name: b, port: 65536, protocol: http }\n    - { name: c, port: 80.5, protocol: http }\n',
      [
        { path: 'spec.ports[0].port', message: 'expected an integer 1..65535, got 0' },
        { path: 'spec.ports[1].port', message: 'expected an integer 1..65535, got 65536' },
        { path: 'spec.ports[2].port', message: 'expected an integer 1..65535, got 80.5' },
      ],
    ],
    [
      'an unknown protocol, with a suggestion',
      '  ports: [{ name: http, port: 80, protocol: HTTP }, { name: g, port: 81, protocol: gprc }, { name: u, port: 82, protocol: udp }]\n',
      [
        { path: 'spec.ports[0].protocol', message: 'expected one of http, http2, grpc, tcp, got "HTTP"; did you mean http?' },
        { path: 'spec.ports[1].protocol', message: 'expected one of http, http2, grpc, tcp, got "gprc"; did you mean grpc?' },
        { path: 'spec.ports[2].protocol', message: 'expected one of http, http2, grpc, tcp, got "udp"' },
      ],
    ],
    [
      'a port without protocol',
      '  ports: [{ name: http, port: 80 }]\n',
      [{ path: 'spec.ports[0].protocol', message: 'missing; expected one of http, http2, grpc, tcp' }],
    ],
    [
      'a bad port name',
      '  ports: [{ name: HTTP_1, port: 80, protocol: http }]\n',
      [
        {
          path: 'spec.ports[0].name',
          message:
            "expected a DNS-1123 label (1 to 63 lowercase letters, digits and '-', starting and ending with a letter or digit), got \"HTTP_1\"; did you mean http-1?",
        },
      ],
    ],
    [
      'duplicate port numbers and names',
      '  ports:\n    - { name: http, port: 80, protocol: http }\n    - { name: http, port: 80, protocol: http2 }\n',
      [
        { path: 'spec.ports[1].name', message: 'name http is already used by ports[0]' },
        { path: 'spec.ports[1].port', message: 'port 80 is already used by ports[0]' },
      ],
    ],
    ['an empty ports list', '  ports: []\n', [{ path: 'spec.ports', message: 'expected at least one port, got an empty list' }]],
    ['no ports', '  vips: []\n', [{ path: 'spec.ports', message: 'missing; expected a non-empty list of ports' }]],
    ['ports as a mapping', '  ports: { http: 80 }\n', [{ path: 'spec.ports', message: 'expected a non-empty list of ports, got a mapping' }]],
    [
      'a port that is not a mapping',
      '  ports: [80]\n',
      [{ path: 'spec.ports[0]', message: 'expected a port: a mapping with name, port and protocol, got 80' }],
    ],
    [
      'unknown fields, with did-you-mean and without',
      `${PORTS}  endpoint: []\n  replicas: 3\n`,
      [
        { path: 'spec.endpoint', message: 'unknown field; did you mean endpoints?' },
        { path: 'spec.replicas', message: 'unknown field' },
      ],
    ],
    [
      'an unknown field in a port',
      '  ports: [{ name: http, port: 80, protocl: http, protocol: http }]\n',
      [{ path: 'spec.ports[0].protocl', message: 'unknown field; did you mean protocol?' }],
    ],
    [
      'bad VIPs',
      `${PORTS}  vips: [10.96.0, "[fd00::1]", 1.5, 10.0.0.1, 10.0.0.1, "::1", "0:0:0:0:0:0:0:1"]\n`,
      [
        { path: 'spec.vips[0]', message: 'expected an IPv4 or IPv6 address, got "10.96.0"' },
        { path: 'spec.vips[1]', message: 'expected an IPv4 or IPv6 address, got "[fd00::1]"; did you mean fd00::1?' },
        { path: 'spec.vips[2]', message: 'expected an IPv4 or IPv6 address, got 1.5 (quote it to make it a string: "1.5")' },
        { path: 'spec.vips[4]', message: 'VIP 10.0.0.1 is already used by vips[3]' },
        { path: 'spec.vips[6]', message: 'VIP ::1 is already used by vips[5]' },
      ],
    ],
    ['VIPs that are not a list', `${PORTS}  vips: 10.0.0.1\n`, [{ path: 'spec.vips', message: 'expected a list of IP addresses, got "10.0.0.1"' }]],
    [
      'bad endpoints',
      `${PORTS}  endpoints:\n    - { address: "not a host", port: 70000 }\n    - { port: 80 }\n    - { address: 127.0.0.1, port: 80, labels: [v1] }\n    - { address: 127.0.0.1, port: 80 }\n`,
      [
        { path: 'spec.endpoints[0].address', message: 'expected an IPv4 or IPv6 address or a host name, got "not a host"' },
        { path: 'spec.endpoints[0].port', message: 'expected an integer 1..65535, got 70000' },
        { path: 'spec.endpoints[1].address', message: 'missing; expected an IPv4 or IPv6 address or a host name' },
        { path: 'spec.endpoints[2].labels', message: 'expected a mapping of label names to values, got a list' },
        { path: 'spec.endpoints[3]', message: 'endpoint 127.0.0.1 port 80 is already used by endpoints[2]' },
      ],
    ],
    [
      'bad labels: a number as value, a bad key',
      `${PORTS}  endpoints: [{ address: 127.0.0.1, port: 80, labels: { version: 1, "bad key": x, ok: "has space" } }]\n`,
      [
        {
          path: 'spec.endpoints[0].labels.version',
          message:
            "expected a label value (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit), got 1 (quote it to make it a string: \"1\")",
        },
        {
          path: 'spec.endpoints[0].labels["bad key"]',
          message:
            "expected a label key (1 to 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit, optionally after a DNS prefix and '/'), got \"bad key\"",
        },
        {
          path: 'spec.endpoints[0].labels.ok',
          message: "expected a label value (at most 63 letters, digits, '-', '_' and '.', starting and ending with a letter or digit), got \"has space\"",
        },
      ],
    ],
    ['spec that is a list', '  - ports\n', [{ path: 'spec', message: 'expected a mapping with ports and optionally vips and endpoints, got a list' }]],
  ];

  it.each(cases)('%s', (_what, spec, expected) => {
    expect(issues(serviceDoc(spec))).toEqual(expected);
  });

  it('reports the line and column of the offending value, and of the key for unknown fields', () => {
    const text = serviceDoc('  ports:\n    - name: http\n      port: abc\n      protocol: http\n  endpoint: []\n');
    const result = validateMeshConfigText(text, 'svc.yaml');
    expect(result.ok).toBe(false);
    if (result.ok) return;
    expect(result.errors).toEqual([
      {
        file: 'svc.yaml',
        document: 0,
        kind: 'Service',
        name: 'reviews',
        path: 'spec.ports[0].port',
        message: 'expected an integer 1..65535, got "abc"',
        line: 7,
        column: 13,
      },
      { file: 'svc.yaml', document: 0, kind: 'Service', name: 'reviews', path: 'spec.endpoint', message: 'unknown field; did you mean endpoints?', line: 9, column: 3 },
    ]);
  });
});
