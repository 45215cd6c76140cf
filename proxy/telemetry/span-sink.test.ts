import { createServer } from 'node:net';
import { hostname } from 'node:os';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSpan } from '../../collector/api/span-json.js';
import { isTracemeshError } from '../../src/lib/errors.js';
import { eventually, getJson, startCollector } from '../../test/support/collector-harness.js';
import type { RunningCollector } from '../../test/support/collector-harness.js';
import type { ProxySpanRecord } from './span-record.js';
import { SPAN_SINK_KINDS, createSpanSink } from './span-sink-factory.js';
import type { SpanSinkKind } from './span-sink-factory.js';
import { spanRecord } from './span-sink.test-helper.js';
import { newSpanId, newTraceId } from './trace-context.js';

let running: RunningCollector;

beforeAll(async () => {
  running = await startCollector();
});

afterAll(async () => {
  await running?.stop();
});

/** A loopback port with nothing listening: bound, then released. */
async function deadPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (typeof address !== 'object' || address === null) throw new Error('no port');
  return address.port;
}

const nanos = (ms: number): string => (BigInt(Math.round(ms * 1000)) * 1000n).toString();
const durationNanos = (span: ProxySpanRecord): string =>
  ((BigInt(Math.round(span.endTimeMs * 1000)) - BigInt(Math.round(span.startTimeMs * 1000))) * 1000n).toString();

async function fetchTrace(traceId: string, expectedSpans: number): Promise<ApiSpan[]> {
  return eventually(async () => {
    const res = await getJson<{ spans: ApiSpan[] }>(`${running.apiUrl}/api/v1/traces/${traceId}`);
    return res.status === 200 && res.body.spans.length === expectedSpans ? res.body.spans : undefined;
  }, `trace ${traceId} with ${expectedSpans} spans`);
}

