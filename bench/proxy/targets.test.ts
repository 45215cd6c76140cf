import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { httpGet } from './probe.js';
import { Processes } from './processes.js';
import { ProxyUnavailableError, deadProxy, startTarget } from './targets.js';
import type { TargetContext } from './targets.js';
import { findExecutable } from './tools.js';
import { BODY_BYTES, startUpstream } from './upstream.js';
import type { Upstream } from './upstream.js';

const haproxy = findExecutable('haproxy');
const nginx = findExecutable('nginx');

describe('startTarget', () => {
  const processes = new Processes();
  let upstream: Upstream;
  let dir: string;
  let ctx: TargetContext;

  beforeEach(async () => {
    upstream = await startUpstream();
    dir = mkdtempSync(path.join(tmpdir(), 'bench-proxy-targets-'));
    ctx = {
      processes,
      root: dir,
      proxyMain: path.join(dir, 'missing-main.js'),
      proxyArgs: ['--span-exporter', 'lean'],
      dir,
      proxyCore: 0,
      upstreamPort: upstream.port,
      sinkPort: undefined,
      haproxy,
      nginx,
      profileDir: undefined,
    };
  });

  afterEach(async () => {
    await processes.stopAll(1_000);
    await upstream.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it('direct: the upstream itself, no proxy to measure', async () => {
    const target = await startTarget(ctx, { name: 'direct', tracing: undefined });
    expect(target.port).toBe(upstream.port);
    expect(target.proxies).toEqual([]);
  });

  for (const [name, executable] of [
    ['haproxy', haproxy],
    ['nginx', nginx],
  ] as const) {
    it(`${name}: forwards to the upstream, and stops with nothing left running`, async () => {
      expect(executable, `${name} is not installed (apt-get install ${name}; .ci/run does)`).toBeDefined();
      const target = await startTarget(ctx, { name, tracing: undefined });
      const answer = await httpGet(target.port, target.hostHeader);
      expect(answer.status).toBe(200);
      expect(answer.bodyBytes).toBe(BODY_BYTES);
      expect(target.proxies.map((p) => p.name)).toEqual([name]);
      await target.stop();
      expect(target.proxies[0]!.process.exited).toBe(true);
      expect(deadProxy(target)).toMatch(new RegExp(`^${name} exited`));
    });
  }

  it('our proxy: "proxy not available" naming the missing build, instead of a crash', async () => {
    const error = await startTarget(ctx, { name: 'proxy1', tracing: false }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ProxyUnavailableError);
    expect(String(error)).toMatch(/proxy not available: .*missing-main\.js does not exist/);
  });

  it('our proxy: "proxy not available" with the command and its output when the CLI refuses', async () => {
    ctx.proxyMain = path.join(dir, 'main.js');
    writeFileSync(ctx.proxyMain, "console.error(`tracemesh: unknown command '${process.argv[2]}'`); process.exit(2);\n");
    const error = await startTarget(ctx, { name: 'proxy2', tracing: false }).catch((err: unknown) => err);
    expect(error).toBeInstanceOf(ProxyUnavailableError);
    expect(String(error)).toContain("tracemesh: unknown command 'proxy'");
    expect(String(error)).toContain('--collector none');
    expect(String(error)).toContain('--service bench-server');
    expect(String(error)).toContain('--host 127.0.0.1 --span-exporter lean');
  });

  it('our proxy with tracing needs the span sink', async () => {
    ctx.proxyMain = path.join(dir, 'main.js');
    writeFileSync(ctx.proxyMain, 'process.exit(2);\n');
    await expect(startTarget(ctx, { name: 'proxy1', tracing: true })).rejects.toThrow(/OTLP sink/);
  });
});
