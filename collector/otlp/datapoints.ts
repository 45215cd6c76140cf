/**
 * Metric data point records and the checks both metrics decoders (protobuf
 * and JSON) apply to a point once its fields are read.
 *
 * Absent `optional double` fields (histogram sum, min, max) are NaN, so that
 * "not sent" stays distinguishable from 0; the storage layer decides what to
 * write for them.
 */
import type {
  Attribute,
  Exemplar,
  ExponentialHistogramPoint,
  GaugePoint,
  HistogramPoint,
  ResourceInfo,
  ScopeInfo,
  SumPoint,
  SummaryPoint,
} from '../model.js';
import { OtlpMalformedError } from './malformed.js';

/** What a Metric and its data message say about all of their points. */
export interface MetricInfo {
  resource: ResourceInfo;
  scope: ScopeInfo;
  name: string;
  description: string;
  unit: string;
  /** 0 unspecified, 1 delta, 2 cumulative (Sum, Histogram, ExponentialHistogram). */
  aggregationTemporality: number;
  /** Sum only. */
  isMonotonic: boolean;
}

/** Fields every data point has. */
export interface PointCommon {
  attributes: Attribute[];
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  flags: number;
  exemplars: Exemplar[];
}

export const AGGREGATION_TEMPORALITY_BY_NAME: ReadonlyMap<string, number> = new Map([
  ['AGGREGATION_TEMPORALITY_UNSPECIFIED', 0],
  ['AGGREGATION_TEMPORALITY_DELTA', 1],
  ['AGGREGATION_TEMPORALITY_CUMULATIVE', 2],
]);

/** The data member names of Metric, for paths and messages. */
export type MetricDataKind = 'gauge' | 'sum' | 'histogram' | 'exponential_histogram' | 'summary';

/** "Data points with the 0 value for TimeUnixNano SHOULD be rejected" (metrics.proto). */
export function checkPointTime(time: bigint): void {
  if (time === 0n) throw new OtlpMalformedError('is 0 (required)', 'time_unix_nano');
}

/** Buckets are all-or-nothing: no counts and no bounds, or one more count than bounds. */
export function checkExplicitBuckets(counts: readonly bigint[], bounds: readonly number[]): void {
  const ok = counts.length === 0 ? bounds.length === 0 : counts.length === bounds.length + 1;
  if (!ok) {
    throw new OtlpMalformedError(
      `${counts.length} bucket counts for ${bounds.length} explicit bounds (expected ${bounds.length + 1}, or none of either)`,
      'bucket_counts',
    );
  }
}

export function gaugePoint(m: MetricInfo, c: PointCommon, value: number): GaugePoint {
  return {
    resource: m.resource,
    scope: m.scope,
    metricName: m.name,
    metricDescription: m.description,
    metricUnit: m.unit,
    attributes: c.attributes,
    startTimeUnixNano: c.startTimeUnixNano,
    timeUnixNano: c.timeUnixNano,
    flags: c.flags,
    exemplars: c.exemplars,
    kind: 'gauge',
    value,
  };
}

export function sumPoint(m: MetricInfo, c: PointCommon, value: number): SumPoint {
  return {
    resource: m.resource,
    scope: m.scope,
    metricName: m.name,
    metricDescription: m.description,
    metricUnit: m.unit,
    attributes: c.attributes,
    startTimeUnixNano: c.startTimeUnixNano,
    timeUnixNano: c.timeUnixNano,
    flags: c.flags,
    exemplars: c.exemplars,
    kind: 'sum',
    value,
    aggregationTemporality: m.aggregationTemporality,
    isMonotonic: m.isMonotonic,
  };
}

export interface HistogramValues {
  count: bigint;
  sum: number;
  bucketCounts: bigint[];
  explicitBounds: number[];
  min: number;
  max: number;
}

export function histogramPoint(m: MetricInfo, c: PointCommon, h: HistogramValues): HistogramPoint {
  return {
    resource: m.resource,
    scope: m.scope,
    metricName: m.name,
    metricDescription: m.description,
    metricUnit: m.unit,
    attributes: c.attributes,
    startTimeUnixNano: c.startTimeUnixNano,
    timeUnixNano: c.timeUnixNano,
    flags: c.flags,
    exemplars: c.exemplars,
    kind: 'histogram',
    count: h.count,
    sum: h.sum,
    bucketCounts: h.bucketCounts,
    explicitBounds: h.explicitBounds,
    min: h.min,
    max: h.max,
    aggregationTemporality: m.aggregationTemporality,
  };
}

export interface ExponentialHistogramValues {
  count: bigint;
  sum: number;
  scale: number;
  zeroCount: bigint;
  positiveOffset: number;
  positiveBucketCounts: bigint[];
  negativeOffset: number;
  negativeBucketCounts: bigint[];
  min: number;
  max: number;
}

export function exponentialHistogramPoint(
  m: MetricInfo,
  c: PointCommon,
  h: ExponentialHistogramValues,
): ExponentialHistogramPoint {
  return {
    resource: m.resource,
    scope: m.scope,
    metricName: m.name,
    metricDescription: m.description,
    metricUnit: m.unit,
    attributes: c.attributes,
    startTimeUnixNano: c.startTimeUnixNano,
    timeUnixNano: c.timeUnixNano,
    flags: c.flags,
    exemplars: c.exemplars,
    kind: 'exponential_histogram',
    count: h.count,
    sum: h.sum,
    scale: h.scale,
    zeroCount: h.zeroCount,
    positiveOffset: h.positiveOffset,
    positiveBucketCounts: h.positiveBucketCounts,
    negativeOffset: h.negativeOffset,
    negativeBucketCounts: h.negativeBucketCounts,
    min: h.min,
    max: h.max,
    aggregationTemporality: m.aggregationTemporality,
  };
}

export function summaryPoint(
  m: MetricInfo,
  c: PointCommon,
  count: bigint,
  sum: number,
  quantiles: Array<{ quantile: number; value: number }>,
): SummaryPoint {
  return {
    resource: m.resource,
    scope: m.scope,
    metricName: m.name,
    metricDescription: m.description,
    metricUnit: m.unit,
    attributes: c.attributes,
    startTimeUnixNano: c.startTimeUnixNano,
    timeUnixNano: c.timeUnixNano,
    flags: c.flags,
    exemplars: c.exemplars,
    kind: 'summary',
    count,
    sum,
    quantiles,
  };
}
