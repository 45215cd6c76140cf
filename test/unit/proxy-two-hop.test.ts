/**
 * The issue's end-to-end check: the three demo apps, each as its own
 * instrumented process, behind real sidecar proxies in explicit mode. One
 * request enters web's inbound listener; web calls ratings over gRPC (a
 * CONNECT tunnel through web's outbound listener to ratings' inbound listener)
 * and inventory over raw TCP (another tunnel). The collector's store must hold
 * one trace in which proxy spans and app spans alternate with correct parents.
 */
import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSpan } from '../../collector/api/span-json.js';
import type { Proxy } from '../../proxy/proxy.js';
import type { ServiceSpec } from '../../src/config/types.js';
import { stockFor } from '../../src/demo/apps/catalog.js';
import { eventually, getJson, startCollector, type RunningCollector } from '../support/collector-harness.js';
import { testSidecar, unusedPort } from '../support/sidecar.js';
import { GRPC_METHOD_SPAN, children, compileDemoApps, killChildren, spawnApp, stopApp, waitForTrace, type AppProcess } from '../support/demo-processes.js';

let collector: RunningCollector;
let buildDir: string;
const proxies: Proxy[] = [];
let web: AppProcess;
let webProxy: Proxy;

function sidecar(service: string, appPort: number, services: ServiceSpec[]): Proxy {
  const proxy = testSidecar(service, appPort, { collectorUrl: collector.grpcUrl, metricsExportIntervalMs: 500, services, maxConnections: 100 });
  proxies.push(proxy);
  return proxy;
}

beforeAll(async () => {
  process.on('exit', killChildren);
  buildDir = compileDemoApps();
  collector = await startCollector();
  const common = ['--collector', collector.grpcUrl, '--export-delay-ms', '100'];
  const [ratings, inventory] = await Promise.all([spawnApp(buildDir, 'ratings', common), spawnApp(buildDir, 'inventory', common)]);
  const ratingsProxy = sidecar('ratings', ratings.port, []);
  const inventoryProxy = sidecar('inventory', inventory.port, []);
  await Promise.all([ratingsProxy.start(), inventoryProxy.start()]);
  const webPort = await unusedPort();
  webProxy = sidecar('web', webPort, [
    {
      name: 'ratings',
      namespace: 'default',
      ports: [{ name: 'grpc', port: 50051, protocol: 'grpc' }],
      vips: [],
      endpoints: [{ address: '127.0.0.1', port: ratingsProxy.inboundPort, labels: { version: 'v1' } }],
    },
    {
      name: 'inventory',
      namespace: 'default',
      ports: [{ name: 'tcp', port: 7070, protocol: 'tcp' }],
      vips: [],
      endpoints: [{ address: '127.0.0.1', port: inventoryProxy.inboundPort, labels: { version: 'v3' } }],
    },
  ]);
  await webProxy.start();
  web = await spawnApp(buildDir, 'web', [
    ...common,
    '--port',
    String(webPort),
    '--ratings',
    'ratings:50051',
    '--inventory',
    'inventory:7070',
    '--proxy',
    `http://127.0.0.1:${webProxy.outboundPort}`,
  ]);
});

afterAll(async () => {
  await Promise.all([...children].map((child) => stopApp(child)));
  process.off('exit', killChildren);
  await Promise.all(proxies.map((p) => p.stop()));
  await collector?.stop();
  if (buildDir !== undefined) rmSync(buildDir, { recursive: true, force: true });
});

function one(spans: ApiSpan[], what: string, match: (s: ApiSpan) => boolean): ApiSpan {
  const found = spans.filter(match);
  const listing = spans.map((s) => `${s.serviceName} ${s.kind} ${s.name} ${s.spanId}<-${s.parentSpanId} ${String(s.attributes['tracemesh.direction'] ?? 'app')}`).join('\n  ');
  expect(found, `${what} in:\n  ${listing}`).toHaveLength(1);
  return found[0]!;
}

const isProxy = (s: ApiSpan): boolean => s.attributes['tracemesh.direction'] !== undefined;

