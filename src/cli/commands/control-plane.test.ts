import { mkdtempSync, realpathSync, rmSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { PassThrough } from 'node:stream';
import { afterAll, afterEach, describe, expect, it } from 'vitest';
import { runCaptured } from '../../../test/support/api-fixtures.js';
import { serviceYaml } from '../../../test/support/control-plane.js';
import { runCli } from '../run-cli.js';
import { controlPlaneCommand } from './control-plane.js';

const scratch = realpathSync(mkdtempSync(path.join(tmpdir(), 'tracemesh-cp-cli-')));
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

interface Running {
  /** Resolves with the exit code. */
  exit: Promise<number>;
  stop(signal?: string): Promise<number>;
  stdout(): string;
  stderr(): string;
}

const running = new Set<Running>();
afterEach(async () => {
  for (const r of running) await r.stop();
  running.clear();
});

function start(argv: string[]): Running {
  const out = new PassThrough();
  const err = new PassThrough();
  let stdout = '';
  let stderr = '';
  out.on('data', (chunk: Buffer) => (stdout += chunk.toString('utf8')));
  err.on('data', (chunk: Buffer) => (stderr += chunk.toString('utf8')));
  let signal: (name: string) => void = () => undefined;
  const stopSignal = new Promise<string>((resolve) => (signal = resolve));
  const exit = runCli([controlPlaneCommand], ['control-plane', ...argv], { stdout: out, stderr: err, stopSignal });
  const r: Running = {
    exit,
    stop: (name = 'SIGTERM') => {
      signal(name);
      return exit;
    },
    stdout: () => stdout,
    stderr: () => stderr,
  };
  running.add(r);
  return r;
}

/** The ready line's URL, once it is printed (or the exit, if the command ends first). */
async function ready(r: Running): Promise<string> {
  const deadline = Date.now() + 10_000;
  let exited: number | undefined;
  void r.exit.then((code) => (exited = code));
  for (;;) {
    const match = /^tracemesh control-plane ready: (http:\/\/127\.0\.0\.1:\d+), /.exec(r.stdout());
    if (match !== null) return match[1] as string;
    if (exited !== undefined) throw new Error(`exited ${exited} before the ready line: ${r.stderr()}`);
    if (Date.now() > deadline) throw new Error(`no ready line within 10 s: ${r.stderr()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

async function applyService(url: string, name: string): Promise<void> {
  const answer = await fetch(`${url}/api/v1/config`, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ sources: [{ file: `${name}.yaml`, text: serviceYaml(name, 8080) }] }),
  });
  expect(answer.status).toBe(200);
}

async function refused(url: string): Promise<boolean> {
  return fetch(`${url}/ready`).then(
    () => false,
    () => true,
  );
}

describe('tracemesh control-plane', () => {
  it('prints one ready line, serves the API, keeps the config in --config-dir and stops on a signal with exit 0', async () => {
    const dir = path.join(scratch, 'config');
    const first = start(['--config-dir', dir, '--port', '0']);
    const url = await ready(first);
    expect(first.stdout()).toMatch(new RegExp(`^tracemesh control-plane ready: ${url}, config in directory ${dir} \\(revision 0, version [0-9a-f]{12}\\)\\n$`));
    await applyService(url, 'web');
    expect(await first.stop('SIGINT')).toBe(0);
    expect(first.stderr()).toMatch(/control-plane: SIGINT: closing the proxies' streams and stopping\n$/);
    expect(await refused(url)).toBe(true);

    // Started again on the same directory and port: the same configuration.
    const port = new URL(url).port;
    const second = start(['--config-dir', dir, '--port', port]);
    expect(await ready(second)).toBe(url);
    expect(second.stdout()).toMatch(/\(revision 1, version [0-9a-f]{12}\)/);
    const stored = (await (await fetch(`${url}/api/v1/config/service/default/web`)).json()) as { document: { metadata: { name: string } } };
    expect(stored.document.metadata.name).toBe('web');
    expect(await second.stop()).toBe(0);
  });

  it('keeps its configuration in ./.tracemesh/config by default', async () => {
    const cwd = process.cwd();
    process.chdir(scratch);
    try {
      const r = start(['--port', '0']);
      await ready(r);
      expect(r.stdout()).toContain(`config in directory ${path.join(scratch, '.tracemesh', 'config')} `);
      expect(await r.stop()).toBe(0);
    } finally {
      process.chdir(cwd);
    }
  });

  it('says the port is taken, exit 1, and leaves nothing running', async () => {
    const blocker = net.createServer();
    await new Promise<void>((resolve) => blocker.listen(0, '127.0.0.1', resolve));
    const port = (blocker.address() as net.AddressInfo).port;
    try {
      const result = await runCaptured([controlPlaneCommand], ['control-plane', '--config-dir', path.join(scratch, 'taken'), '--port', String(port)]);
      expect(result).toEqual({ code: 1, stdout: '', stderr: `tracemesh control-plane: cannot listen on 127.0.0.1:${port}: the address is in use (another control plane?)\n` });
    } finally {
      await new Promise<void>((resolve) => blocker.close(() => resolve()));
    }
  });

  it('says a config directory it cannot use is unusable, exit 1', async () => {
    const result = await runCaptured([controlPlaneCommand], ['control-plane', '--config-dir', '/proc/version/config', '--port', '0']);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tracemesh control-plane: the config directory \/proc\/version\/config cannot be used: /);
  });

  it.each([
    [['--config-dir', 'a', '--etcd', 'http://127.0.0.1:2379'], /^tracemesh control-plane: --config-dir and --etcd: give one/],
    [['--etcd', '127.0.0.1:2379'], /^tracemesh control-plane: --etcd: '127.0.0.1:2379' has no scheme/],
    [['--etcd-prefix', '/x/'], /^tracemesh control-plane: --etcd-prefix needs --etcd/],
    [['--port', 'x'], /^tracemesh control-plane: --port: 'x' is not a port/],
    [['--startup-grace', 'soon'], /^tracemesh control-plane: --startup-grace: 'soon' is not a duration/],
    [['--registry-ttl', '10ms'], /^tracemesh control-plane: --registry-ttl: '10ms' is shorter than the 1000 ms minimum/],
    [['--max-proxies', '0'], /^tracemesh control-plane: --max-proxies: '0' is not a whole number from 1 to 1000000/],
  ])('%j -> exit 2 with one line', async (argv, message) => {
    const result = await runCaptured([controlPlaneCommand], ['control-plane', ...argv]);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });
});
