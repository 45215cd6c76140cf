import { describe, it, expect } from 'vitest';
import { ValueType, type HrTime } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import {
  AggregationTemporality,
  AggregationType,
  DataPointType,
  MeterProvider,
  MetricReader,
  type DataPoint,
  type ExponentialHistogram,
  type Histogram,
  type MetricData,
  type ResourceMetrics,
} from '@opentelemetry/sdk-metrics';
import { JsonMetricsSerializer, ProtobufMetricsSerializer } from '@opentelemetry/otlp-transformer';
import type { Attribute, MetricPoint } from '../model.js';
import { decodeMetricsJson } from './metrics-json.js';
import { decodeMetricsProto } from './metrics-proto.js';
import { ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from './wire.js';

/** A reader we collect() from by hand. */
class TestReader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

function nanos(t: HrTime): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

/** Real SDK metrics of every instrument kind, collected with the given temporality. */
async function sdkMetrics(temporality: AggregationTemporality): Promise<ResourceMetrics> {
  const reader = new TestReader({ aggregationTemporalitySelector: () => temporality });
  const provider = new MeterProvider({
    resource: resourceFromAttributes({ 'service.name': 'metrics-svc', 'host.name': 'node-1' }),
    readers: [reader],
    views: [
      { instrumentName: 'rpc.latency', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } },
      {
        instrumentName: 'http.duration',
        aggregation: { type: AggregationType.EXPLICIT_BUCKET_HISTOGRAM, options: { boundaries: [10, 100, 1000] } },
      },
    ],
  });
  const meter = provider.getMeter('tm-metrics', '2.0.0');
  const requests = meter.createCounter('http.requests', { description: 'requests served', unit: '{request}', valueType: ValueType.INT });
  requests.add(3, { route: '/a', code: 200 });
  requests.add(4, { route: '/a', code: 200 });
  requests.add(1, { route: '/b', code: 500 });
  const inflight = meter.createUpDownCounter('http.inflight', { unit: '{request}' });
  inflight.add(2.5, { pool: 'x' });
  inflight.add(-4, { pool: 'x' });
  const temperature = meter.createGauge('cpu.temperature', { unit: 'Cel' });
  temperature.record(61.25, { core: 0 });
  temperature.record(-3, { core: 1 });
  const duration = meter.createHistogram('http.duration', { unit: 'ms' });
  for (const v of [1, 12, 50, 250, 5000]) duration.record(v, { method: 'GET' });
  const latency = meter.createHistogram('rpc.latency', { unit: 's' });
  for (const v of [0.001, 0.5, 2, 2, 3.75, 0]) latency.record(v, { 'rpc.method': 'Get' });
  const { resourceMetrics, errors } = await reader.collect();
  expect(errors).toEqual([]);
  await provider.shutdown();
  return resourceMetrics;
}

function attrs(a: Record<string, unknown>): Attribute[] {
  return Object.keys(a).map((key) => {
    const v = a[key];
    if (typeof v === 'string') return { key, value: v, type: 'string' };
    if (typeof v === 'number') return Number.isInteger(v) ? { key, value: String(v), type: 'int' } : { key, value: String(v), type: 'double' };
    throw new Error(`unexpected attribute ${key}`);
  });
}

/** A point without its shared resource/scope (Omit distributed over the union). */
type WithoutContext<P> = P extends MetricPoint ? Omit<P, 'resource' | 'scope'> : never;
type Expected = WithoutContext<MetricPoint>;

function otlpTemporality(t: AggregationTemporality): number {
  return t === AggregationTemporality.DELTA ? 1 : 2;
}

