/**
 * The five OTLP data point messages (protobuf) → MetricPoint records. Each
 * decoder reads one point in [r.pos, end) and throws OtlpMalformedError, with
 * a path relative to the point, to reject it alone.
 * Field numbers: opentelemetry/proto/metrics/v1/metrics.proto.
 */
import type {
  Attribute,
  Exemplar,
  ExponentialHistogramPoint,
  GaugePoint,
  HistogramPoint,
  SumPoint,
  SummaryPoint,
} from '../model.js';
import { dedupeAttributes, pushKeyValue } from './attributes.js';
import {
  checkExplicitBuckets,
  checkPointTime,
  exponentialHistogramPoint,
  gaugePoint,
  histogramPoint,
  sumPoint,
  summaryPoint,
  type MetricInfo,
} from './datapoints.js';
import { SPAN_ID_BYTES, TRACE_ID_BYTES, optionalIdHex } from './ids.js';
import { OtlpMalformedError, rethrowWithin } from './malformed.js';
import { ProtoReader, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from './wire.js';

/** Field names by number, for error paths; '' where the decoder names the element itself. */
type FieldNames = readonly string[];

function fieldSegment(names: FieldNames, field: number, exemplarField: number, exemplarCount: number): string {
  if (field === exemplarField) return `exemplars[${exemplarCount}]`;
  return names[field] ?? '';
}

const NUMBER_FIELDS: FieldNames = ['', 'labels', 'start_time_unix_nano', 'time_unix_nano', 'as_double', '', 'as_int', '', 'flags'];

/** NumberDataPoint { attributes 7, start_time_unix_nano 2, time_unix_nano 3, as_double 4, as_int 6 (sfixed64), exemplars 5, flags 8 }. */
export function decodeNumberPoint(r: ProtoReader, end: number, m: MetricInfo, isSum: boolean): GaugePoint | SumPoint {
  const attributes: Attribute[] = [];
  const exemplars: Exemplar[] = [];
  let startTime = 0n;
  let time = 0n;
  let value = 0;
  let hasValue = false;
  let flags = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      switch (field) {
        case 7:
          pushKeyValue(r, end, attributes, 'attributes');
          break;
        case 2:
          r.expect(WIRE_FIXED64);
          startTime = r.fixed64(end);
          break;
        case 3:
          r.expect(WIRE_FIXED64);
          time = r.fixed64(end);
          break;
        case 4:
          r.expect(WIRE_FIXED64);
          value = r.double(end);
          hasValue = true;
          break;
        case 6:
          r.expect(WIRE_FIXED64);
          value = r.sfixed64Number(end);
          hasValue = true;
          break;
        case 5:
          r.expect(WIRE_LEN);
          exemplars.push(decodeExemplar(r, r.lengthDelimited(end)));
          break;
        case 8:
          r.expect(WIRE_VARINT);
          flags = r.uint32(end);
          break;
        default:
          r.skip(end);
      }
    }
  } catch (err) {
    rethrowWithin(err, fieldSegment(NUMBER_FIELDS, field, 5, exemplars.length));
  }
  checkPointTime(time);
  if (!hasValue) throw new OtlpMalformedError('neither as_double nor as_int is set', 'value');
  const common = { attributes: dedupeAttributes(attributes), startTimeUnixNano: startTime, timeUnixNano: time, flags, exemplars };
  return isSum ? sumPoint(m, common, value) : gaugePoint(m, common, value);
}

const HISTOGRAM_FIELDS: FieldNames = [
  '',
  'labels',
  'start_time_unix_nano',
  'time_unix_nano',
  'count',
  'sum',
  'bucket_counts',
  'explicit_bounds',
  '',
  '',
  'flags',
  'min',
  'max',
];

/**
 * HistogramDataPoint { attributes 9, start_time_unix_nano 2, time_unix_nano 3, count 4 (fixed64),
 * sum 5, bucket_counts 6 (repeated fixed64), explicit_bounds 7 (repeated double), exemplars 8,
 * flags 10, min 11, max 12 }.
 */
