import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, runCaptured } from '../../../test/support/api-fixtures.js';
import { serviceYaml, startTestControlPlane, type TestControlPlane } from '../../../test/support/control-plane.js';
import { createApplyCommand } from './apply.js';

const ROUTE = `apiVersion: tracemesh.dev/v1
kind: Route
metadata: { name: web }
spec:
  hosts: [web]
  http: [{ name: all, destinations: [{ service: web, port: 8080 }] }]
`;

let cp: TestControlPlane;
const files = mkdtempSync(path.join(tmpdir(), 'tracemesh-apply-test-'));

beforeAll(async () => {
  cp = await startTestControlPlane();
});

afterAll(async () => {
  await cp?.stop();
  rmSync(files, { recursive: true, force: true });
});

function file(name: string, text: string): string {
  const full = path.join(files, name);
  mkdirSync(path.dirname(full), { recursive: true });
  writeFileSync(full, text);
  return full;
}

function apply(argv: string[], stdinText = ''): ReturnType<typeof runCaptured> {
  const command = createApplyCommand(() => Readable.from([stdinText]));
  return runCaptured([command], ['apply', ...argv, '--control-plane', cp.url]);
}

async function storedRevision(): Promise<number> {
  return ((await (await fetch(`${cp.url}/api/v1/config`)).json()) as { revision: number }).revision;
}

describe('tracemesh apply', () => {
  it('creates, then reports unchanged documents and the revision', async () => {
    const web = file('web.yaml', serviceYaml('web', 8080));
    const first = await apply(['-f', web]);
    expect(first).toEqual({ code: 0, stderr: '', stdout: expect.stringMatching(/^Service default\/web created\napplied: revision \d+\n$/) });
    const revision = await storedRevision();
    expect(await apply(['-f', web])).toEqual({ code: 0, stderr: '', stdout: `Service default/web unchanged\nnothing changed: revision ${revision}\n` });
  });

  it('reads a directory\'s *.yaml and *.yml files in name order, skipping dot files and other files', async () => {
    const dir = path.join(files, 'set');
    file('set/b-route.yml', ROUTE);
    file('set/a-service.yaml', serviceYaml('web', 8080, '  vips: [10.96.0.9]\n'));
    file('set/.editor-lock.yaml', 'not: [valid');
    file('set/notes.txt', 'not yaml at all: [');
    const result = await apply(['-f', dir]);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    expect(result.stdout).toMatch(/^Route default\/web created\nService default\/web updated\napplied: revision \d+\n$/);
  });

  it('reads standard input for -f -', async () => {
    const result = await apply(['-f', '-'], serviceYaml('stdin-svc', 9000));
    expect(result).toEqual({ code: 0, stderr: '', stdout: expect.stringMatching(/^Service default\/stdin-svc created\napplied: revision \d+\n$/) });
  });

  it('prints every problem (file, document, field path, line) and applies nothing when the set is invalid', async () => {
    const before = await storedRevision();
    const bad = file('bad.yaml', `${serviceYaml('ok', 80)}---\n${serviceYaml('broken', 80).replace('protocol: http', 'protocol: smtp')}`);
    const also = file('also-bad.yaml', serviceYaml('second', 99999));
    const result = await apply(['-f', bad, '-f', also]);
    expect(result.code).toBe(1);
    expect(result.stdout).toBe('');
    expect(result.stderr.split('\n')).toEqual([
      'tracemesh apply: the control plane refused the configuration (2 problems); nothing was applied:',
      `  ${also}: document 0 (Service second): spec.ports[0].port: expected an integer 1..65535, got 99999 (line 5, column 31)`,
      `  ${bad}: document 1 (Service broken): spec.ports[0].protocol: expected one of http, http2, grpc, tcp, got "smtp" (line 11, column 45)`,
      '',
    ]);
    expect(await storedRevision()).toBe(before);
    const ok = await fetch(`${cp.url}/api/v1/config/Service/default/ok`);
    expect(ok.status).toBe(404);
  });

  it('refuses a change that breaks a stored document, naming the stored one', async () => {
    file('two.yaml', `${serviceYaml('web', 8080)}---\n${serviceYaml('other', 80)}`);
    expect((await apply(['-f', path.join(files, 'two.yaml')])).code).toBe(0);
    const renamed = file('rename.yaml', serviceYaml('web', 8080).replace('port: 8080', 'port: 8081'));
    const result = await apply(['-f', renamed]);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain('<stored configuration>: document');
    expect(result.stderr).toContain('(Route web)');
  });

  it('names every file it cannot read and sends nothing', async () => {
    const missing = path.join(files, 'missing.yaml');
    const empty = path.join(files, 'empty-dir');
    mkdirSync(empty, { recursive: true });
    const result = await apply(['-f', missing, '-f', empty]);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: `tracemesh apply: cannot read ${missing}: no such file or directory\n${empty} is a directory with no *.yaml or *.yml files\nnothing was applied\n`,
    });
  });

  it.each([
    [[], /^tracemesh apply: -f FILE\|DIR\|- is required/],
    [['-f', '-', '-f', '-'], /^tracemesh apply: -f -: standard input can be read once only/],
    [['-f', 'x.yaml', '--control-plane', 'ftp://x'], /^tracemesh apply: --control-plane: 'ftp:\/\/x' is not an http:\/\/ or https:\/\/ URL/],
  ])('%j -> exit 2 with one line', async (argv, message) => {
    const result = await runCaptured([createApplyCommand(() => Readable.from(['']))], ['apply', ...argv]);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('reports an unreachable control plane in one line, exit 1', async () => {
    const port = await closedPort();
    const web = file('web2.yaml', serviceYaml('web', 8080));
    const result = await runCaptured([createApplyCommand(() => Readable.from(['']))], ['apply', '-f', web, '--control-plane', `http://127.0.0.1:${port}`]);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: `tracemesh apply: cannot reach the control plane at http://127.0.0.1:${port}: connection refused (is \`tracemesh control-plane\` running?)\n`,
    });
  });
});
