import type { Attribute, MetricPoint, MetricPointBase, ResourceInfo, ScopeInfo, SpanRecord } from '../model.js';
import type { EdgeCall } from '../pipeline/edge-call.js';

/**
 * JSONEachRow lines for the tables whose spool files are JSON (edge calls and
 * metrics; spans are RowBinary, span-row-binary.ts). Written by hand: one string
 * concatenation per row, JSON.stringify only for strings, and the resource and
 * scope parts built once per ResourceSpans / ScopeSpans (shared objects).
 */

const NANOS_PER_SECOND = 1_000_000_000n;

/** DateTime64(9) text: `<seconds>.<9 digits>`. ClickHouse parses it without loss. */
export function nanosText(nanos: bigint): string {
  const seconds = nanos / NANOS_PER_SECOND;
  const fraction = (nanos % NANOS_PER_SECOND).toString();
  return `${seconds}.${'000000000'.slice(fraction.length)}${fraction}`;
}

/** `{"k":"v",...}` of the stored string values. */
function valuesJson(attributes: readonly Attribute[]): string {
  if (attributes.length === 0) return '{}';
  let out = '{';
  for (let i = 0; i < attributes.length; i++) {
    const attribute = attributes[i] as Attribute;
    if (i > 0) out += ',';
    out += JSON.stringify(attribute.key) + ':' + JSON.stringify(attribute.value);
  }
  return out + '}';
}

/** `{"k":"int",...}` for the attributes whose value is not a string. */
function typesJson(attributes: readonly Attribute[]): string {
  let out = '{';
  let first = true;
  for (let i = 0; i < attributes.length; i++) {
    const attribute = attributes[i] as Attribute;
    if (attribute.type === 'string') continue;
    if (!first) out += ',';
    out += JSON.stringify(attribute.key) + ':"' + attribute.type + '"';
    first = false;
  }
  return out + '}';
}

const resourceParts = new WeakMap<ResourceInfo, string>();
const scopeParts = new WeakMap<ScopeInfo, string>();

function resourcePart(resource: ResourceInfo): string {
  let part = resourceParts.get(resource);
  if (part === undefined) {
    part =
      ',"ServiceName":' + JSON.stringify(resource.serviceName) +
      ',"ResourceAttributes":' + valuesJson(resource.attributes) +
      ',"ResourceAttributeTypes":' + typesJson(resource.attributes);
    resourceParts.set(resource, part);
  }
  return part;
}

function scopePart(scope: ScopeInfo): string {
  let part = scopeParts.get(scope);
  if (part === undefined) {
    part = ',"ScopeName":' + JSON.stringify(scope.name) + ',"ScopeVersion":' + JSON.stringify(scope.version);
    scopeParts.set(scope, part);
  }
  return part;
}

function eventsPart(span: SpanRecord): string {
  const events = span.events;
  if (events.length === 0) {
    return ',"Events.Timestamp":[],"Events.Name":[],"Events.Attributes":[],"Events.AttributeTypes":[]';
  }
  let times = '';
  let names = '';
  let values = '';
  let types = '';
  for (let i = 0; i < events.length; i++) {
    const event = events[i]!;
    const sep = i > 0 ? ',' : '';
    times += sep + '"' + nanosText(event.timeUnixNano) + '"';
    names += sep + JSON.stringify(event.name);
    values += sep + valuesJson(event.attributes);
    types += sep + typesJson(event.attributes);
  }
  return ',"Events.Timestamp":[' + times + '],"Events.Name":[' + names + '],"Events.Attributes":[' + values + '],"Events.AttributeTypes":[' + types + ']';
}

