/**
 * The three demo apps as real processes, each with its own sdk-node (the SDK
 * is per process: global providers, patched modules), exporting to a real
 * collector; one request to web must come out as one trace.
 *
 * How the children run: beforeAll compiles the apps' TypeScript (the entry
 * files and what they import, nothing else) with the TypeScript compiler API
 * into a fresh temp dir holding a `{"type":"module"}` package.json and a
 * node_modules symlink to the repo's, then spawns `node <dir>/src/demo/apps/<app>.js`.
 * That runs exactly the JavaScript `npm run build` would ship, never a stale
 * dist/, needs no loader (tsx is not installed; Node 20 cannot strip types),
 * and does not touch dist/ under other engineers' feet.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSpan } from '../../collector/api/span-json.js';
import { ratingFor, stockFor } from '../../src/demo/apps/catalog.js';
import { startConnectProxy } from '../../src/demo/apps/connect-proxy.test-helper.js';
import { parseReadyLine } from '../../src/demo/apps/lifecycle.js';
import { eventually, getJson, startCollector } from '../support/collector-harness.js';
import type { RunningCollector } from '../support/collector-harness.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
type AppName = 'web' | 'ratings' | 'inventory';
const APPS: readonly AppName[] = ['web', 'ratings', 'inventory'];
const READY_TIMEOUT_MS = 20_000;
const KILL_AFTER_MS = 10_000;
const GRPC_METHOD_SPAN = 'grpc.tracemesh.demo.Ratings/GetRating';

/** Compiles the app entry files (and their imports) to `<dir>/src/...`; throws with the diagnostics if emit fails. */
function compileDemoApps(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-demo-apps-'));
  const configPath = path.join(REPO, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, REPO, undefined, configPath);
  const program = ts.createProgram(
    APPS.map((app) => path.join(REPO, 'src/demo/apps', `${app}.ts`)),
    { ...parsed.options, outDir: dir, rootDir: REPO, noEmit: false, sourceMap: false, incremental: false },
  );
  const result = program.emit();
  if (result.emitSkipped) {
    rmSync(dir, { recursive: true, force: true });
    const text = ts.formatDiagnostics(result.diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => REPO,
      getNewLine: () => '\n',
    });
    throw new Error(`compiling the demo apps failed:\n${text}`);
  }
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

interface AppProcess {
  app: AppName;
  port: number;
  child: ChildProcess;
  /** What the child printed so far (bounded), for failure messages. */
  output(): string;
}

const children = new Set<ChildProcess>();
/** If the test process dies without afterAll, no child outlives it. */
const killChildren = (): void => {
  for (const child of children) child.kill('SIGKILL');
};

const MAX_OUTPUT_CHARS = 20_000;

/** Spawns an app and resolves once it printed its ready line, with the port it listens on. */
async function spawnApp(buildDir: string, app: AppName, args: string[], env: Record<string, string> = {}): Promise<AppProcess> {
  const child = spawn(process.execPath, [path.join(buildDir, 'src/demo/apps', `${app}.js`), '--port', '0', ...args], {
    // A clean environment: no http_proxy, OTEL_* or NODE_OPTIONS from the test runner.
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const append = (text: string): void => {
    output = (output + text).slice(-MAX_OUTPUT_CHARS);
  };
  child.stderr?.on('data', (chunk: Buffer) => append(chunk.toString('utf8')));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${app} printed no ready line within ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
    const onExit = (code: number | null, signal: string | null): void => {
      clearTimeout(timer);
      reject(new Error(`${app} exited (${code ?? signal ?? '?'}) before it was ready:\n${output}`));
    };
    child.once('exit', onExit);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      append(`${line}\n`);
      const ready = parseReadyLine(line);
      if (ready?.app !== app) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(ready.port);
    });
  });
  return { app, port, child, output: () => output };
}

/** SIGTERM, then SIGKILL if it is still there after KILL_AFTER_MS; resolves with how it ended. */
async function stopApp(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
  const result = await exited;
  clearTimeout(killer);
  return result;
}

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
}

/** Polls the trace until `complete` accepts its spans; on timeout the message lists the spans seen. */
async function waitForTrace(apiUrl: string, traceId: string, complete: (spans: ApiSpan[]) => boolean): Promise<ApiSpan[]> {
  let seen: ApiSpan[] = [];
  try {
    return await eventually(async () => {
      const { status, body } = await getJson<{ spans: ApiSpan[] }>(`${apiUrl}/api/v1/traces/${traceId}`);
      if (status !== 200) return undefined;
      seen = body.spans;
      return complete(seen) ? seen : undefined;
    }, `trace ${traceId}`);
  } catch (err) {
    const listing = seen.map((s) => `${s.serviceName} ${s.kind} ${s.name} ${s.spanId}<-${s.parentSpanId}`).join('\n  ');
    throw new Error(`${String(err)}; spans seen:\n  ${listing}`);
  }
}

