/**
 * ExportMetricsServiceRequest (protobuf) → MetricPoint, one record per data point.
 *
 * Framing down to each data point's length prefix (request, ResourceMetrics,
 * ScopeMetrics, Metric, and the Gauge/Sum/... message) must be sound or the
 * whole request is malformed; a problem inside one data point rejects only
 * that point. A Metric is read twice (its fields are few): first for the
 * name, description, unit and temporality, which protobuf may send after the
 * points, so that every record is complete when it is made.
 */
import type { DecodeResult, MetricPoint, ResourceInfo, ScopeInfo } from '../model.js';
import {
  decodeExponentialHistogramPoint,
  decodeHistogramPoint,
  decodeNumberPoint,
  decodeSummaryPoint,
} from './datapoints-proto.js';
import type { MetricDataKind, MetricInfo } from './datapoints.js';
import { OtlpMalformedError, isMalformed, rethrowWithin } from './malformed.js';
import { decodeResourceProto, decodeScopeProto, emptyResourceInfo, emptyScopeInfo } from './resource.js';
import { DecodeCollector } from './result.js';
import { ProtoReader, WIRE_LEN, WIRE_VARINT } from './wire.js';

// Metric { name 1, description 2, unit 3, gauge 5, sum 7, histogram 9, exponential_histogram 10, summary 11, metadata 12 }.
const METRIC_GAUGE = 5;
const METRIC_SUM = 7;
const METRIC_HISTOGRAM = 9;
const METRIC_EXPONENTIAL_HISTOGRAM = 10;
const METRIC_SUMMARY = 11;

const DATA_KINDS: ReadonlyMap<number, MetricDataKind> = new Map<number, MetricDataKind>([
  [METRIC_GAUGE, 'gauge'],
  [METRIC_SUM, 'sum'],
  [METRIC_HISTOGRAM, 'histogram'],
  [METRIC_EXPONENTIAL_HISTOGRAM, 'exponential_histogram'],
  [METRIC_SUMMARY, 'summary'],
]);

export function decodeMetricsProto(body: Uint8Array): DecodeResult<MetricPoint> {
  const r = new ProtoReader(body);
  const out = new DecodeCollector<MetricPoint>();
  const end = r.buf.length;
  let ri = 0;
  while (r.pos < end) {
    const field = r.tag(end);
    if (field !== 1) {
      r.skip(end);
      continue;
    }
    try {
      r.expect(WIRE_LEN);
      decodeResourceMetrics(r, r.lengthDelimited(end), ri, out);
    } catch (err) {
      rethrowWithin(err, `resource_metrics[${ri}]`);
    }
    ri++;
  }
  return out.result();
}

/** ResourceMetrics { resource 1, scope_metrics 2, schema_url 3 }. */
function decodeResourceMetrics(r: ProtoReader, end: number, ri: number, out: DecodeCollector<MetricPoint>): void {
  const resource = emptyResourceInfo();
  let si = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 1) {
        r.expect(WIRE_LEN);
        decodeResourceProto(r, r.lengthDelimited(end), resource);
      } else if (field === 2) {
        r.expect(WIRE_LEN);
        decodeScopeMetrics(r, r.lengthDelimited(end), resource, `resource_metrics[${ri}].scope_metrics[${si}]`, out);
        si++;
      } else if (field === 3) {
        r.expect(WIRE_LEN);
        resource.schemaUrl = r.string(end);
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, field === 1 ? 'resource' : field === 2 ? `scope_metrics[${si}]` : field === 3 ? 'schema_url' : '');
  }
}

/** ScopeMetrics { scope 1, metrics 2, schema_url 3 }. `path` (of this ScopeMetrics) prefixes rejected points. */
function decodeScopeMetrics(
  r: ProtoReader,
  end: number,
  resource: ResourceInfo,
  path: string,
  out: DecodeCollector<MetricPoint>,
): void {
  const scope = emptyScopeInfo();
  let mi = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 2) {
        r.expect(WIRE_LEN);
        decodeMetric(r, r.lengthDelimited(end), resource, scope, `${path}.metrics[${mi}]`, out);
        mi++;
      } else if (field === 1) {
        r.expect(WIRE_LEN);
        decodeScopeProto(r, r.lengthDelimited(end), scope);
      } else if (field === 3) {
        r.expect(WIRE_LEN);
        scope.schemaUrl = r.string(end);
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, field === 1 ? 'scope' : field === 2 ? `metrics[${mi}]` : field === 3 ? 'schema_url' : '');
  }
}

