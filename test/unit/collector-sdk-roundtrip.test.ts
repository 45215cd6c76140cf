import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import type { Attributes, Link, Span } from '@opentelemetry/api';
import { OTLPMetricExporter } from '@opentelemetry/exporter-metrics-otlp-grpc';
import { OTLPTraceExporter as GrpcTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { OTLPTraceExporter as JsonTraceExporter } from '@opentelemetry/exporter-trace-otlp-http';
import { OTLPTraceExporter as ProtoTraceExporter } from '@opentelemetry/exporter-trace-otlp-proto';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, MeterProvider, PeriodicExportingMetricReader } from '@opentelemetry/sdk-metrics';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import type { SpanExporter } from '@opentelemetry/sdk-trace-base';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSpan } from '../../collector/api/span-json.js';
import { eventually, getJson, startCollector } from '../support/collector-harness.js';
import type { RunningCollector } from '../support/collector-harness.js';

let running: RunningCollector;

beforeAll(async () => {
  running = await startCollector();
});

afterAll(async () => {
  await running?.stop();
});

const RESOURCE_ATTRIBUTES: Attributes = {
  'service.name': 'checkout',
  'service.version': '1.4.2',
  'host.cores': 8,
  'deployment.canary': true,
  'sample.ratio': 0.25,
  'process.command_args': ['node', 'server.js'],
};

const SPAN_ATTRIBUTES: Attributes = {
  'http.request.method': 'POST',
  'http.response.status_code': 503,
  'retry.enabled': false,
  'load.factor': 0.75,
  'negative.int': -42,
  'tags': ['a', 'b', 'c'],
  'ports': [80, 443],
  'ratios': [0.5, 1.5],
  'flags': [true, false],
  'empty.string': '',
  'unicode': 'naïve ☃ 日本',
};

interface SentSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  kind: string;
  startNs: string;
  durationNs: string;
}

/** Emits one trace with every span kind, typed attributes, events, a link and an error status. */
function emitTrace(exporter: SpanExporter, serviceName: string): { provider: BasicTracerProvider; sent: SentSpan[]; base: number } {
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ ...RESOURCE_ATTRIBUTES, 'service.name': serviceName }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('roundtrip-test', '0.9.1');
  const base = Math.floor(Date.now() / 1000) - 60; // seconds: recent, inside the retention
  const sent: SentSpan[] = [];
  const record = (span: Span, kind: string, parentSpanId: string, startNs: bigint, endNs: bigint, name: string): void => {
    const ctx = span.spanContext();
    sent.push({ traceId: ctx.traceId, spanId: ctx.spanId, parentSpanId, name, kind, startNs: startNs.toString(), durationNs: (endNs - startNs).toString() });
  };
  const root = tracer.startSpan('POST /checkout', {
    kind: SpanKind.SERVER,
    startTime: [base, 123_456_789],
    attributes: SPAN_ATTRIBUTES,
  });
  root.addEvent('cache.miss', { 'cache.key': 'cart:17', 'cache.size': 3 }, [base, 200_000_001]);
  root.addEvent('no-attributes', [base, 300_000_002]);
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'payment backend timed out' });
  const rootCtx = trace.setSpan(context.active(), root);
  const linkTo: Link = {
    context: { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', traceFlags: 1 },
    attributes: { 'link.reason': 'batch', 'link.index': 2 },
  };
  const kinds: Array<[SpanKind, string]> = [
    [SpanKind.CLIENT, 'Client'],
    [SpanKind.INTERNAL, 'Internal'],
    [SpanKind.PRODUCER, 'Producer'],
    [SpanKind.CONSUMER, 'Consumer'],
  ];
  kinds.forEach(([kind, kindName], i) => {
    const child = tracer.startSpan(`child-${kindName}`, { kind, startTime: [base, 150_000_000 + i], links: i === 0 ? [linkTo] : [] }, rootCtx);
    child.setStatus({ code: SpanStatusCode.OK });
    child.end([base, 180_000_000 + i * 7]);
    record(child, kindName, root.spanContext().spanId, BigInt(base) * 1_000_000_000n + 150_000_000n + BigInt(i), BigInt(base) * 1_000_000_000n + 180_000_000n + BigInt(i * 7), `child-${kindName}`);
  });
  root.end([base, 987_654_321]);
  record(root, 'Server', '', BigInt(base) * 1_000_000_000n + 123_456_789n, BigInt(base) * 1_000_000_000n + 987_654_321n, 'POST /checkout');
  return { provider, sent, base };
}

async function fetchTrace(traceId: string, expectedSpans: number): Promise<ApiSpan[]> {
  return eventually(async () => {
    const res = await getJson<{ spans: ApiSpan[] }>(`${running.apiUrl}/api/v1/traces/${traceId}`);
    return res.status === 200 && res.body.spans.length === expectedSpans ? res.body.spans : undefined;
  }, `trace ${traceId} with ${expectedSpans} spans`);
}