function findSpan(spans: ApiSpan[], serviceName: string, kind: string, name: string): ApiSpan {
  const matches = spans.filter((s) => s.serviceName === serviceName && s.kind === kind && s.name === name);
  expect(matches, `${serviceName} ${kind} ${name}`).toHaveLength(1);
  return matches[0]!;
}

let collector: RunningCollector;
let buildDir: string;
let web: AppProcess;
let ratings: AppProcess;
let inventory: AppProcess;

beforeAll(async () => {
  process.on('exit', killChildren);
  buildDir = compileDemoApps();
  collector = await startCollector();
  const common = ['--collector', collector.grpcUrl, '--export-delay-ms', '100'];
  [ratings, inventory] = await Promise.all([spawnApp(buildDir, 'ratings', common), spawnApp(buildDir, 'inventory', common)]);
  web = await spawnApp(buildDir, 'web', [
    ...common,
    '--ratings',
    `127.0.0.1:${ratings.port}`,
    '--inventory',
    `127.0.0.1:${inventory.port}`,
  ]);
});

afterAll(async () => {
  await Promise.all([...children].map((child) => stopApp(child)));
  process.off('exit', killChildren);
  await collector?.stop();
  if (buildDir !== undefined) rmSync(buildDir, { recursive: true, force: true });
});

