import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../lib/errors.js';
import { emptyMeshConfig } from './kinds.js';
import { ConfigValidationError, formatConfigIssue, formatConfigIssues, loadMeshConfig, validateMeshConfigText } from './load.js';

const EXAMPLE = fileURLToPath(new URL('../../examples/config/services.yaml', import.meta.url));

/** Runs `fn`, returns what it threw (fails the test when it did not throw). */
async function thrown(fn: () => Promise<unknown>): Promise<unknown> {
  try {
    await fn();
  } catch (err) {
    return err;
  }
  throw new Error('expected an error, nothing was thrown');
}

describe('loadMeshConfig', () => {
  let dir = '';

  beforeEach(async () => {
    dir = await mkdtemp(join(tmpdir(), 'tm-config-load-'));
  });

  afterEach(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('loads a multi-document file to ServiceSpecs, defaults applied', async () => {
    const file = join(dir, 'mesh.yaml');
    await writeFile(
      file,
      [
        '# the shop',
        'apiVersion: tracemesh.dev/v1',
        'kind: Service',
        'metadata: { name: reviews, namespace: shop }',
        'spec:',
        '  ports:',
        '    - { name: http, port: 9080, protocol: http }',
        '    - { name: grpc, port: 9090, protocol: grpc }',
        '  vips: [10.96.0.20]',
        '  endpoints:',
        '    - { address: 127.0.0.1, port: 25006, labels: { version: v1 } }',
        '    - { address: 127.0.0.1, port: 25007, labels: { version: v2 } }',
        '---',
        'apiVersion: tracemesh.dev/v1',
        'kind: Service',
        'metadata:',
        '  name: echo',
        'spec:',
        '  ports: [{ name: tcp, port: 7000, protocol: tcp }]',
        '---',
        '',
      ].join('\n'),
    );
    expect(await loadMeshConfig([file])).toEqual({
      ...emptyMeshConfig(),
      services: [
        {
          name: 'reviews',
          namespace: 'shop',
          ports: [
            { name: 'http', port: 9080, protocol: 'http' },
            { name: 'grpc', port: 9090, protocol: 'grpc' },
          ],
          vips: ['10.96.0.20'],
          endpoints: [
            { address: '127.0.0.1', port: 25006, ports: {}, labels: { version: 'v1' } },
            { address: '127.0.0.1', port: 25007, ports: {}, labels: { version: 'v2' } },
          ],
        },
        { name: 'echo', namespace: 'default', ports: [{ name: 'tcp', port: 7000, protocol: 'tcp' }], vips: [], endpoints: [] },
      ],
    });
  });

  it('loads the example file', async () => {
    const config = await loadMeshConfig([EXAMPLE]);
    expect(config.services.map((s) => [s.name, s.ports.map((p) => p.protocol), s.endpoints.map((e) => e.address)])).toEqual([
      ['web', ['http'], ['127.0.0.1']],
      ['ratings', ['grpc'], ['127.0.0.1']],
      ['inventory', ['tcp'], ['127.0.0.1']],
    ]);
  });

  it('loads nothing from no paths', async () => {
    expect(await loadMeshConfig([])).toEqual(emptyMeshConfig());
  });

  it('throws TM_ERR_CONFIG_INVALID with every issue, one per line, and the structured issues', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      [
        'apiVersion: tracemesh.dev/v1',
        'kind: Service',
        'metadata: { name: reviews }',
        'spec:',
        '  ports:',
        '    - name: http',
        '      port: abc',
        '      protocol: http',
        '  endpoint: []',
        '',
      ].join('\n'),
    );
    const err = await thrown(() => loadMeshConfig([file]));
    expect(err).toBeInstanceOf(ConfigValidationError);
    expect(isTracemeshError(err, 'TM_ERR_CONFIG_INVALID')).toBe(true);
    const invalid = err as ConfigValidationError;
    expect(invalid.message).toBe(
      [
        'invalid mesh configuration (2 problems):',
        `${file}: document 0 (Service reviews): spec.ports[0].port: expected an integer 1..65535, got "abc" (line 7, column 13)`,
        `${file}: document 0 (Service reviews): spec.endpoint: unknown field; did you mean endpoints? (line 9, column 3)`,
      ].join('\n'),
    );
    expect(invalid.issues.map((issue) => issue.path)).toEqual(['spec.ports[0].port', 'spec.endpoint']);
  });

  it('reports a YAML syntax error with its line and column', async () => {
    const file = join(dir, 'syntax.yaml');
    await writeFile(file, 'apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: { name: a\nspec: {}\n');
    const err = (await thrown(() => loadMeshConfig([file]))) as ConfigValidationError;
    expect(err.issues.length).toBeGreaterThan(0);
    for (const issue of err.issues) {
      expect(issue).toMatchObject({ file, document: 0, path: '' });
      expect(issue.message).toMatch(/^YAML syntax error: /);
      expect(issue.line).toBeTypeOf('number');
      expect(issue.column).toBeTypeOf('number');
    }
    expect(err.message).toMatch(new RegExp(`^${file.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}: document 0: YAML syntax error: .* \\(line \\d+, column \\d+\\)$`, 'm'));
  });

  it('reports an empty file', async () => {
    const file = join(dir, 'empty.yaml');
    await writeFile(file, '');
    const err = (await thrown(() => loadMeshConfig([file]))) as ConfigValidationError;
    expect(err.message).toBe(
      `invalid mesh configuration (1 problem):\n${file}: contains no YAML documents (expected at least one with apiVersion, kind, metadata and spec)`,
    );
  });

  it('reports the problems of every file of a directory, each with its file name', async () => {
    await writeFile(
      join(dir, '20-ratings.yaml'),
      'apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: { name: ratings }\nspec: { ports: [{ name: grpc, port: 9090, protocol: grcp }] }\n',
    );
    await writeFile(
      join(dir, '10-web.yml'),
      'apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: { name: web }\nspec: { ports: [{ name: http, port: 99999, protocol: http }] }\n---\nkind: Gateway\n',
    );
    const err = (await thrown(() => loadMeshConfig([dir]))) as ConfigValidationError;
    const web = join(dir, '10-web.yml');
    const ratings = join(dir, '20-ratings.yaml');
    expect(err.issues.map((issue) => [issue.file, issue.document, issue.path])).toEqual([
      [web, 0, 'spec.ports[0].port'],
      [web, 1, 'apiVersion'],
      [web, 1, 'metadata'],
      [web, 1, 'kind'],
      [ratings, 0, 'spec.ports[0].protocol'],
    ]);
    expect(err.message).toContain(
      `${ratings}: document 0 (Service ratings): spec.ports[0].protocol: expected one of http, http2, grpc, tcp, got "grcp"; did you mean grpc? (line 4, column 53)`,
    );
    expect(err.message).toContain(`${web}: document 1 (Gateway): kind: expected one of Service, Route, DestinationPolicy, RateLimit, AuthorizationPolicy, PeerAuthentication, CircuitPolicy, got "Gateway" (line 6, column 7)`);
  });

  it('throws TM_ERR_CONFIG_READ for a path that cannot be read', async () => {
    const missing = join(dir, 'nope.yaml');
    const err = await thrown(() => loadMeshConfig([missing]));
    expect(isTracemeshError(err, 'TM_ERR_CONFIG_READ')).toBe(true);
    expect((err as Error).message).toBe(`cannot read config ${missing}: no such file or directory (ENOENT)`);
  });
});

