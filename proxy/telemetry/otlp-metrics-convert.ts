/**
 * prom-client's registry snapshot (getMetricsAsJSON) → the SDK's
 * ResourceMetrics, so the OTLP metric exporter can send the same figures
 * /stats/prometheus shows. Prometheus types map as OTLP's own Prometheus
 * receiver maps them: counter → monotonic cumulative sum, gauge → gauge,
 * histogram → cumulative explicit-bounds histogram. Summaries have no
 * OTLP-SDK data point type and are left out (the proxy defines none;
 * collectDefaultMetrics defines none either).
 *
 * Names stay as Prometheus spells them (tracemesh_requests_total), so one
 * query language's names find the same series in otel_metrics_* tables.
 */
import { ValueType } from '@opentelemetry/api';
import type { Attributes, HrTime } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import type { Resource } from '@opentelemetry/resources';
import { AggregationTemporality, DataPointType } from '@opentelemetry/sdk-metrics';
import type { DataPoint, Histogram, MetricData, ResourceMetrics } from '@opentelemetry/sdk-metrics';
import type { MetricObjectWithValues, MetricValue } from 'prom-client';

type PromMetric = MetricObjectWithValues<MetricValue<string>>;
type PromValue = MetricValue<string> & { metricName?: string };

/** The unit from a Prometheus name's unit suffix (UCUM, as OTLP wants), '' when it has none. */
export function unitOfPromName(name: string): string {
  const base = name.endsWith('_total') ? name.slice(0, -'_total'.length) : name;
  if (base.endsWith('_milliseconds')) return 'ms';
  if (base.endsWith('_seconds')) return 's';
  if (base.endsWith('_bytes')) return 'By';
  return '';
}

function attributesOf(labels: PromValue['labels'], skip: string | undefined): Attributes {
  const out: Attributes = {};
  for (const key of Object.keys(labels)) {
    if (key === skip) continue;
    const v = labels[key];
    if (v !== undefined) out[key] = String(v);
  }
  return out;
}

/** A stable key of a label set, `le` left out, for grouping a histogram's lines into series. */
function seriesKey(labels: PromValue['labels']): string {
  return JSON.stringify(
    Object.keys(labels)
      .filter((k) => k !== 'le')
      .sort()
      .map((k) => [k, String(labels[k])]),
  );
}

function numberPoints(metric: PromMetric, startTime: HrTime, endTime: HrTime): DataPoint<number>[] {
  const points: DataPoint<number>[] = [];
  for (const v of metric.values as PromValue[]) {
    if (!Number.isFinite(v.value)) continue;
    points.push({ startTime, endTime, attributes: attributesOf(v.labels, undefined), value: v.value });
  }
  return points;
}

interface HistogramSeries {
  labels: PromValue['labels'];
  /** Cumulative counts by upper bound (prom-client's `le`), +Inf left out. */
  bounds: number[];
  cumulative: number[];
  sum: number;
  count: number;
}

function histogramPoints(metric: PromMetric, startTime: HrTime, endTime: HrTime): DataPoint<Histogram>[] {
  const series = new Map<string, HistogramSeries>();
  for (const v of metric.values as PromValue[]) {
    const key = seriesKey(v.labels);
    let s = series.get(key);
    if (s === undefined) {
      s = { labels: v.labels, bounds: [], cumulative: [], sum: 0, count: 0 };
      series.set(key, s);
    }
    const name = v.metricName ?? '';
    if (name.endsWith('_bucket')) {
      const le = v.labels.le;
      const bound = typeof le === 'number' ? le : Number(le);
      if (Number.isFinite(bound)) {
        s.bounds.push(bound);
        s.cumulative.push(v.value);
      }
    } else if (name.endsWith('_sum')) s.sum = v.value;
    else if (name.endsWith('_count')) s.count = v.value;
  }
  const points: DataPoint<Histogram>[] = [];
  for (const s of series.values()) {
    const order = s.bounds.map((_, i) => i).sort((a, b) => (s.bounds[a] as number) - (s.bounds[b] as number));
    const boundaries = order.map((i) => s.bounds[i] as number);
    const counts: number[] = [];
    let previous = 0;
    for (const i of order) {
      const c = s.cumulative[i] as number;
      counts.push(Math.max(0, c - previous));
      previous = c;
    }
    counts.push(Math.max(0, s.count - previous)); // the +Inf bucket
    points.push({
      startTime,
      endTime,
      attributes: attributesOf(s.labels, 'le'),
      // Prometheus histograms keep no min or max.
      value: { buckets: { boundaries, counts }, sum: s.sum, count: s.count, min: undefined, max: undefined },
    });
  }
  return points;
}

function convertMetric(metric: PromMetric, startTime: HrTime, endTime: HrTime): MetricData | undefined {
  const descriptor = { name: metric.name, description: metric.help, unit: unitOfPromName(metric.name), valueType: ValueType.DOUBLE };
  // prom-client's typings declare a numeric enum; at run time `type` is the exposition-format word.
  switch (metric.type as unknown as string) {
    case 'counter':
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.SUM,
        isMonotonic: true,
        dataPoints: numberPoints(metric, startTime, endTime),
      };
    case 'gauge':
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.GAUGE,
        dataPoints: numberPoints(metric, startTime, endTime),
      };
    case 'histogram':
      return {
        descriptor,
        aggregationTemporality: AggregationTemporality.CUMULATIVE,
        dataPointType: DataPointType.HISTOGRAM,
        dataPoints: histogramPoints(metric, startTime, endTime),
      };
    default:
      return undefined;
  }
}

/**
 * One ResourceMetrics of the whole registry snapshot. `startTime` is fixed
 * (the proxy's start): prom-client values are cumulative since then.
 * Metrics without data points (a labelled family nobody has used yet) are left out.
 */
export function promToResourceMetrics(
  snapshot: readonly PromMetric[],
  resource: Resource,
  scope: InstrumentationScope,
  startTime: HrTime,
  endTime: HrTime,
): ResourceMetrics {
  const metrics: MetricData[] = [];
  for (const metric of snapshot) {
    const data = convertMetric(metric, startTime, endTime);
    if (data !== undefined && data.dataPoints.length > 0) metrics.push(data);
  }
  return { resource, scopeMetrics: [{ scope, metrics }] };
}