describe('demo apps as instrumented processes', () => {
  it('one GET /product/42 on web gives one trace: web, its gRPC and TCP client spans, ratings and inventory', async () => {
    const res = await fetch(`http://127.0.0.1:${web.port}/product/42`);
    const figures = ratingFor('42');
    expect({ status: res.status, body: await res.json() }).toEqual({
      status: 200,
      body: { productId: '42', rating: { stars: figures.stars, count: figures.count }, stock: stockFor('42') },
    });

    // Found the way a user would: the newest trace rooted at web.
    const traceId = await eventually(async () => {
      const { body } = await getJson<{ traces: Array<{ traceId: string; rootService: string }> }>(
        `${collector.apiUrl}/api/v1/traces?service=web`,
      );
      return body.traces.find((t) => t.rootService === 'web')?.traceId;
    }, 'a trace of service web');
    const spans = await waitForTrace(collector.apiUrl, traceId, (s) => s.length >= 5);

    const webServer = findSpan(spans, 'web', 'Server', 'GET /product/:id');
    const grpcClient = findSpan(spans, 'web', 'Client', GRPC_METHOD_SPAN);
    const ratingsServer = findSpan(spans, 'ratings', 'Server', GRPC_METHOD_SPAN);
    const stockClient = findSpan(spans, 'web', 'Client', 'STOCK');
    const stockServer = findSpan(spans, 'inventory', 'Server', 'STOCK');
    expect(spans).toHaveLength(5);
    expect(new Set(spans.map((s) => s.traceId))).toEqual(new Set([traceId]));

    expect(webServer.parentSpanId).toBe('');
    expect(webServer.attributes['http.route']).toBe('/product/:id');
    expect(grpcClient.parentSpanId).toBe(webServer.spanId);
    expect(ratingsServer.parentSpanId).toBe(grpcClient.spanId);
    expect(ratingsServer.attributes['rpc.service']).toBe('tracemesh.demo.Ratings');
    expect(ratingsServer.attributes['demo.product_id']).toBe('42');
    expect(stockClient.parentSpanId).toBe(webServer.spanId);
    expect(stockServer.parentSpanId).toBe(stockClient.spanId);
    for (const span of [stockClient, stockServer]) expect(span.attributes['network.transport']).toBe('tcp');
    expect(stockServer.attributes['demo.stock_units']).toBe(stockFor('42'));
    expect(stockServer.attributes['server.port']).toBe(inventory.port);
    expect(ratingsServer.resourceAttributes['service.name']).toBe('ratings');
  });

  it("continues the caller's traceparent, as web behind a proxy will see it", async () => {
    const traceId = randomHex(16);
    const callerSpanId = randomHex(8);
    const res = await fetch(`http://127.0.0.1:${web.port}/product/sku-9`, {
      headers: { traceparent: `00-${traceId}-${callerSpanId}-01` },
    });
    expect(res.status).toBe(200);
    await res.arrayBuffer();
    const spans = await waitForTrace(collector.apiUrl, traceId, (s) => s.length >= 5);
    expect(findSpan(spans, 'web', 'Server', 'GET /product/:id').parentSpanId).toBe(callerSpanId);
    findSpan(spans, 'ratings', 'Server', GRPC_METHOD_SPAN);
    findSpan(spans, 'inventory', 'Server', 'STOCK');
  });

  it('behind an explicit proxy: CONNECT tunnels for gRPC and TCP, and still exactly the five app spans', async () => {
    // A stand-in for the mesh proxy's outbound listener: it knows the service names, the app does not resolve them.
    const proxy = await startConnectProxy(
      new Map([
        ['ratings:50051', ratings.port],
        ['inventory:7070', inventory.port],
      ]),
    );
    try {
      const proxied = await spawnApp(buildDir, 'web', [
        '--collector',
        collector.grpcUrl,
        '--export-delay-ms',
        '100',
        '--service-name',
        'web-proxied',
        '--ratings',
        'ratings:50051',
        '--inventory',
        'inventory:7070',
        '--proxy',
        proxy.url,
      ]);
      const res = await fetch(`http://127.0.0.1:${proxied.port}/product/7`);
      expect(res.status, proxied.output()).toBe(200);
      await res.arrayBuffer();
      expect([...proxy.targets].sort()).toEqual(['inventory:7070', 'ratings:50051']);
      // Stopping flushes every span the process made, the trace's and any stray one.
      expect(await stopApp(proxied.child), proxied.output()).toEqual({ code: 0, signal: null });
      const traceId = await eventually(async () => {
        const { body } = await getJson<{ traces: Array<{ traceId: string }> }>(`${collector.apiUrl}/api/v1/traces?service=web-proxied`);
        return body.traces[0]?.traceId;
      }, 'a trace of service web-proxied');
      const spans = await waitForTrace(collector.apiUrl, traceId, (s) => s.length >= 5);
      expect(spans.map((s) => `${s.serviceName} ${s.kind} ${s.name}`).sort()).toEqual([
        `inventory Server STOCK`,
        `ratings Server ${GRPC_METHOD_SPAN}`,
        'web-proxied Client STOCK',
        `web-proxied Client ${GRPC_METHOD_SPAN}`,
        'web-proxied Server GET /product/:id',
      ]);
      const grpcClient = findSpan(spans, 'web-proxied', 'Client', GRPC_METHOD_SPAN);
      expect(findSpan(spans, 'ratings', 'Server', GRPC_METHOD_SPAN).parentSpanId).toBe(grpcClient.spanId);
      // grpc-js opens its tunnel with http.request CONNECT. Unless the HTTP instrumentation ignores it,
      // it starts a client span that never ends (the answer comes as 'connect', not 'response') and puts
      // that span's traceparent on the CONNECT, where the mesh proxy would take it for a real parent.
      expect(proxy.headers.map((h) => h['traceparent'])).toEqual([undefined, undefined]);
      const { body } = await getJson<{ traces: Array<{ traceId: string; rootName: string }> }>(
        `${collector.apiUrl}/api/v1/traces?service=web-proxied`,
      );
      expect(body.traces.map((t) => t.rootName)).toEqual(['GET /product/:id']);
    } finally {
      await proxy.close();
    }
  });

  it('flushes queued spans on SIGTERM and exits 0', async () => {
    // An export delay far beyond the test: the span can only leave through shutdown's flush.
    const slow = await spawnApp(buildDir, 'inventory', ['--collector', collector.grpcUrl, '--export-delay-ms', '600000']);
    const traceId = randomHex(16);
    const callerSpanId = randomHex(8);
    const answer = await new Promise<string>((resolve, reject) => {
      const socket = net.connect({ host: '127.0.0.1', port: slow.port }, () => {
        socket.write(`STOCK 99 00-${traceId}-${callerSpanId}-01\n`);
      });
      let text = '';
      socket.on('data', (chunk: Buffer) => {
        text += chunk.toString('utf8');
        if (!text.includes('\n')) return;
        socket.end();
        resolve(text.trim());
      });
      socket.once('error', reject);
    });
    expect(answer).toBe(`99 ${stockFor('99')}`);
    expect(await stopApp(slow.child), slow.output()).toEqual({ code: 0, signal: null });
    const spans = await waitForTrace(collector.apiUrl, traceId, (s) => s.length >= 1);
    const span = findSpan(spans, 'inventory', 'Server', 'STOCK');
    expect(span.parentSpanId).toBe(callerSpanId);
    expect(span.attributes['demo.product_id']).toBe('99');
  });

  it('all three stop on SIGTERM with exit code 0 (servers closed, gRPC channel closed, spans flushed)', async () => {
    const results = await Promise.all([web, ratings, inventory].map((app) => stopApp(app.child)));
    expect(results, [web, ratings, inventory].map((app) => app.output()).join('\n')).toEqual([
      { code: 0, signal: null },
      { code: 0, signal: null },
      { code: 0, signal: null },
    ]);
  });

  it('exits 2 with a message naming the bad flag', async () => {
    const child = spawn(process.execPath, [path.join(buildDir, 'src/demo/apps/web.js'), '--ratings', 'nowhere'], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin' },
      stdio: ['ignore', 'ignore', 'pipe'],
    });
    children.add(child);
    let stderr = '';
    child.stderr?.on('data', (chunk: Buffer) => {
      stderr += chunk.toString('utf8');
    });
    const code = await new Promise<number | null>((resolve) => child.once('exit', (c) => resolve(c)));
    children.delete(child);
    expect(code).toBe(2);
    expect(stderr).toContain("tracemesh-demo web: --ratings: 'nowhere' is not HOST:PORT");
  });
});