/** What every SDK data point must decode to. */
function expectedPoints(rm: ResourceMetrics): Expected[] {
  const out: Expected[] = [];
  for (const sm of rm.scopeMetrics) {
    for (const metric of sm.metrics as MetricData[]) {
      for (const dp of metric.dataPoints as Array<DataPoint<unknown>>) {
        const base = {
          metricName: metric.descriptor.name,
          metricDescription: metric.descriptor.description,
          metricUnit: metric.descriptor.unit,
          attributes: attrs(dp.attributes),
          startTimeUnixNano: nanos(dp.startTime),
          timeUnixNano: nanos(dp.endTime),
          flags: 0,
          exemplars: [],
        };
        switch (metric.dataPointType) {
          case DataPointType.GAUGE:
            out.push({ ...base, kind: 'gauge', value: dp.value as number });
            break;
          case DataPointType.SUM:
            out.push({
              ...base,
              kind: 'sum',
              value: dp.value as number,
              aggregationTemporality: otlpTemporality(metric.aggregationTemporality),
              isMonotonic: metric.isMonotonic,
            });
            break;
          case DataPointType.HISTOGRAM: {
            const h = dp.value as Histogram;
            out.push({
              ...base,
              kind: 'histogram',
              count: BigInt(h.count),
              sum: h.sum ?? NaN,
              bucketCounts: h.buckets.counts.map(BigInt),
              explicitBounds: h.buckets.boundaries,
              min: h.min ?? NaN,
              max: h.max ?? NaN,
              aggregationTemporality: otlpTemporality(metric.aggregationTemporality),
            });
            break;
          }
          case DataPointType.EXPONENTIAL_HISTOGRAM: {
            const h = dp.value as ExponentialHistogram;
            out.push({
              ...base,
              kind: 'exponential_histogram',
              count: BigInt(h.count),
              sum: h.sum ?? NaN,
              scale: h.scale,
              zeroCount: BigInt(h.zeroCount),
              positiveOffset: h.positive.offset,
              positiveBucketCounts: h.positive.bucketCounts.map(BigInt),
              negativeOffset: h.negative.offset,
              negativeBucketCounts: h.negative.bucketCounts.map(BigInt),
              min: h.min ?? NaN,
              max: h.max ?? NaN,
              aggregationTemporality: otlpTemporality(metric.aggregationTemporality),
            });
            break;
          }
        }
      }
    }
  }
  return out;
}

function withoutContext(p: MetricPoint): Expected {
  const { resource: _resource, scope: _scope, ...rest } = p;
  return rest;
}

const decoders = [
  ['protobuf', (rm: ResourceMetrics) => decodeMetricsProto(ProtobufMetricsSerializer.serializeRequest(rm)!)],
  ['JSON', (rm: ResourceMetrics) => decodeMetricsJson(JsonMetricsSerializer.serializeRequest(rm)!)],
] as const;

describe.each(decoders)('metrics round trip through the OpenTelemetry JS %s serializer', (_name, decode) => {
  it.each([
    ['cumulative', AggregationTemporality.CUMULATIVE],
    ['delta', AggregationTemporality.DELTA],
  ])('returns every data point exactly (%s)', async (_t, temporality) => {
    const rm = await sdkMetrics(temporality);
    const result = decode(rm);
    expect(result.errors).toEqual([]);
    expect(result.rejected).toBe(0);
    const expected = expectedPoints(rm);
    // counter ×2 series, up-down ×1, gauge ×2, histogram ×1, exponential histogram ×1
    expect(expected).toHaveLength(7);
    expect(result.items.map(withoutContext)).toEqual(expected);

    const kinds = result.items.map((p) => p.kind);
    expect(new Set(kinds)).toEqual(new Set(['sum', 'gauge', 'histogram', 'exponential_histogram']));
    const counter = result.items.find((p) => p.metricName === 'http.requests' && p.attributes[0]!.value === '/a')!;
    expect(counter).toMatchObject({ kind: 'sum', value: 7, isMonotonic: true, metricUnit: '{request}', metricDescription: 'requests served' });
    const updown = result.items.find((p) => p.metricName === 'http.inflight')!;
    expect(updown).toMatchObject({ kind: 'sum', value: -1.5, isMonotonic: false });
    const hist = result.items.find((p) => p.kind === 'histogram')!;
    expect(hist).toMatchObject({ count: 5n, sum: 5313, min: 1, max: 5000, explicitBounds: [10, 100, 1000], bucketCounts: [1n, 2n, 1n, 1n] });
    const exp = result.items.find((p) => p.kind === 'exponential_histogram')!;
    expect(exp).toMatchObject({ count: 6n, zeroCount: 1n, min: 0, max: 3.75, negativeBucketCounts: [] });
    if (exp.kind === 'exponential_histogram') {
      expect(exp.positiveBucketCounts.reduce((a, b) => a + b, 0n)).toBe(5n);
      expect(exp.scale).toBeGreaterThan(0);
    }
  });

  it('gives every point its resource and scope', async () => {
    const result = decode(await sdkMetrics(AggregationTemporality.CUMULATIVE));
    const first = result.items[0]!;
    expect(first.resource).toEqual({
      serviceName: 'metrics-svc',
      attributes: [
        { key: 'service.name', value: 'metrics-svc', type: 'string' },
        { key: 'host.name', value: 'node-1', type: 'string' },
      ],
      schemaUrl: '',
    });
    expect(first.scope).toMatchObject({ name: 'tm-metrics', version: '2.0.0' });
    for (const p of result.items) expect(p.resource).toBe(first.resource);
  });
});

