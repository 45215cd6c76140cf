/**
 * The three demo apps as real processes, each with its own sdk-node (the SDK
 * is per process: global providers, patched modules), exporting to a real
 * collector; one request to web must come out as one trace.
 * How the children are built and run: test/support/demo-processes.ts.
 */
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { rmSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ratingFor, stockFor } from '../../src/demo/apps/catalog.js';
import { startConnectProxy } from '../../src/demo/apps/connect-proxy.test-helper.js';
import { eventually, getJson, startCollector } from '../support/collector-harness.js';
import {
  GRPC_METHOD_SPAN,
  children,
  compileDemoApps,
  findSpan,
  killChildren,
  spawnApp,
  stopApp,
  waitForTrace,
  type AppProcess,
} from '../support/demo-processes.js';
import type { RunningCollector } from '../support/collector-harness.js';

function randomHex(bytes: number): string {
  return randomBytes(bytes).toString('hex');
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
