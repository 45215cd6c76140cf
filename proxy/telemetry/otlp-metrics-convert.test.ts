import { resourceFromAttributes } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType } from '@opentelemetry/sdk-metrics';
import type { HistogramMetricData, SumMetricData } from '@opentelemetry/sdk-metrics';
import { Counter, Gauge, Histogram, Registry, Summary } from 'prom-client';
import { describe, expect, it } from 'vitest';
import { promToResourceMetrics, unitOfPromName } from './otlp-metrics-convert.js';

describe('prom-client snapshot → OTLP ResourceMetrics', () => {
  it('maps counters to cumulative monotonic sums, gauges to gauges, histograms to explicit-bounds histograms', async () => {
    const registry = new Registry();
    const registers = [registry];
    const counter = new Counter({ name: 'tracemesh_requests_total', help: 'requests', labelNames: ['route', 'code'], registers });
    counter.inc({ route: '/a', code: 200 }, 3);
    counter.inc({ route: '/b', code: 503 });
    new Gauge({ name: 'queue_depth', help: 'depth', registers }).set(7);
    const histogram = new Histogram({ name: 'tracemesh_request_duration_milliseconds', help: 'ms', labelNames: ['route'], buckets: [1, 10, 100], registers });
    for (const v of [0.5, 5, 5, 50, 500]) histogram.observe({ route: '/a' }, v);
    histogram.observe({ route: '/b' }, 2);
    new Counter({ name: 'unused_total', help: 'no samples yet', labelNames: ['x'], registers });
    new Summary({ name: 'some_summary', help: 'left out', registers }).observe(1);

    const resource = resourceFromAttributes({ 'service.name': 'reviews' });
    const out = promToResourceMetrics(await registry.getMetricsAsJSON(), resource, { name: 'tracemesh-proxy' }, [100, 0], [200, 5]);
    expect(out.resource).toBe(resource);
    expect(out.scopeMetrics).toHaveLength(1);
    const metrics = out.scopeMetrics[0]!.metrics;
    expect(metrics.map((m) => m.descriptor.name)).toEqual(['tracemesh_requests_total', 'queue_depth', 'tracemesh_request_duration_milliseconds']);

    const sum = metrics[0] as SumMetricData;
    expect(sum).toMatchObject({ dataPointType: DataPointType.SUM, isMonotonic: true, aggregationTemporality: AggregationTemporality.CUMULATIVE });
    expect(sum.descriptor).toMatchObject({ description: 'requests', unit: '' });
    expect(sum.dataPoints).toEqual([
      { startTime: [100, 0], endTime: [200, 5], attributes: { route: '/a', code: '200' }, value: 3 },
      { startTime: [100, 0], endTime: [200, 5], attributes: { route: '/b', code: '503' }, value: 1 },
    ]);
    expect(metrics[1]).toMatchObject({ dataPointType: DataPointType.GAUGE, dataPoints: [{ attributes: {}, value: 7 }] });

    const h = metrics[2] as HistogramMetricData;
    expect(h).toMatchObject({ dataPointType: DataPointType.HISTOGRAM, aggregationTemporality: AggregationTemporality.CUMULATIVE });
    expect(h.descriptor.unit).toBe('ms');
    expect(h.dataPoints.map((p) => ({ attributes: p.attributes, value: p.value }))).toEqual([
      { attributes: { route: '/a' }, value: { buckets: { boundaries: [1, 10, 100], counts: [1, 2, 1, 1] }, sum: 560.5, count: 5, min: undefined, max: undefined } },
      { attributes: { route: '/b' }, value: { buckets: { boundaries: [1, 10, 100], counts: [0, 1, 0, 0] }, sum: 2, count: 1, min: undefined, max: undefined } },
    ]);
  });

  it('derives UCUM units from Prometheus name suffixes', () => {
    expect(unitOfPromName('tracemesh_request_duration_milliseconds')).toBe('ms');
    expect(unitOfPromName('process_cpu_seconds_total')).toBe('s');
    expect(unitOfPromName('tracemesh_response_bytes_total')).toBe('By');
    expect(unitOfPromName('tracemesh_requests_total')).toBe('');
  });
});
