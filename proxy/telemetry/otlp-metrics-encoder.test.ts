import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { decodeMetricsProto } from '../../collector/otlp/metrics-proto.js';
import type { GaugePoint, HistogramPoint, MetricPoint, SumPoint } from '../../collector/model.js';
import { encodeMetricsRequest, unitOfPromName } from './otlp-metrics-encoder.js';
import { encodeResource, encodeScope } from './span-sink-lean-encoder.js';

const START_MS = 1_722_000_000_000.25;
const END_MS = 1_722_000_010_000.5;

function attributesOf(point: MetricPoint): Record<string, string> {
  return Object.fromEntries(point.attributes.map((a) => [a.key, a.value]));
}

async function encodeAndDecode(registry: Registry): Promise<MetricPoint[]> {
  const body = encodeMetricsRequest(
    await registry.getMetricsAsJSON(),
    encodeResource({ 'service.name': 'reviews', 'process.pid': 42 }),
    encodeScope('tracemesh-proxy'),
    START_MS,
    END_MS,
  );
  const decoded = decodeMetricsProto(body);
  expect(decoded.errors).toEqual([]);
  expect(decoded.rejected).toBe(0);
  return decoded.items;
}

describe('prom-client snapshot → OTLP metrics protobuf, read back by the collector decoder', () => {
  it('maps counters to cumulative monotonic sums, gauges to gauges, histograms to explicit-bounds histograms', async () => {
    const registry = new Registry();
    const registers = [registry];
    const counter = new Counter({ name: 'tracemesh_requests_total', help: 'requests', labelNames: ['route', 'code'], registers });
    counter.inc({ route: '/a', code: 200 }, 3);
    counter.inc({ route: '/b', code: 503 });
    new Gauge({ name: 'queue_depth', help: 'depth', registers }).set(7.5);
    const histogram = new Histogram({ name: 'tracemesh_request_duration_milliseconds', help: 'ms', labelNames: ['route'], buckets: [1, 10, 100], registers });
    for (const v of [0.5, 5, 5, 50, 500]) histogram.observe({ route: '/a' }, v);
    histogram.observe({ route: '/b' }, 2);
    new Counter({ name: 'unused_total', help: 'no samples yet', labelNames: ['x'], registers });
    new Summary({ name: 'some_summary', help: 'left out', registers }).observe(1);

    const points = await encodeAndDecode(registry);
    expect(points.map((p) => `${p.kind} ${p.metricName}`)).toEqual([
      'sum tracemesh_requests_total',
      'sum tracemesh_requests_total',
      'gauge queue_depth',
      'histogram tracemesh_request_duration_milliseconds',
      'histogram tracemesh_request_duration_milliseconds',
    ]);
    for (const p of points) {
      expect(p.resource.serviceName).toBe('reviews');
      expect(p.scope.name).toBe('tracemesh-proxy');
      expect(p.startTimeUnixNano).toBe(1_722_000_000_000_250_000n);
      expect(p.timeUnixNano).toBe(1_722_000_010_000_500_000n);
    }

    const [a, b] = points as [SumPoint, SumPoint];
    expect(a).toMatchObject({ value: 3, isMonotonic: true, aggregationTemporality: 2, metricDescription: 'requests', metricUnit: '' });
    expect(attributesOf(a)).toEqual({ route: '/a', code: '200' });
    expect(b.value).toBe(1);
    expect(attributesOf(b)).toEqual({ route: '/b', code: '503' });

    const gauge = points[2] as GaugePoint;
    expect(gauge.value).toBe(7.5);
    expect(gauge.attributes).toEqual([]);

    const [ha, hb] = points.slice(3) as [HistogramPoint, HistogramPoint];
    expect(ha).toMatchObject({ metricUnit: 'ms', count: 5n, sum: 560.5, explicitBounds: [1, 10, 100], bucketCounts: [1n, 2n, 1n, 1n], aggregationTemporality: 2 });
    expect(attributesOf(ha)).toEqual({ route: '/a' });
    expect(hb).toMatchObject({ count: 1n, sum: 2, bucketCounts: [0n, 1n, 0n, 0n] });
  });

  it('sends an empty scope when no metric has samples', async () => {
    const registry = new Registry();
    new Counter({ name: 'unused_total', help: 'no samples yet', labelNames: ['x'], registers: [registry] });
    expect(await encodeAndDecode(registry)).toEqual([]);
  });

  it('derives UCUM units from Prometheus name suffixes', () => {
    expect(unitOfPromName('tracemesh_request_duration_milliseconds')).toBe('ms');
    expect(unitOfPromName('process_cpu_seconds_total')).toBe('s');
    expect(unitOfPromName('tracemesh_response_bytes_total')).toBe('By');
    expect(unitOfPromName('tracemesh_requests_total')).toBe('');
  });
});
