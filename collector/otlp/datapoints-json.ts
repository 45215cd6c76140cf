/**
 * The five OTLP data point messages in OTLP/JSON → MetricPoint records. Each
 * decoder throws OtlpMalformedError, with a path relative to the point, to
 * reject that point alone; the checks are the protobuf decoders' (datapoints.ts).
 */
import type {
  Exemplar,
  ExponentialHistogramPoint,
  GaugePoint,
  HistogramPoint,
  SumPoint,
  SummaryPoint,
} from '../model.js';
import { attributesFromJson } from './attributes.js';
import {
  checkExplicitBuckets,
  checkPointTime,
  exponentialHistogramPoint,
  gaugePoint,
  histogramPoint,
  sumPoint,
  summaryPoint,
  type MetricInfo,
  type PointCommon,
} from './datapoints.js';
import { SPAN_ID_BYTES, TRACE_ID_BYTES, optionalJsonIdHex } from './ids.js';
import {
  asObject,
  double,
  int64,
  member,
  optArray,
  optDouble,
  optInt32,
  optObject,
  optUint32,
  optUint64,
  type JsonObject,
} from './json-values.js';
import { OtlpMalformedError, rethrowWithin } from './malformed.js';

/** The NumberDataPoint / Exemplar `value` oneof: as_double or as_int (int64, as a number). */
function numberValue(o: JsonObject): number {
  const asDouble = member(o, 'asDouble', 'as_double');
  const asInt = member(o, 'asInt', 'as_int');
  if (asDouble !== undefined && asInt !== undefined) {
    throw new OtlpMalformedError('both as_double and as_int are set; the value is a oneof', 'value');
  }
  if (asInt !== undefined) return Number(int64(asInt, 'as_int'));
  if (asDouble !== undefined) return double(asDouble, 'as_double');
  throw new OtlpMalformedError('neither as_double nor as_int is set', 'value');
}

function uint64List(value: unknown, path: string): bigint[] {
  const list = optArray(value, path);
  const out: bigint[] = [];
  for (let i = 0; i < list.length; i++) out.push(optUint64(list[i], `${path}[${i}]`));
  return out;
}

function doubleList(value: unknown, path: string): number[] {
  const list = optArray(value, path);
  const out: number[] = [];
  for (let i = 0; i < list.length; i++) out.push(double(list[i], `${path}[${i}]`));
  return out;
}

function exemplarFromJson(value: unknown): Exemplar {
  const o = asObject(value, '');
  return {
    filteredAttributes: attributesFromJson(member(o, 'filteredAttributes', 'filtered_attributes'), 'filtered_attributes'),
    timeUnixNano: optUint64(member(o, 'timeUnixNano', 'time_unix_nano'), 'time_unix_nano'),
    value: numberValue(o),
    spanId: optionalJsonIdHex(member(o, 'spanId', 'span_id'), SPAN_ID_BYTES, 'span_id'),
    traceId: optionalJsonIdHex(member(o, 'traceId', 'trace_id'), TRACE_ID_BYTES, 'trace_id'),
  };
}

/** attributes, start_time_unix_nano, time_unix_nano (required), flags, exemplars. */
function commonFromJson(o: JsonObject): PointCommon {
  const time = optUint64(member(o, 'timeUnixNano', 'time_unix_nano'), 'time_unix_nano');
  checkPointTime(time);
  const list = optArray(member(o, 'exemplars'), 'exemplars');
  const exemplars: Exemplar[] = [];
  for (let i = 0; i < list.length; i++) {
    try {
      exemplars.push(exemplarFromJson(list[i]));
    } catch (err) {
      rethrowWithin(err, `exemplars[${i}]`);
    }
  }
  return {
    attributes: attributesFromJson(member(o, 'attributes'), 'attributes'),
    startTimeUnixNano: optUint64(member(o, 'startTimeUnixNano', 'start_time_unix_nano'), 'start_time_unix_nano'),
    timeUnixNano: time,
    flags: optUint32(member(o, 'flags'), 'flags'),
    exemplars,
  };
}

export function numberPointFromJson(value: unknown, m: MetricInfo, isSum: boolean): GaugePoint | SumPoint {
  const o = asObject(value, '');
  const common = commonFromJson(o);
  const v = numberValue(o);
  return isSum ? sumPoint(m, common, v) : gaugePoint(m, common, v);
}

export function histogramPointFromJson(value: unknown, m: MetricInfo): HistogramPoint {
  const o = asObject(value, '');
  const common = commonFromJson(o);
  const bucketCounts = uint64List(member(o, 'bucketCounts', 'bucket_counts'), 'bucket_counts');
  const explicitBounds = doubleList(member(o, 'explicitBounds', 'explicit_bounds'), 'explicit_bounds');
  checkExplicitBuckets(bucketCounts, explicitBounds);
  return histogramPoint(m, common, {
    count: optUint64(member(o, 'count'), 'count'),
    sum: optDouble(member(o, 'sum'), 'sum', NaN),
    bucketCounts,
    explicitBounds,
    min: optDouble(member(o, 'min'), 'min', NaN),
    max: optDouble(member(o, 'max'), 'max', NaN),
  });
}

/** ExponentialHistogramDataPoint.Buckets: the offset, and the counts appended to `counts`. */
function bucketsFromJson(value: unknown, path: string, counts: bigint[]): number {
  const o = optObject(value, path);
  if (o === undefined) return 0;
  const offset = optInt32(member(o, 'offset'), `${path}.offset`);
  for (const c of uint64List(member(o, 'bucketCounts', 'bucket_counts'), `${path}.bucket_counts`)) counts.push(c);
  return offset;
}

export function exponentialHistogramPointFromJson(value: unknown, m: MetricInfo): ExponentialHistogramPoint {
  const o = asObject(value, '');
  const common = commonFromJson(o);
  const positiveBucketCounts: bigint[] = [];
  const negativeBucketCounts: bigint[] = [];
  const positiveOffset = bucketsFromJson(member(o, 'positive'), 'positive', positiveBucketCounts);
  const negativeOffset = bucketsFromJson(member(o, 'negative'), 'negative', negativeBucketCounts);
  return exponentialHistogramPoint(m, common, {
    count: optUint64(member(o, 'count'), 'count'),
    sum: optDouble(member(o, 'sum'), 'sum', NaN),
    scale: optInt32(member(o, 'scale'), 'scale'),
    zeroCount: optUint64(member(o, 'zeroCount', 'zero_count'), 'zero_count'),
    positiveOffset,
    positiveBucketCounts,
    negativeOffset,
    negativeBucketCounts,
    min: optDouble(member(o, 'min'), 'min', NaN),
    max: optDouble(member(o, 'max'), 'max', NaN),
  });
}

export function summaryPointFromJson(value: unknown, m: MetricInfo): SummaryPoint {
  const o = asObject(value, '');
  const common = commonFromJson(o);
  const list = optArray(member(o, 'quantileValues', 'quantile_values'), 'quantile_values');
  const quantiles: Array<{ quantile: number; value: number }> = [];
  for (let i = 0; i < list.length; i++) {
    const path = `quantile_values[${i}]`;
    const q = asObject(list[i], path);
    quantiles.push({
      quantile: optDouble(member(q, 'quantile'), `${path}.quantile`, 0),
      value: optDouble(member(q, 'value'), `${path}.value`, 0),
    });
  }
  return summaryPoint(
    m,
    common,
    optUint64(member(o, 'count'), 'count'),
    optDouble(member(o, 'sum'), 'sum', 0),
    quantiles,
  );
}