export function decodeHistogramPoint(r: ProtoReader, end: number, m: MetricInfo): HistogramPoint {
  const attributes: Attribute[] = [];
  const exemplars: Exemplar[] = [];
  const bucketCounts: bigint[] = [];
  const explicitBounds: number[] = [];
  let startTime = 0n;
  let time = 0n;
  let count = 0n;
  let sum = NaN;
  let min = NaN;
  let max = NaN;
  let flags = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      switch (field) {
        case 9:
          pushKeyValue(r, end, attributes, 'attributes');
          break;
        case 2:
          r.expect(WIRE_FIXED64);
          startTime = r.fixed64(end);
          break;
        case 3:
          r.expect(WIRE_FIXED64);
          time = r.fixed64(end);
          break;
        case 4:
          r.expect(WIRE_FIXED64);
          count = r.fixed64(end);
          break;
        case 5:
          r.expect(WIRE_FIXED64);
          sum = r.double(end);
          break;
        case 6:
          r.repeatedFixed64(end, bucketCounts);
          break;
        case 7:
          r.repeatedDouble(end, explicitBounds);
          break;
        case 8:
          r.expect(WIRE_LEN);
          exemplars.push(decodeExemplar(r, r.lengthDelimited(end)));
          break;
        case 10:
          r.expect(WIRE_VARINT);
          flags = r.uint32(end);
          break;
        case 11:
          r.expect(WIRE_FIXED64);
          min = r.double(end);
          break;
        case 12:
          r.expect(WIRE_FIXED64);
          max = r.double(end);
          break;
        default:
          r.skip(end);
      }
    }
  } catch (err) {
    rethrowWithin(err, fieldSegment(HISTOGRAM_FIELDS, field, 8, exemplars.length));
  }
  checkPointTime(time);
  checkExplicitBuckets(bucketCounts, explicitBounds);
  return histogramPoint(
    m,
    { attributes: dedupeAttributes(attributes), startTimeUnixNano: startTime, timeUnixNano: time, flags, exemplars },
    { count, sum, bucketCounts, explicitBounds, min, max },
  );
}

const EXPONENTIAL_FIELDS: FieldNames = [
  '',
  '',
  'start_time_unix_nano',
  'time_unix_nano',
  'count',
  'sum',
  'scale',
  'zero_count',
  'positive',
  'negative',
  'flags',
  '',
  'min',
  'max',
  'zero_threshold',
];

/**
 * ExponentialHistogramDataPoint { attributes 1, start_time_unix_nano 2, time_unix_nano 3,
 * count 4 (fixed64), sum 5, scale 6 (sint32), zero_count 7 (fixed64), positive 8, negative 9,
 * flags 10, exemplars 11, min 12, max 13, zero_threshold 14 (not stored) }.
 */
export function decodeExponentialHistogramPoint(r: ProtoReader, end: number, m: MetricInfo): ExponentialHistogramPoint {
  const attributes: Attribute[] = [];
  const exemplars: Exemplar[] = [];
  const positiveBucketCounts: bigint[] = [];
  const negativeBucketCounts: bigint[] = [];
  let positiveOffset = 0;
  let negativeOffset = 0;
  let startTime = 0n;
  let time = 0n;
  let count = 0n;
  let sum = NaN;
  let scale = 0;
  let zeroCount = 0n;
  let min = NaN;
  let max = NaN;
  let flags = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      switch (field) {
        case 1:
          pushKeyValue(r, end, attributes, 'attributes');
          break;
        case 2:
          r.expect(WIRE_FIXED64);
          startTime = r.fixed64(end);
          break;
        case 3:
          r.expect(WIRE_FIXED64);
          time = r.fixed64(end);
          break;
        case 4:
          r.expect(WIRE_FIXED64);
          count = r.fixed64(end);
          break;
        case 5:
          r.expect(WIRE_FIXED64);
          sum = r.double(end);
          break;
        case 6:
          r.expect(WIRE_VARINT);
          scale = r.sint32(end);
          break;
        case 7:
          r.expect(WIRE_FIXED64);
          zeroCount = r.fixed64(end);
          break;
        case 8:
          r.expect(WIRE_LEN);
          positiveOffset = decodeBuckets(r, r.lengthDelimited(end), positiveBucketCounts);
          break;
        case 9:
          r.expect(WIRE_LEN);
          negativeOffset = decodeBuckets(r, r.lengthDelimited(end), negativeBucketCounts);
          break;
        case 10:
          r.expect(WIRE_VARINT);
          flags = r.uint32(end);
          break;
        case 11:
          r.expect(WIRE_LEN);
          exemplars.push(decodeExemplar(r, r.lengthDelimited(end)));
          break;
        case 12:
          r.expect(WIRE_FIXED64);
          min = r.double(end);
          break;
        case 13:
          r.expect(WIRE_FIXED64);
          max = r.double(end);
          break;
        default:
          r.skip(end);
      }
    }
  } catch (err) {
    rethrowWithin(err, fieldSegment(EXPONENTIAL_FIELDS, field, 11, exemplars.length));
  }
  checkPointTime(time);
  return exponentialHistogramPoint(
    m,
    { attributes: dedupeAttributes(attributes), startTimeUnixNano: startTime, timeUnixNano: time, flags, exemplars },
    { count, sum, scale, zeroCount, positiveOffset, positiveBucketCounts, negativeOffset, negativeBucketCounts, min, max },
  );
}

/** ExponentialHistogramDataPoint.Buckets { offset 1 (sint32), bucket_counts 2 (repeated uint64) }: returns the offset. */
function decodeBuckets(r: ProtoReader, end: number, counts: bigint[]): number {
  let offset = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 1) {
        r.expect(WIRE_VARINT);
        offset = r.sint32(end);
      } else if (field === 2) r.repeatedUint64(end, counts);
      else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, field === 1 ? 'offset' : field === 2 ? 'bucket_counts' : '');
  }
  return offset;
}