/** A hand-made request: one Metric (already encoded as a Metric message body) under one resource/scope. */
function metricsRequest(metric: (w: ProtoWriter) => void): Uint8Array {
  const w = new ProtoWriter();
  w.fork(); // ResourceMetrics
  w.fork(); // ScopeMetrics
  w.fork(); // Metric
  metric(w);
  w.join(2);
  w.join(2);
  w.join(1);
  return w.finish();
}

describe('metrics the JS SDK does not produce', () => {
  it('decodes a summary, exemplars and data point flags (protobuf)', () => {
    const body = metricsRequest((w) => {
      w.tag(1, WIRE_LEN).string('rpc.server.duration');
      w.fork(); // Summary
      w.fork(); // SummaryDataPoint
      w.tag(2, WIRE_FIXED64).fixed64(1_000n);
      w.tag(3, WIRE_FIXED64).fixed64(2_000n);
      w.tag(4, WIRE_FIXED64).fixed64(10n);
      w.tag(5, WIRE_FIXED64).double(12.5);
      w.fork().tag(1, WIRE_FIXED64).double(0.5).tag(2, WIRE_FIXED64).double(1.25).join(6);
      w.fork().tag(1, WIRE_FIXED64).double(0.99).tag(2, WIRE_FIXED64).double(4).join(6);
      w.tag(8, WIRE_VARINT).varint(1);
      w.join(1);
      w.join(11);
    });
    const result = decodeMetricsProto(body);
    expect(result.errors).toEqual([]);
    expect(result.items).toHaveLength(1);
    expect(withoutContext(result.items[0]!)).toEqual({
      metricName: 'rpc.server.duration',
      metricDescription: '',
      metricUnit: '',
      attributes: [],
      startTimeUnixNano: 1_000n,
      timeUnixNano: 2_000n,
      flags: 1,
      exemplars: [],
      kind: 'summary',
      count: 10n,
      sum: 12.5,
      quantiles: [
        { quantile: 0.5, value: 1.25 },
        { quantile: 0.99, value: 4 },
      ],
    });
  });

  it('decodes an exponential histogram with negative buckets, packed or not (protobuf)', () => {
    const body = metricsRequest((w) => {
      w.tag(1, WIRE_LEN).string('x');
      w.fork(); // ExponentialHistogram
      w.fork(); // ExponentialHistogramDataPoint
      w.tag(3, WIRE_FIXED64).fixed64(7n);
      w.tag(4, WIRE_FIXED64).fixed64(6n);
      w.tag(6, WIRE_VARINT).sint32(-2);
      w.tag(7, WIRE_FIXED64).fixed64(1n);
      // positive: offset -3, packed counts [1, 2]
      w.fork().tag(1, WIRE_VARINT).sint32(-3).fork().varint(1).varint(2).join(2).join(8);
      // negative: offset 4, unpacked counts [2, 2^40]
      w.fork().tag(1, WIRE_VARINT).sint32(4).tag(2, WIRE_VARINT).varint(2).tag(2, WIRE_VARINT).varint(2 ** 40).join(9);
      w.tag(12, WIRE_FIXED64).double(-9.5);
      w.tag(14, WIRE_FIXED64).double(1e-9); // zero_threshold: read past, not stored
      w.join(1);
      w.tag(2, WIRE_VARINT).varint(1);
      w.join(10);
    });
    const result = decodeMetricsProto(body);
    expect(result.errors).toEqual([]);
    expect(result.items[0]).toMatchObject({
      kind: 'exponential_histogram',
      count: 6n,
      scale: -2,
      zeroCount: 1n,
      positiveOffset: -3,
      positiveBucketCounts: [1n, 2n],
      negativeOffset: 4,
      negativeBucketCounts: [2n, 2n ** 40n],
      min: -9.5,
      aggregationTemporality: 1,
    });
    const p = result.items[0]!;
    expect(p.kind === 'exponential_histogram' && Number.isNaN(p.max) && Number.isNaN(p.sum)).toBe(true);
  });

  it('decodes exemplars and an as_int gauge written before the name (protobuf)', () => {
    const body = metricsRequest((w) => {
      w.fork(); // Gauge
      w.fork(); // NumberDataPoint
      w.tag(3, WIRE_FIXED64).fixed64(5n);
      w.tag(6, WIRE_FIXED64).fixed64(-42n);
      w.fork(); // Exemplar
      w.fork().tag(1, WIRE_LEN).string('user').fork().tag(1, WIRE_LEN).string('u1').join(2).join(7);
      w.tag(2, WIRE_FIXED64).fixed64(4n);
      w.tag(3, WIRE_FIXED64).double(0.25);
      w.tag(4, WIRE_LEN).bytes(Buffer.from('00f067aa0ba902b7', 'hex'));
      w.tag(5, WIRE_LEN).bytes(Buffer.from('4bf92f3577b34da6a3ce929d0e0e4736', 'hex'));
      w.join(5);
      w.join(1);
      w.join(5);
      w.tag(1, WIRE_LEN).string('queue.depth');
      w.tag(3, WIRE_LEN).string('{item}');
    });
    const result = decodeMetricsProto(body);
    expect(result.errors).toEqual([]);
    expect(result.items[0]).toMatchObject({
      kind: 'gauge',
      metricName: 'queue.depth',
      metricUnit: '{item}',
      value: -42,
      exemplars: [
        {
          filteredAttributes: [{ key: 'user', value: 'u1', type: 'string' }],
          timeUnixNano: 4n,
          value: 0.25,
          spanId: '00f067aa0ba902b7',
          traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
        },
      ],
    });
  });

  it('decodes the same in OTLP/JSON, snake_case and enum names included', () => {
    const body = JSON.stringify({
      resource_metrics: [
        {
          resource: { attributes: [{ key: 'service.name', value: { string_value: 'json-svc' } }] },
          scope_metrics: [
            {
              scope: { name: 's' },
              metrics: [
                {
                  name: 'rpc.server.duration',
                  summary: {
                    data_points: [
                      {
                        start_time_unix_nano: '1000',
                        time_unix_nano: 2000,
                        count: '10',
                        sum: 12.5,
                        quantile_values: [{ quantile: 0.5, value: 1.25 }, { quantile: 0.99, value: '4' }],
                        flags: 1,
                      },
                    ],
                  },
                },
                {
                  name: 'queue.depth',
                  unit: '{item}',
                  gauge: {
                    dataPoints: [
                      {
                        timeUnixNano: '5',
                        asInt: '-42',
                        exemplars: [
                          {
                            filteredAttributes: [{ key: 'user', value: { stringValue: 'u1' } }],
                            timeUnixNano: '4',
                            asDouble: 0.25,
                            spanId: '00F067AA0BA902B7',
                            traceId: '4bf92f3577b34da6a3ce929d0e0e4736',
                          },
                        ],
                      },
                    ],
                  },
                },
                {
                  name: 'bytes.sent',
                  sum: {
                    aggregationTemporality: 'AGGREGATION_TEMPORALITY_DELTA',
                    isMonotonic: true,
                    dataPoints: [{ timeUnixNano: '9', asDouble: 'Infinity' }],
                  },
                },
              ],
            },
          ],
        },
      ],
    });
    const result = decodeMetricsJson(body);
    expect(result.errors).toEqual([]);
    expect(result.items).toHaveLength(3);
    expect(result.items[0]).toMatchObject({
      kind: 'summary',
      count: 10n,
      sum: 12.5,
      flags: 1,
      startTimeUnixNano: 1000n,
      timeUnixNano: 2000n,
      quantiles: [
        { quantile: 0.5, value: 1.25 },
        { quantile: 0.99, value: 4 },
      ],
    });
    expect(result.items[0]!.resource.serviceName).toBe('json-svc');
    expect(result.items[1]).toMatchObject({
      kind: 'gauge',
      value: -42,
      exemplars: [{ value: 0.25, spanId: '00f067aa0ba902b7', traceId: '4bf92f3577b34da6a3ce929d0e0e4736', timeUnixNano: 4n }],
    });
    expect(result.items[2]).toMatchObject({ kind: 'sum', value: Infinity, aggregationTemporality: 1, isMonotonic: true });
  });
});