describe('two hops through sidecars (explicit mode)', () => {
  it('one request gives one trace of app and proxy spans with correct parent links', async () => {
    const res = await fetch(`http://127.0.0.1:${webProxy.inboundPort}/product/42`);
    expect(res.status, web.output()).toBe(200);
    const body = (await res.json()) as { stock: number };
    expect(body.stock).toBe(stockFor('42'));

    const traceId = await eventually(async () => {
      const { body: found } = await getJson<{ traces: Array<{ traceId: string; rootName: string }> }>(`${collector.apiUrl}/api/v1/traces?service=web`);
      return found.traces.find((t) => t.rootName === 'GET')?.traceId;
    }, 'a trace rooted at the web proxy');
    const spans = await waitForTrace(collector.apiUrl, traceId, (s) => s.length >= 8);

    const webInbound = one(spans, "web's proxy SERVER span", (s) => s.serviceName === 'web' && s.kind === 'Server' && isProxy(s));
    const webApp = one(spans, "web's app SERVER span", (s) => s.serviceName === 'web' && s.kind === 'Server' && !isProxy(s));
    const grpcClientApp = one(spans, "web's gRPC CLIENT span", (s) => s.serviceName === 'web' && s.kind === 'Client' && s.name === GRPC_METHOD_SPAN);
    const grpcClientProxy = one(spans, "web's proxy gRPC CLIENT span", (s) => s.serviceName === 'web' && s.kind === 'Client' && isProxy(s) && s.attributes['rpc.system'] === 'grpc');
    const ratingsInbound = one(spans, "ratings' proxy SERVER span", (s) => s.serviceName === 'ratings' && s.kind === 'Server' && isProxy(s));
    const ratingsApp = one(spans, "ratings' app SERVER span", (s) => s.serviceName === 'ratings' && s.kind === 'Server' && !isProxy(s));

    expect(webInbound.parentSpanId).toBe('');
    expect(webApp.parentSpanId).toBe(webInbound.spanId);
    expect(grpcClientApp.parentSpanId).toBe(webApp.spanId);
    expect(grpcClientProxy.parentSpanId).toBe(grpcClientApp.spanId);
    expect(ratingsInbound.parentSpanId).toBe(grpcClientProxy.spanId);
    expect(ratingsApp.parentSpanId).toBe(ratingsInbound.spanId);

    expect(webInbound.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/product/42',
      'http.response.status_code': 200,
      'tracemesh.direction': 'inbound',
      'tracemesh.protocol': 'http1',
      'tracemesh.destination.service': 'web',
      'tracemesh.response_flags': '-',
    });
    expect(webInbound.attributes['tracemesh.request_id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(grpcClientProxy.name).toBe('tracemesh.demo.Ratings/GetRating');
    expect(grpcClientProxy.attributes).toMatchObject({
      'rpc.service': 'tracemesh.demo.Ratings',
      'rpc.method': 'GetRating',
      'rpc.grpc.status_code': 0,
      'tracemesh.protocol': 'grpc',
      'tracemesh.source.service': 'web',
      'tracemesh.destination.service': 'ratings',
      'peer.service': 'ratings',
    });
    // Peer metadata: ratings' proxy knows who called.
    expect(ratingsInbound.attributes).toMatchObject({ 'tracemesh.source.service': 'web', 'tracemesh.destination.service': 'ratings' });
    // The app spans of the TCP call are in the trace too (the app carries the context in-band).
    one(spans, "web's STOCK client span", (s) => s.serviceName === 'web' && s.kind === 'Client' && s.name === 'STOCK');
    one(spans, "inventory's STOCK server span", (s) => s.serviceName === 'inventory' && s.kind === 'Server' && s.name === 'STOCK');
  });

  it('the raw TCP call gives a connection span on each side with the bytes each way', async () => {
    const find = async (service: string): Promise<ApiSpan> =>
      eventually(async () => {
        const { body } = await getJson<{ traces: Array<{ traceId: string; rootName: string }> }>(`${collector.apiUrl}/api/v1/traces?service=${service}`);
        const id = body.traces.find((t) => t.rootName === 'tcp inventory')?.traceId;
        if (id === undefined) return undefined;
        const { body: trace } = await getJson<{ spans: ApiSpan[] }>(`${collector.apiUrl}/api/v1/traces/${id}`);
        return trace.spans[0];
      }, `a tcp span of ${service}`);
    const [client, server] = await Promise.all([find('web'), find('inventory')]);
    expect(client.kind).toBe('Client');
    expect(client.attributes).toMatchObject({ 'tracemesh.protocol': 'tcp', 'tracemesh.destination.service': 'inventory', 'tracemesh.destination.version': 'v3' });
    expect(server.kind).toBe('Server');
    expect(Number(client.attributes['tracemesh.tcp.bytes_received'])).toBeGreaterThan(0);
    expect(Number(server.attributes['tracemesh.tcp.bytes_sent'])).toBeGreaterThan(0);
  });

  it('the same request figures reach the collector as OTLP metrics, and the admin pages describe the sidecar', async () => {
    const rows = await eventually(async () => {
      const found = await collector.collector.store.query<{ Attributes: Record<string, string>; Value: number }>(
        `SELECT Attributes, Value FROM otel_metrics_sum WHERE ServiceName = 'web' AND MetricName = 'tracemesh_requests_total'`,
      );
      return found.some((r) => r.Attributes['direction'] === 'outbound' && r.Attributes['destination_service'] === 'ratings') ? found : undefined;
    }, 'tracemesh_requests_total rows of web in otel_metrics_sum');
    const outbound = rows.find((r) => r.Attributes['direction'] === 'outbound' && r.Attributes['destination_service'] === 'ratings')!;
    expect(outbound.Attributes).toMatchObject({ protocol: 'grpc', source_service: 'web', response_code: '200', grpc_status: '0', response_flags: '-' });
    expect(outbound.Value).toBeGreaterThanOrEqual(1);

    const admin = `http://127.0.0.1:${webProxy.adminPort}`;
    expect((await fetch(`${admin}/ready`)).status).toBe(200);
    const prom = await (await fetch(`${admin}/stats/prometheus`)).text();
    expect(prom).toMatch(/tracemesh_requests_total\{direction="inbound",protocol="http1",[^}]*destination_service="web"[^}]*response_code="200"[^}]*\} [1-9]/);
    expect(prom).toMatch(/tracemesh_tcp_connections_opened_total\{direction="outbound",protocol="tcp",source_service="web",destination_service="inventory"/);
    expect(prom).toContain('process_resident_memory_bytes');
    expect(prom).toContain('tracemesh_spans_dropped_total 0');
    const clusters = (await (await fetch(`${admin}/clusters`)).json()) as { clusters: Array<{ service: string; endpoints: Array<{ totalRequests: number; state: string }> }> };
    const ratings = clusters.clusters.find((c) => c.service === 'ratings')!;
    expect(ratings.endpoints[0]).toMatchObject({ state: 'healthy' });
    expect(ratings.endpoints[0]!.totalRequests).toBeGreaterThanOrEqual(1);
    const dump = (await (await fetch(`${admin}/config_dump`)).json()) as { identity: { service: string }; configVersion: string; services: unknown[] };
    expect(dump.identity.service).toBe('web');
    expect(dump.configVersion).toMatch(/^[0-9a-f]{12}$/);
    expect(dump.services).toHaveLength(2);
  });
});
