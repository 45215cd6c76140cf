import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { SpanKind, context, trace } from '@opentelemetry/api';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSpan } from '../../collector/api/span-json.js';
import { eventually, getJson, startCollector } from '../support/collector-harness.js';
import type { RunningCollector } from '../support/collector-harness.js';
import { startClickHouseHttpShim } from '../support/clickhouse-http-shim.js';
import type { ClickHouseHttpShim } from '../support/clickhouse-http-shim.js';

let engineDir: string;
let shim: ClickHouseHttpShim;
let running: RunningCollector;

beforeAll(async () => {
  engineDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-ch-http-'));
  shim = await startClickHouseHttpShim(engineDir);
  running = await startCollector({ store: { kind: 'http', url: shim.url } });
});

afterAll(async () => {
  await running?.stop();
  await shim?.close();
  rmSync(engineDir, { recursive: true, force: true });
});

describe('--clickhouse-url: the same code path over ClickHouse HTTP', () => {
  it('waits at start-up for a server that is not up yet', async () => {
    const lateShim = await startClickHouseHttpShim(engineDir);
    const url = lateShim.url;
    await lateShim.close();
    const logged: string[] = [];
    const starting = startCollector({ store: { kind: 'http', url }, log: (m) => logged.push(m) });
    await eventually(async () => (logged.some((m) => m.startsWith('store not reachable yet')) ? true : undefined), 'a retry to be logged');
    const port = Number(new URL(url).port);
    const late = await startClickHouseHttpShim(engineDir, port);
    const collector = await starting;
    expect(collector.collector.ready).toBe(true);
    await collector.stop();
    await late.close();
  });


  it('migrates, stores spans from the SDK and answers the query API through HTTP', async () => {
    expect(running.collector.ready).toBe(true);
    const provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'over-http', 'host.cores': 4 }),
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: running.grpcUrl }))],
    });
    const tracer = provider.getTracer('http-store');
    const root = tracer.startSpan('GET /', { kind: SpanKind.SERVER, attributes: { 'http.response.status_code': 200, ok: true } });
    tracer.startSpan('SELECT', { kind: SpanKind.CLIENT, attributes: { 'db.system': 'postgresql' } }, trace.setSpan(context.active(), root)).end();
    root.end();
    await provider.shutdown();
    const traceId = root.spanContext().traceId;
    const spans = await eventually(async () => {
      const res = await getJson<{ spans: ApiSpan[] }>(`${running.apiUrl}/api/v1/traces/${traceId}`);
      return res.status === 200 && res.body.spans.length === 2 ? res.body.spans : undefined;
    }, 'the trace stored over HTTP');
    const server = spans.find((s) => s.kind === 'Server')!;
    expect(server).toMatchObject({ serviceName: 'over-http', attributes: { 'http.response.status_code': 200, ok: true }, resourceAttributes: { 'service.name': 'over-http', 'host.cores': 4 } });
    const services = await getJson<{ services: Array<{ name: string; operations: string[] }> }>(`${running.apiUrl}/api/v1/services`);
    expect(services.body.services).toContainEqual({ name: 'over-http', operations: ['GET /', 'SELECT'] });
    const versions = await running.collector.store.query<{ v: number }>('SELECT max(Version) AS v FROM tracemesh_schema_versions');
    expect(Number(versions[0]!.v)).toBeGreaterThanOrEqual(6);
    expect(shim.requests).toBeGreaterThan(10);
  });
});
