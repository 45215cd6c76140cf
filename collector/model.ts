/**
 * The collector's internal telemetry records: what the OTLP decoders produce and
 * what the storage layer writes. Field names follow the ClickHouse columns they
 * land in (see collector/storage/sql), not the OTLP message fields.
 */

/** OTLP AnyValue kinds. Stored values are strings (as the OTel ClickHouse exporter does);
 * the kind of every non-string value is kept aside so the query API can give values back typed. */
export type AttributeType = 'string' | 'bool' | 'int' | 'double' | 'array' | 'kvlist' | 'bytes';

/**
 * One attribute as stored. `value` is the ClickHouse string form:
 * string as is, bool `true`/`false`, int as decimal (full int64 precision),
 * double as JS number text (`NaN`, `Infinity`, `-Infinity` for the specials),
 * bytes as base64, array and kvlist as JSON (arrays as JSON arrays of typed values,
 * kvlists as JSON objects; nested ints that are not safe JS integers become strings).
 */
export interface Attribute {
  key: string;
  value: string;
  type: AttributeType;
}

export type SpanKindName = 'Unspecified' | 'Internal' | 'Server' | 'Client' | 'Producer' | 'Consumer';
export type StatusCodeName = 'Unset' | 'Ok' | 'Error';

/** Shared by every span or data point of one ResourceSpans/ResourceMetrics. */
export interface ResourceInfo {
  /** `service.name` attribute, or `unknown_service` when absent. */
  serviceName: string;
  attributes: Attribute[];
  schemaUrl: string;
}

/** Shared by every span or data point of one ScopeSpans/ScopeMetrics. */
export interface ScopeInfo {
  name: string;
  version: string;
  attributes: Attribute[];
  droppedAttributesCount: number;
  schemaUrl: string;
}

export interface SpanEvent {
  timeUnixNano: bigint;
  name: string;
  attributes: Attribute[];
}

export interface SpanLink {
  traceId: string;
  spanId: string;
  traceState: string;
  attributes: Attribute[];
}

/** One accepted span. Ids are lowercase hex; parentSpanId is '' for a root span. */
export interface SpanRecord {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  traceState: string;
  name: string;
  kind: SpanKindName;
  startTimeUnixNano: bigint;
  endTimeUnixNano: bigint;
  statusCode: StatusCodeName;
  statusMessage: string;
  attributes: Attribute[];
  events: SpanEvent[];
  links: SpanLink[];
  /** Low 8 bits: W3C trace flags. */
  flags: number;
  resource: ResourceInfo;
  scope: ScopeInfo;
}

export interface Exemplar {
  filteredAttributes: Attribute[];
  timeUnixNano: bigint;
  value: number;
  spanId: string;
  traceId: string;
}

/** Fields every metric data point row shares (one row per data point). */
export interface MetricPointBase {
  resource: ResourceInfo;
  scope: ScopeInfo;
  metricName: string;
  metricDescription: string;
  metricUnit: string;
  attributes: Attribute[];
  startTimeUnixNano: bigint;
  timeUnixNano: bigint;
  flags: number;
  exemplars: Exemplar[];
}

export interface GaugePoint extends MetricPointBase {
  kind: 'gauge';
  value: number;
}

export interface SumPoint extends MetricPointBase {
  kind: 'sum';
  value: number;
  /** 0 unspecified, 1 delta, 2 cumulative. */
  aggregationTemporality: number;
  isMonotonic: boolean;
}

export interface HistogramPoint extends MetricPointBase {
  kind: 'histogram';
  count: bigint;
  sum: number;
  bucketCounts: bigint[];
  explicitBounds: number[];
  min: number;
  max: number;
  aggregationTemporality: number;
}

export interface ExponentialHistogramPoint extends MetricPointBase {
  kind: 'exponential_histogram';
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
  aggregationTemporality: number;
}

export interface SummaryPoint extends MetricPointBase {
  kind: 'summary';
  count: bigint;
  sum: number;
  quantiles: Array<{ quantile: number; value: number }>;
}

export type MetricPoint = GaugePoint | SumPoint | HistogramPoint | ExponentialHistogramPoint | SummaryPoint;

/**
 * What decoding one export request gives. Items that fail validation are
 * counted in `rejected` and described (first few) in `errors`, so the receiver
 * can answer partial success while keeping the valid items.
 */
export interface DecodeResult<T> {
  items: T[];
  rejected: number;
  /** Human-readable, each naming the item by its path, e.g. `resource_spans[0].scope_spans[1].spans[3].trace_id: expected 16 bytes, got 15`. At most 10 kept. */
  errors: string[];
}