function linksPart(span: SpanRecord): string {
  const links = span.links;
  if (links.length === 0) {
    return ',"Links.TraceId":[],"Links.SpanId":[],"Links.TraceState":[],"Links.Attributes":[],"Links.AttributeTypes":[]';
  }
  let traceIds = '';
  let spanIds = '';
  let states = '';
  let values = '';
  let types = '';
  for (let i = 0; i < links.length; i++) {
    const link = links[i]!;
    const sep = i > 0 ? ',' : '';
    traceIds += sep + '"' + link.traceId + '"';
    spanIds += sep + '"' + link.spanId + '"';
    states += sep + JSON.stringify(link.traceState);
    values += sep + valuesJson(link.attributes);
    types += sep + typesJson(link.attributes);
  }
  return ',"Links.TraceId":[' + traceIds + '],"Links.SpanId":[' + spanIds + '],"Links.TraceState":[' + states + '],"Links.Attributes":[' + values + '],"Links.AttributeTypes":[' + types + ']';
}

/**
 * One otel_traces row as JSON. Not the spool format (spans travel as RowBinary,
 * span-row-binary.ts): the benchmark's JSON comparison and the test that both
 * forms store the same row use it. Ids are hex from the decoder, so they need no escaping.
 */
export function spanRow(span: SpanRecord): string {
  return (
    '{"Timestamp":"' + nanosText(span.startTimeUnixNano) +
    '","TraceId":"' + span.traceId +
    '","SpanId":"' + span.spanId +
    '","ParentSpanId":"' + span.parentSpanId +
    '","TraceState":' + JSON.stringify(span.traceState) +
    ',"SpanName":' + JSON.stringify(span.name) +
    ',"SpanKind":"' + span.kind + '"' +
    resourcePart(span.resource) +
    scopePart(span.scope) +
    ',"SpanAttributes":' + valuesJson(span.attributes) +
    ',"SpanAttributeTypes":' + typesJson(span.attributes) +
    ',"Duration":' + (span.endTimeUnixNano - span.startTimeUnixNano).toString() +
    ',"StatusCode":"' + span.statusCode +
    '","StatusMessage":' + JSON.stringify(span.statusMessage) +
    eventsPart(span) +
    linksPart(span) +
    '}\n'
  );
}

export function edgeCallRow(call: EdgeCall): string {
  return (
    '{"Timestamp":"' + nanosText(call.timeUnixNano) +
    '","Client":' + JSON.stringify(call.client) +
    ',"Server":' + JSON.stringify(call.server) +
    ',"ConnectionType":"' + call.connectionType +
    '","ClientDuration":' + call.clientDurationNanos +
    ',"ServerDuration":' + call.serverDurationNanos +
    ',"Failed":' + (call.failed ? 1 : 0) +
    '}\n'
  );
}

/** JSON numbers cannot say NaN or Infinity; ClickHouse reads them from strings. */
function floatJson(value: number): string {
  return Number.isFinite(value) ? String(value) : '"' + String(value).toLowerCase().replace('infinity', 'inf') + '"';
}

function floatArrayJson(values: readonly number[]): string {
  let out = '[';
  for (let i = 0; i < values.length; i++) out += (i > 0 ? ',' : '') + floatJson(values[i] as number);
  return out + ']';
}

function bigintArrayJson(values: readonly bigint[]): string {
  return '[' + values.join(',') + ']';
}

function exemplarsPart(point: MetricPointBase): string {
  let times = '';
  let values = '';
  let spanIds = '';
  let traceIds = '';
  let attributes = '';
  for (let i = 0; i < point.exemplars.length; i++) {
    const exemplar = point.exemplars[i]!;
    const sep = i > 0 ? ',' : '';
    times += sep + '"' + nanosText(exemplar.timeUnixNano) + '"';
    values += sep + floatJson(exemplar.value);
    spanIds += sep + '"' + exemplar.spanId + '"';
    traceIds += sep + '"' + exemplar.traceId + '"';
    attributes += sep + valuesJson(exemplar.filteredAttributes);
  }
  return (
    ',"Exemplars.FilteredAttributes":[' + attributes +
    '],"Exemplars.TimeUnix":[' + times +
    '],"Exemplars.Value":[' + values +
    '],"Exemplars.SpanId":[' + spanIds +
    '],"Exemplars.TraceId":[' + traceIds + ']'
  );
}

