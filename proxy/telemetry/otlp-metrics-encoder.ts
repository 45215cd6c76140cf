/**
 * prom-client's registry snapshot (getMetricsAsJSON) → OTLP
 * ExportMetricsServiceRequest protobuf, so the OTLP bridge can send the same
 * figures /stats/prometheus shows without the SDK's metrics packages (about
 * 11 MB of resident memory). Field numbers: opentelemetry-proto
 * metrics/v1/metrics.proto; the collector's decoder
 * (collector/otlp/metrics-proto.ts) reads exactly this.
 *
 * Prometheus types map as OTLP's own Prometheus receiver maps them: counter →
 * monotonic cumulative sum, gauge → gauge, histogram → cumulative
 * explicit-bounds histogram. Summaries are left out (the proxy defines none;
 * collectDefaultMetrics defines none either), and so are metrics without
 * samples (a labelled family nobody has used yet). Names stay as Prometheus
 * spells them (tracemesh_requests_total), so one query language's names find
 * the same series in otel_metrics_* tables.
 */
import type { MetricObjectWithValues, MetricValue } from 'prom-client';
import { LeanProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT, tag } from './lean-proto-writer.js';

type PromMetric = MetricObjectWithValues<MetricValue<string>>;
type PromValue = MetricValue<string> & { metricName?: string };
type PromLabels = PromValue['labels'];

const T_RESOURCE_METRICS = tag(1, WIRE_LEN);
const T_RM_RESOURCE = tag(1, WIRE_LEN);
const T_RM_SCOPE_METRICS = tag(2, WIRE_LEN);
const T_SM_SCOPE = tag(1, WIRE_LEN);
const T_SM_METRIC = tag(2, WIRE_LEN);
const T_METRIC_NAME = tag(1, WIRE_LEN);
const T_METRIC_DESCRIPTION = tag(2, WIRE_LEN);
const T_METRIC_UNIT = tag(3, WIRE_LEN);
const T_METRIC_GAUGE = tag(5, WIRE_LEN);
const T_METRIC_SUM = tag(7, WIRE_LEN);
const T_METRIC_HISTOGRAM = tag(9, WIRE_LEN);
const T_DATA_POINT = tag(1, WIRE_LEN);
const T_DATA_TEMPORALITY = tag(2, WIRE_VARINT);
const T_SUM_MONOTONIC = tag(3, WIRE_VARINT);
const T_NUMBER_ATTRIBUTE = tag(7, WIRE_LEN);
const T_POINT_START = tag(2, WIRE_FIXED64);
const T_POINT_TIME = tag(3, WIRE_FIXED64);
const T_NUMBER_DOUBLE = tag(4, WIRE_FIXED64);
const T_HISTOGRAM_COUNT = tag(4, WIRE_FIXED64);
const T_HISTOGRAM_SUM = tag(5, WIRE_FIXED64);
const T_HISTOGRAM_BUCKET_COUNTS = tag(6, WIRE_LEN);
const T_HISTOGRAM_BOUNDS = tag(7, WIRE_LEN);
const T_HISTOGRAM_ATTRIBUTE = tag(9, WIRE_LEN);
const T_KV_KEY = tag(1, WIRE_LEN);
const T_KV_VALUE = tag(2, WIRE_LEN);
const T_ANY_STRING = tag(1, WIRE_LEN);

const TEMPORALITY_CUMULATIVE = 2;

/** The unit from a Prometheus name's unit suffix (UCUM, as OTLP wants), '' when it has none. */
export function unitOfPromName(name: string): string {
  const base = name.endsWith('_total') ? name.slice(0, -'_total'.length) : name;
  if (base.endsWith('_milliseconds')) return 'ms';
  if (base.endsWith('_seconds')) return 's';
  if (base.endsWith('_bytes')) return 'By';
  return '';
}

/** Point times: the same for every point of one export. */
interface PointTimes {
  readonly startMicros: number;
  readonly endMicros: number;
}

function writeAttributes(w: LeanProtoWriter, fieldTag: number, labels: PromLabels, skip: string | undefined): void {
  for (const key of Object.keys(labels)) {
    if (key === skip) continue;
    const value = labels[key];
    if (value === undefined) continue;
    w.byte(fieldTag);
    const kv = w.begin();
    w.byte(T_KV_KEY);
    w.string(key);
    w.byte(T_KV_VALUE);
    const any = w.begin();
    w.byte(T_ANY_STRING);
    w.string(String(value));
    w.end(any);
    w.end(kv);
  }
}

function writeTimes(w: LeanProtoWriter, times: PointTimes): void {
  w.byte(T_POINT_START);
  w.fixed64NanosFromMicros(times.startMicros);
  w.byte(T_POINT_TIME);
  w.fixed64NanosFromMicros(times.endMicros);
}

/** NumberDataPoints of a counter or gauge; false when it has none. */
function writeNumberPoints(w: LeanProtoWriter, metric: PromMetric, times: PointTimes): boolean {
  let any = false;
  for (const v of metric.values as PromValue[]) {
    if (!Number.isFinite(v.value)) continue;
    w.byte(T_DATA_POINT);
    const point = w.begin();
    writeAttributes(w, T_NUMBER_ATTRIBUTE, v.labels, undefined);
    writeTimes(w, times);
    w.byte(T_NUMBER_DOUBLE);
    w.double(v.value);
    w.end(point);
    any = true;
  }
  return any;
}