function checkTrace(spans: ApiSpan[], sent: SentSpan[], serviceName: string, base: number): void {
  for (const expected of sent) {
    const got = spans.find((s) => s.spanId === expected.spanId);
    expect(got, `span ${expected.name}`).toBeDefined();
    expect(got).toMatchObject({
      traceId: expected.traceId,
      spanId: expected.spanId,
      parentSpanId: expected.parentSpanId,
      name: expected.name,
      kind: expected.kind,
      serviceName,
      startTimeUnixNano: expected.startNs,
    });
    expect(String(got!.durationNanos)).toBe(expected.durationNs);
    expect(got!.resourceAttributes).toEqual({ ...RESOURCE_ATTRIBUTES, 'service.name': serviceName });
  }
  const root = spans.find((s) => s.parentSpanId === '')!;
  expect(root.statusCode).toBe('Error');
  expect(root.statusMessage).toBe('payment backend timed out');
  expect(root.attributes).toEqual(SPAN_ATTRIBUTES);
  expect(root.events).toEqual([
    { timeUnixNano: `${base}200000001`, name: 'cache.miss', attributes: { 'cache.key': 'cart:17', 'cache.size': 3 } },
    { timeUnixNano: `${base}300000002`, name: 'no-attributes', attributes: {} },
  ]);
  const client = spans.find((s) => s.kind === 'Client')!;
  expect(client.statusCode).toBe('Ok');
  expect(client.links).toEqual([
    { traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', traceState: '', attributes: { 'link.reason': 'batch', 'link.index': 2 } },
  ]);
}

describe('spans sent by the OpenTelemetry SDK come back from the query API field for field', () => {
  const cases: Array<[string, () => SpanExporter]> = [
    ['OTLP/gRPC', () => new GrpcTraceExporter({ url: running.grpcUrl })],
    ['OTLP/HTTP protobuf', () => new ProtoTraceExporter({ url: `${running.httpUrl}/v1/traces` })],
    ['OTLP/HTTP JSON', () => new JsonTraceExporter({ url: `${running.httpUrl}/v1/traces` })],
  ];
  for (const [transport, makeExporter] of cases) {
    it(transport, async () => {
      const serviceName = `checkout-${transport.replace(/[^a-z]+/gi, '-').toLowerCase()}`;
      const { provider, sent, base } = emitTrace(makeExporter(), serviceName);
      await provider.forceFlush();
      await provider.shutdown();
      const spans = await fetchTrace(sent[0]!.traceId, sent.length);
      checkTrace(spans, sent, serviceName, base);
    });
  }
});

describe('metrics sent by the SDK land in the metric tables', () => {
  it('counter, up-down counter, gauge and histogram over OTLP/gRPC', async () => {
    const exporter = new OTLPMetricExporter({ url: running.grpcUrl, temporalityPreference: AggregationTemporality.CUMULATIVE });
    const reader = new PeriodicExportingMetricReader({ exporter, exportIntervalMillis: 60_000 });
    const provider = new MeterProvider({ resource: resourceFromAttributes({ 'service.name': 'metrics-svc' }), readers: [reader] });
    const meter = provider.getMeter('metrics-test');
    meter.createCounter('requests_total', { description: 'requests', unit: '1' }).add(7, { route: '/a' });
    meter.createUpDownCounter('in_flight').add(-3);
    meter.createGauge('temperature', { unit: 'Cel' }).record(21.5, { room: 'lab' });
    const histogram = meter.createHistogram('latency', { unit: 'ms' });
    for (const v of [1, 5, 12, 80]) histogram.record(v, { route: '/a' });
    // Shutdown collects and exports once; a forceFlush before it would export a second, identical set.
    await provider.shutdown();
    const store = running.collector.store;
    const sums = await eventually(async () => {
      const rows = await store.query<{ MetricName: string; Value: number; IsMonotonic: boolean; AggregationTemporality: number; Attributes: Record<string, string> }>(
        "SELECT MetricName, Value, IsMonotonic, AggregationTemporality, Attributes FROM otel_metrics_sum WHERE ServiceName = 'metrics-svc' ORDER BY MetricName",
      );
      return rows.length === 2 ? rows : undefined;
    }, 'two sum rows');
    expect(sums).toEqual([
      { MetricName: 'in_flight', Value: -3, IsMonotonic: false, AggregationTemporality: 2, Attributes: {} },
      { MetricName: 'requests_total', Value: 7, IsMonotonic: true, AggregationTemporality: 2, Attributes: { route: '/a' } },
    ]);
    // Each table's rows load from their own segment file: poll each table, not just the first.
    const gauges = await eventually(async () => {
      const rows = await store.query<{ MetricName: string; Value: number; MetricUnit: string; Attributes: Record<string, string> }>(
        "SELECT MetricName, Value, MetricUnit, Attributes FROM otel_metrics_gauge WHERE ServiceName = 'metrics-svc'",
      );
      return rows.length > 0 ? rows : undefined;
    }, 'the gauge row');
    expect(gauges).toEqual([{ MetricName: 'temperature', Value: 21.5, MetricUnit: 'Cel', Attributes: { room: 'lab' } }]);
    const histograms = await eventually(async () => {
      const rows = await store.query<{ Count: string; Sum: number; Min: number; Max: number; BucketCounts: string[]; ExplicitBounds: number[] }>(
        "SELECT Count, Sum, Min, Max, BucketCounts, ExplicitBounds FROM otel_metrics_histogram WHERE ServiceName = 'metrics-svc' AND MetricName = 'latency'",
      );
      return rows.length > 0 ? rows : undefined;
    }, 'the histogram row');
    expect(histograms).toHaveLength(1);
    const h = histograms[0]!;
    expect(h).toMatchObject({ Count: '4', Sum: 98, Min: 1, Max: 80 });
    expect(h.ExplicitBounds.length + 1).toBe(h.BucketCounts.length);
    expect(h.BucketCounts.reduce((a, b) => a + Number(b), 0)).toBe(4);
  });
});