describe('validateMeshConfigText', () => {
  it('validates a text without touching the file system', () => {
    const result = validateMeshConfigText(
      'apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: { name: a }\nspec: { ports: [{ name: t, port: 1, protocol: tcp }] }\n',
      '<stdin>',
    );
    expect(result).toEqual({ ok: true, config: { ...emptyMeshConfig(), services: [{ name: 'a', namespace: 'default', ports: [{ name: 't', port: 1, protocol: 'tcp' }], vips: [], endpoints: [] }] } });
    const bad = validateMeshConfigText('kind: Service\n', '<stdin>');
    expect(bad.ok).toBe(false);
    if (!bad.ok) expect(bad.errors.every((issue) => issue.file === '<stdin>')).toBe(true);
  });
});

describe('formatConfigIssue', () => {
  const base = { file: 'f.yaml', document: 2, kind: 'Service', name: 'reviews', path: 'spec.ports[0].port', message: 'expected an integer 1..65535, got "abc"' };

  it('writes the parts that are known', () => {
    expect(formatConfigIssue({ ...base, line: 7, column: 15 })).toBe(
      'f.yaml: document 2 (Service reviews): spec.ports[0].port: expected an integer 1..65535, got "abc" (line 7, column 15)',
    );
    expect(formatConfigIssue({ ...base, name: '' })).toBe('f.yaml: document 2 (Service): spec.ports[0].port: expected an integer 1..65535, got "abc"');
    expect(formatConfigIssue({ ...base, kind: '', name: '', path: '' })).toBe('f.yaml: document 2: expected an integer 1..65535, got "abc"');
    expect(formatConfigIssue({ ...base, document: null, kind: '', name: '', path: '', message: 'is empty' })).toBe('f.yaml: is empty');
  });

  it('joins issues one per line', () => {
    expect(formatConfigIssues([base, { ...base, document: 3 }]).split('\n')).toHaveLength(2);
    expect(formatConfigIssues([])).toBe('');
  });
});