/** The columns every metric table shares, as the opening of a row. */
function metricBasePart(point: MetricPointBase): string {
  const resource = point.resource;
  const scope = point.scope;
  return (
    '{"ResourceAttributes":' + valuesJson(resource.attributes) +
    ',"ResourceSchemaUrl":' + JSON.stringify(resource.schemaUrl) +
    ',"ScopeName":' + JSON.stringify(scope.name) +
    ',"ScopeVersion":' + JSON.stringify(scope.version) +
    ',"ScopeAttributes":' + valuesJson(scope.attributes) +
    ',"ScopeDroppedAttrCount":' + scope.droppedAttributesCount +
    ',"ScopeSchemaUrl":' + JSON.stringify(scope.schemaUrl) +
    ',"ServiceName":' + JSON.stringify(resource.serviceName) +
    ',"MetricName":' + JSON.stringify(point.metricName) +
    ',"MetricDescription":' + JSON.stringify(point.metricDescription) +
    ',"MetricUnit":' + JSON.stringify(point.metricUnit) +
    ',"Attributes":' + valuesJson(point.attributes) +
    ',"StartTimeUnix":"' + nanosText(point.startTimeUnixNano) +
    '","TimeUnix":"' + nanosText(point.timeUnixNano) +
    '","Flags":' + point.flags
  );
}

export type MetricTable =
  | 'otel_metrics_gauge'
  | 'otel_metrics_sum'
  | 'otel_metrics_histogram'
  | 'otel_metrics_exponential_histogram'
  | 'otel_metrics_summary';

export function metricTable(point: MetricPoint): MetricTable {
  switch (point.kind) {
    case 'gauge':
      return 'otel_metrics_gauge';
    case 'sum':
      return 'otel_metrics_sum';
    case 'histogram':
      return 'otel_metrics_histogram';
    case 'exponential_histogram':
      return 'otel_metrics_exponential_histogram';
    case 'summary':
      return 'otel_metrics_summary';
  }
}

/** One row of the table `metricTable(point)` names. The summary table has no exemplars. */
export function metricRow(point: MetricPoint): string {
  switch (point.kind) {
    case 'gauge':
      return metricBasePart(point) + exemplarsPart(point) + ',"Value":' + floatJson(point.value) + '}\n';
    case 'sum':
      return (
        metricBasePart(point) + exemplarsPart(point) + ',"Value":' + floatJson(point.value) +
        ',"AggregationTemporality":' + point.aggregationTemporality +
        ',"IsMonotonic":' + (point.isMonotonic ? 'true' : 'false') + '}\n'
      );
    case 'histogram':
      return (
        metricBasePart(point) + exemplarsPart(point) + ',"Count":' + point.count.toString() + ',"Sum":' + floatJson(point.sum) +
        ',"BucketCounts":' + bigintArrayJson(point.bucketCounts) +
        ',"ExplicitBounds":' + floatArrayJson(point.explicitBounds) +
        ',"Min":' + floatJson(point.min) + ',"Max":' + floatJson(point.max) +
        ',"AggregationTemporality":' + point.aggregationTemporality + '}\n'
      );
    case 'exponential_histogram':
      return (
        metricBasePart(point) + exemplarsPart(point) + ',"Count":' + point.count.toString() + ',"Sum":' + floatJson(point.sum) +
        ',"Scale":' + point.scale + ',"ZeroCount":' + point.zeroCount.toString() +
        ',"PositiveOffset":' + point.positiveOffset + ',"PositiveBucketCounts":' + bigintArrayJson(point.positiveBucketCounts) +
        ',"NegativeOffset":' + point.negativeOffset + ',"NegativeBucketCounts":' + bigintArrayJson(point.negativeBucketCounts) +
        ',"Min":' + floatJson(point.min) + ',"Max":' + floatJson(point.max) +
        ',"AggregationTemporality":' + point.aggregationTemporality + '}\n'
      );
    case 'summary':
      return (
        metricBasePart(point) + ',"Count":' + point.count.toString() + ',"Sum":' + floatJson(point.sum) +
        ',"ValueAtQuantiles.Quantile":' + floatArrayJson(point.quantiles.map((q) => q.quantile)) +
        ',"ValueAtQuantiles.Value":' + floatArrayJson(point.quantiles.map((q) => q.value)) + '}\n'
      );
  }
}