const SUMMARY_FIELDS: FieldNames = ['', 'labels', 'start_time_unix_nano', 'time_unix_nano', 'count', 'sum', '', '', 'flags'];

/**
 * SummaryDataPoint { attributes 7, start_time_unix_nano 2, time_unix_nano 3, count 4 (fixed64),
 * sum 5, quantile_values 6 (ValueAtQuantile { quantile 1, value 2 }), flags 8 }.
 */
export function decodeSummaryPoint(r: ProtoReader, end: number, m: MetricInfo): SummaryPoint {
  const attributes: Attribute[] = [];
  const quantiles: Array<{ quantile: number; value: number }> = [];
  let startTime = 0n;
  let time = 0n;
  let count = 0n;
  let sum = 0;
  let flags = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      switch (field) {
        case 7:
          pushKeyValue(r, end, attributes, 'attributes');
          break;
        case 2:
          r.expect(WIRE_FIXED64);
          startTime = r.fixed64(end);
          break;
        case 3:
          r.expect(WIRE_FIXED64);
          time = r.fixed64(end);
          break;
        case 4:
          r.expect(WIRE_FIXED64);
          count = r.fixed64(end);
          break;
        case 5:
          r.expect(WIRE_FIXED64);
          sum = r.double(end);
          break;
        case 6:
          r.expect(WIRE_LEN);
          quantiles.push(decodeValueAtQuantile(r, r.lengthDelimited(end)));
          break;
        case 8:
          r.expect(WIRE_VARINT);
          flags = r.uint32(end);
          break;
        default:
          r.skip(end);
      }
    }
  } catch (err) {
    rethrowWithin(err, field === 6 ? `quantile_values[${quantiles.length}]` : (SUMMARY_FIELDS[field] ?? ''));
  }
  checkPointTime(time);
  return summaryPoint(
    m,
    { attributes: dedupeAttributes(attributes), startTimeUnixNano: startTime, timeUnixNano: time, flags, exemplars: [] },
    count,
    sum,
    quantiles,
  );
}

function decodeValueAtQuantile(r: ProtoReader, end: number): { quantile: number; value: number } {
  let quantile = 0;
  let value = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 1) {
        r.expect(WIRE_FIXED64);
        quantile = r.double(end);
      } else if (field === 2) {
        r.expect(WIRE_FIXED64);
        value = r.double(end);
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, field === 1 ? 'quantile' : field === 2 ? 'value' : '');
  }
  return { quantile, value };
}

const EXEMPLAR_FIELDS: FieldNames = ['', 'filtered_labels', 'time_unix_nano', 'as_double', 'span_id', 'trace_id', 'as_int', ''];

/** Exemplar { filtered_attributes 7, time_unix_nano 2, as_double 3, as_int 6 (sfixed64), span_id 4, trace_id 5 }. */
function decodeExemplar(r: ProtoReader, end: number): Exemplar {
  const filteredAttributes: Attribute[] = [];
  let time = 0n;
  let value = 0;
  let hasValue = false;
  let spanIdStart = 0;
  let spanIdLen = 0;
  let traceIdStart = 0;
  let traceIdLen = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      switch (field) {
        case 7:
          pushKeyValue(r, end, filteredAttributes, 'filtered_attributes');
          break;
        case 2:
          r.expect(WIRE_FIXED64);
          time = r.fixed64(end);
          break;
        case 3:
          r.expect(WIRE_FIXED64);
          value = r.double(end);
          hasValue = true;
          break;
        case 6:
          r.expect(WIRE_FIXED64);
          value = r.sfixed64Number(end);
          hasValue = true;
          break;
        case 4:
        case 5: {
          r.expect(WIRE_LEN);
          const e = r.lengthDelimited(end);
          if (field === 4) {
            spanIdStart = r.pos;
            spanIdLen = e - r.pos;
          } else {
            traceIdStart = r.pos;
            traceIdLen = e - r.pos;
          }
          r.pos = e;
          break;
        }
        default:
          r.skip(end);
      }
    }
  } catch (err) {
    rethrowWithin(err, EXEMPLAR_FIELDS[field] ?? '');
  }
  if (!hasValue) throw new OtlpMalformedError('neither as_double nor as_int is set', 'value');
  return {
    filteredAttributes: dedupeAttributes(filteredAttributes),
    timeUnixNano: time,
    value,
    spanId: optionalIdHex(r, spanIdStart, spanIdLen, SPAN_ID_BYTES, 'span_id'),
    traceId: optionalIdHex(r, traceIdStart, traceIdLen, TRACE_ID_BYTES, 'trace_id'),
  };
}