interface HistogramSeries {
  labels: PromLabels;
  /** Cumulative counts by upper bound (prom-client's `le`), +Inf left out. */
  bounds: number[];
  cumulative: number[];
  sum: number;
  count: number;
}

/** A stable key of a label set, `le` left out, for grouping a histogram's lines into series. */
function seriesKey(labels: PromLabels): string {
  return JSON.stringify(
    Object.keys(labels)
      .filter((k) => k !== 'le')
      .sort()
      .map((k) => [k, String(labels[k])]),
  );
}

function histogramSeries(metric: PromMetric): Map<string, HistogramSeries> {
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
  return series;
}

/** HistogramDataPoints, one per label set: per-bucket counts from Prometheus' cumulative ones, +Inf last. */
function writeHistogramPoints(w: LeanProtoWriter, metric: PromMetric, times: PointTimes): boolean {
  let any = false;
  for (const s of histogramSeries(metric).values()) {
    const order = s.bounds.map((_, i) => i).sort((a, b) => (s.bounds[a] as number) - (s.bounds[b] as number));
    w.byte(T_DATA_POINT);
    const point = w.begin();
    writeAttributes(w, T_HISTOGRAM_ATTRIBUTE, s.labels, 'le');
    writeTimes(w, times);
    w.byte(T_HISTOGRAM_COUNT);
    w.fixed64(Math.max(0, s.count));
    // Prometheus histograms keep no min or max.
    w.byte(T_HISTOGRAM_SUM);
    w.double(s.sum);
    w.byte(T_HISTOGRAM_BUCKET_COUNTS);
    w.varint((order.length + 1) * 8);
    let previous = 0;
    for (const i of order) {
      const c = s.cumulative[i] as number;
      w.fixed64(Math.max(0, c - previous));
      previous = c;
    }
    w.fixed64(Math.max(0, s.count - previous)); // the +Inf bucket
    if (order.length > 0) {
      w.byte(T_HISTOGRAM_BOUNDS);
      w.varint(order.length * 8);
      for (const i of order) w.double(s.bounds[i] as number);
    }
    w.end(point);
    any = true;
  }
  return any;
}

/** One Metric; leaves nothing written (and returns false) for a type OTLP has no point for here, or no samples. */
function writeMetric(w: LeanProtoWriter, metric: PromMetric, times: PointTimes): boolean {
  // prom-client's typings declare a numeric enum; at run time `type` is the exposition-format word.
  const type = metric.type as unknown as string;
  if (type !== 'counter' && type !== 'gauge' && type !== 'histogram') return false;
  const rewind = w.pos;
  w.byte(T_SM_METRIC);
  const at = w.begin();
  w.byte(T_METRIC_NAME);
  w.string(metric.name);
  if (metric.help !== '') {
    w.byte(T_METRIC_DESCRIPTION);
    w.string(metric.help);
  }
  const unit = unitOfPromName(metric.name);
  if (unit !== '') {
    w.byte(T_METRIC_UNIT);
    w.string(unit);
  }
  w.byte(type === 'counter' ? T_METRIC_SUM : type === 'gauge' ? T_METRIC_GAUGE : T_METRIC_HISTOGRAM);
  const data = w.begin();
  const any = type === 'histogram' ? writeHistogramPoints(w, metric, times) : writeNumberPoints(w, metric, times);
  if (!any) {
    w.pos = rewind;
    return false;
  }
  if (type !== 'gauge') {
    w.byte(T_DATA_TEMPORALITY);
    w.byte(TEMPORALITY_CUMULATIVE);
  }
  if (type === 'counter') {
    w.byte(T_SUM_MONOTONIC);
    w.byte(1);
  }
  w.end(data);
  w.end(at);
  return true;
}

/**
 * One ExportMetricsServiceRequest of the whole snapshot under one resource
 * and scope (their message bytes, from encodeResource/encodeScope).
 * `startTimeMs` is fixed (the proxy's start): prom-client values are
 * cumulative since then.
 */
export function encodeMetricsRequest(
  snapshot: readonly PromMetric[],
  resource: Buffer,
  scope: Buffer,
  startTimeMs: number,
  endTimeMs: number,
): Buffer {
  const times: PointTimes = { startMicros: Math.round(startTimeMs * 1000), endMicros: Math.round(endTimeMs * 1000) };
  const w = new LeanProtoWriter(16 * 1024);
  w.byte(T_RESOURCE_METRICS);
  const rm = w.begin();
  w.byte(T_RM_RESOURCE);
  w.varint(resource.length);
  w.raw(resource);
  w.byte(T_RM_SCOPE_METRICS);
  const sm = w.begin();
  w.byte(T_SM_SCOPE);
  w.varint(scope.length);
  w.raw(scope);
  for (const metric of snapshot) writeMetric(w, metric, times);
  w.end(sm);
  w.end(rm);
  return w.finish();
}