/** One Metric: its descriptive fields, then the points of its one data member. */
function decodeMetric(
  r: ProtoReader,
  end: number,
  resource: ResourceInfo,
  scope: ScopeInfo,
  path: string,
  out: DecodeCollector<MetricPoint>,
): void {
  const m: MetricInfo = {
    resource,
    scope,
    name: '',
    description: '',
    unit: '',
    aggregationTemporality: 0,
    isMonotonic: false,
  };
  let dataField = 0;
  let dataStart = 0;
  let dataEnd = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      switch (field) {
        case 1:
          r.expect(WIRE_LEN);
          m.name = r.string(end);
          break;
        case 2:
          r.expect(WIRE_LEN);
          m.description = r.string(end);
          break;
        case 3:
          r.expect(WIRE_LEN);
          m.unit = r.string(end);
          break;
        case METRIC_GAUGE:
        case METRIC_SUM:
        case METRIC_HISTOGRAM:
        case METRIC_EXPONENTIAL_HISTOGRAM:
        case METRIC_SUMMARY: {
          r.expect(WIRE_LEN);
          const e = r.lengthDelimited(end);
          if (dataField !== 0) {
            throw new OtlpMalformedError(
              `has both ${DATA_KINDS.get(dataField)} and ${DATA_KINDS.get(field)}; the data is a oneof`,
            );
          }
          dataField = field;
          dataStart = r.pos;
          dataEnd = e;
          r.pos = e;
          break;
        }
        default:
          r.skip(end);
      }
    }
    field = dataField;
    if (dataField !== 0) {
      r.pos = dataStart;
      decodeData(r, dataEnd, dataField, m, `${path}.${DATA_KINDS.get(dataField)}`, out);
      r.pos = end;
    }
  } catch (err) {
    rethrowWithin(err, METRIC_FIELDS[field] ?? '');
  }
}

const METRIC_FIELDS: readonly string[] = [
  '',
  'name',
  'description',
  'unit',
  '',
  'gauge',
  '',
  'sum',
  '',
  'histogram',
  'exponential_histogram',
  'summary',
];

/**
 * Gauge { data_points 1 }, Sum { data_points 1, aggregation_temporality 2, is_monotonic 3 },
 * Histogram / ExponentialHistogram { data_points 1, aggregation_temporality 2 }, Summary { data_points 1 }.
 * The first pass reads the metric-wide fields (sent after the points by most encoders);
 * the second decodes the points, each accepted or rejected on its own.
 */
function decodeData(
  r: ProtoReader,
  end: number,
  dataField: number,
  m: MetricInfo,
  path: string,
  out: DecodeCollector<MetricPoint>,
): void {
  const start = r.pos;
  const hasTemporality = dataField !== METRIC_GAUGE && dataField !== METRIC_SUMMARY;
  let field = 0;
  let k = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 1) {
        r.skip(end);
        k++;
      } else if (field === 2 && hasTemporality) {
        r.expect(WIRE_VARINT);
        m.aggregationTemporality = r.int32(end);
      } else if (field === 3 && dataField === METRIC_SUM) {
        r.expect(WIRE_VARINT);
        m.isMonotonic = r.bool(end);
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, field === 1 ? `data_points[${k}]` : field === 2 ? 'aggregation_temporality' : field === 3 ? 'is_monotonic' : '');
  }
  r.pos = start;
  k = 0;
  while (r.pos < end) {
    field = r.tag(end);
    if (field !== 1) {
      r.skip(end);
      continue;
    }
    // A point sent with another wire type can still be skipped: reject just that one.
    let pointEnd = -1;
    try {
      if (r.wireType === WIRE_LEN) pointEnd = r.lengthDelimited(end);
    } catch (err) {
      rethrowWithin(err, `data_points[${k}]`);
    }
    try {
      r.expect(WIRE_LEN);
      out.items.push(decodePoint(r, pointEnd, dataField, m));
    } catch (err) {
      if (!isMalformed(err)) throw err;
      out.reject(err.within(`${path}.data_points[${k}]`));
      if (pointEnd < 0) r.skip(end);
    }
    if (pointEnd >= 0) r.pos = pointEnd;
    k++;
  }
}

function decodePoint(r: ProtoReader, end: number, dataField: number, m: MetricInfo): MetricPoint {
  switch (dataField) {
    case METRIC_GAUGE:
      return decodeNumberPoint(r, end, m, false);
    case METRIC_SUM:
      return decodeNumberPoint(r, end, m, true);
    case METRIC_HISTOGRAM:
      return decodeHistogramPoint(r, end, m);
    case METRIC_EXPONENTIAL_HISTOGRAM:
      return decodeExponentialHistogramPoint(r, end, m);
    default:
      return decodeSummaryPoint(r, end, m);
  }
}