describe.each(SPAN_SINK_KINDS.map((kind) => [kind]))('%s span sink', (kind: SpanSinkKind) => {
  const identity = { service: `reviews-${kind}`, namespace: 'bookinfo', version: 'v2' };

  it('delivers spans that come back from the collector with the same ids, parent, kind, times, attributes and status', async () => {
    const sink = createSpanSink(kind, {
      identity,
      collectorUrl: running.grpcUrl,
      scheduledDelayMs: 50,
      resourceAttributes: { 'k8s.pod.name': 'reviews-v2-abc' },
    });
    const traceId = newTraceId();
    const callerSpanId = newSpanId();
    const server = spanRecord(0, {
      traceId,
      parentSpanId: callerSpanId,
      traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      kind: 'server',
      name: 'GET /reviews/{id}',
      startTimeMs: Date.now() - 2000 + 0.123,
      endTimeMs: Date.now() - 2000 + 12.789,
      attributes: {
        'http.request.method': 'GET',
        'http.response.status_code': 200,
        'url.path': '/reviews/7',
        'tracemesh.direction': 'inbound',
        'tracemesh.attempt': 1,
        'load.factor': 0.25,
        'tracemesh.retried': false,
      },
    });
    const client = spanRecord(1, {
      traceId,
      parentSpanId: server.spanId,
      kind: 'client',
      name: 'GET',
      startTimeMs: server.startTimeMs + 1.5,
      endTimeMs: server.startTimeMs + 11.25,
      status: 'error',
      statusMessage: 'upstream reset before response (UC)',
      attributes: { 'http.request.method': 'GET', 'http.response.status_code': 503, 'tracemesh.response_flags': 'UC', 'error.type': 'UC' },
    });
    sink.record(server);
    sink.record(client);
    await sink.forceFlush();
    expect(sink.droppedSpans).toBe(0);
    expect(sink.stats.exportedSpans).toBe(2);

    const spans = await fetchTrace(traceId, 2);
    const gotServer = spans.find((s) => s.spanId === server.spanId);
    const gotClient = spans.find((s) => s.spanId === client.spanId);
    expect(gotServer).toMatchObject({
      traceId,
      parentSpanId: callerSpanId,
      name: 'GET /reviews/{id}',
      kind: 'Server',
      serviceName: identity.service,
      startTimeUnixNano: nanos(server.startTimeMs),
      statusCode: 'Unset',
      statusMessage: '',
    });
    expect(String(gotServer!.durationNanos)).toBe(durationNanos(server));
    expect(gotServer!.attributes).toEqual(server.attributes);
    expect(gotClient).toMatchObject({
      traceId,
      parentSpanId: server.spanId,
      name: 'GET',
      kind: 'Client',
      startTimeUnixNano: nanos(client.startTimeMs),
      statusCode: 'Error',
      statusMessage: 'upstream reset before response (UC)',
    });
    expect(String(gotClient!.durationNanos)).toBe(durationNanos(client));
    expect(gotClient!.attributes).toEqual(client.attributes);
    expect(gotServer!.resourceAttributes).toEqual({
      'service.name': identity.service,
      'service.namespace': 'bookinfo',
      'service.version': 'v2',
      'tracemesh.component': 'proxy',
      'host.name': hostname(),
      'process.pid': process.pid,
      'k8s.pod.name': 'reviews-v2-abc',
    });
    const rows = await running.collector.store.query<{ SpanId: string; TraceState: string; ScopeName: string }>(
      'SELECT SpanId, TraceState, ScopeName FROM otel_traces WHERE TraceId = {traceId:String} ORDER BY SpanId',
      { traceId },
    );
    expect(rows.find((r) => r.SpanId === server.spanId)?.TraceState).toBe('congo=t61rcWkgMzE,rojo=00f067aa0ba902b7');
    expect(rows.find((r) => r.SpanId === client.spanId)?.TraceState).toBe('');
    expect(rows.map((r) => r.ScopeName)).toEqual(['tracemesh-proxy', 'tracemesh-proxy']);
    await sink.shutdown();
  });

  it('with the collector down, 100,000 spans stay within the queue bound and every one is counted', async () => {
    const maxQueueSize = 2048;
    const sink = createSpanSink(kind, {
      identity,
      collectorUrl: `http://127.0.0.1:${await deadPort()}`,
      maxQueueSize,
      maxExportBatchSize: 512,
      scheduledDelayMs: 10,
      exportTimeoutMs: 2000,
      shutdownTimeoutMs: 3000,
    });
    const total = 100_000;
    let maxQueued = 0;
    const template = spanRecord(0);
    // Yield now and then, so the exporter really runs (and fails) while spans keep coming.
    for (let i = 0; i < total; i++) {
      sink.record({ ...template, spanId: newSpanId() });
      if (i % 5000 === 4999) {
        maxQueued = Math.max(maxQueued, sink.stats.queued);
        await new Promise((resolve) => setImmediate(resolve));
      }
    }
    maxQueued = Math.max(maxQueued, sink.stats.queued);
    expect(maxQueued).toBeLessThanOrEqual(maxQueueSize);
    expect(sink.stats.exportedSpans).toBe(0);
    // Bounded queue: everything beyond the queue and the batches already out was dropped as it came.
    expect(sink.stats.droppedQueueFull).toBeGreaterThanOrEqual(total - maxQueueSize * 21);
    // Exports to a closed port fail; their spans are counted too.
    await eventually(async () => (sink.stats.droppedExportFailed + sink.stats.droppedExportTimeout > 0 ? true : undefined), 'a failed export');
    await sink.shutdown();
    const s = sink.stats;
    expect(s.queued).toBe(0);
    expect(s.droppedQueueFull + s.droppedExportFailed + s.droppedExportTimeout + s.droppedAtShutdown).toBe(total);
    expect(sink.droppedSpans).toBe(total);
  });

  it('shutdown is safe twice; spans recorded after it are counted, not sent', async () => {
    const sink = createSpanSink(kind, { identity, collectorUrl: running.grpcUrl });
    sink.record(spanRecord(1));
    await Promise.all([sink.shutdown(), sink.shutdown()]);
    await sink.shutdown();
    expect(sink.stats.exportedSpans).toBe(1);
    sink.record(spanRecord(2));
    expect(sink.droppedSpans).toBe(1);
  });

  it('rejects a bad collector address with an error naming it', () => {
    for (const url of ['ftp://127.0.0.1:4317', 'http://127.0.0.1', 'http://127.0.0.1:4317/v1/traces', '::nonsense::']) {
      let caught: unknown;
      try {
        createSpanSink(kind, { identity, collectorUrl: url });
      } catch (err) {
        caught = err;
      }
      expect(isTracemeshError(caught, 'TM_ERR_CONFIG_INVALID'), url).toBe(true);
      expect((caught as Error).message).toContain(url);
    }
  });
});

describe('createSpanSink', () => {
  it('rejects an unknown kind', () => {
    let caught: unknown;
    try {
      createSpanSink('zipkin' as SpanSinkKind, { identity: { service: 'a', namespace: 'b', version: 'c' }, collectorUrl: 'http://127.0.0.1:4317' });
    } catch (err) {
      caught = err;
    }
    expect(isTracemeshError(caught, 'TM_ERR_CONFIG_INVALID')).toBe(true);
    expect((caught as Error).message).toMatch(/zipkin/);
  });
});
