/**
 * ExportMetricsServiceRequest in OTLP/JSON → MetricPoint, one record per data point.
 * Same rules as the protobuf decoder: the request, ResourceMetrics,
 * ScopeMetrics, Metric and Gauge/Sum/... levels must have the right JSON
 * shape or the whole request is malformed; a bad data point is rejected alone.
 */
import type { DecodeResult, MetricPoint, ResourceInfo, ScopeInfo } from '../model.js';
import {
  exponentialHistogramPointFromJson,
  histogramPointFromJson,
  numberPointFromJson,
  summaryPointFromJson,
} from './datapoints-json.js';
import { AGGREGATION_TEMPORALITY_BY_NAME, type MetricDataKind, type MetricInfo } from './datapoints.js';
import {
  asObject,
  jsonTypeName,
  member,
  optArray,
  optBool,
  optEnum,
  optString,
  parseJsonBody,
  type JsonObject,
} from './json-values.js';
import { OtlpMalformedError, isMalformed, rethrowWithin } from './malformed.js';
import { resourceFromJson, scopeFromJson } from './resource.js';
import { DecodeCollector } from './result.js';

/** Metric data members: JSON name, proto name (also accepted, and used in paths). */
const DATA_MEMBERS: ReadonlyArray<readonly [string, MetricDataKind]> = [
  ['gauge', 'gauge'],
  ['sum', 'sum'],
  ['histogram', 'histogram'],
  ['exponentialHistogram', 'exponential_histogram'],
  ['summary', 'summary'],
];

export function decodeMetricsJson(body: string | Uint8Array): DecodeResult<MetricPoint> {
  const root = parseJsonBody(body);
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw new OtlpMalformedError(`the request must be a JSON object, got ${jsonTypeName(root)}`);
  }
  const out = new DecodeCollector<MetricPoint>();
  const list = optArray(member(root as JsonObject, 'resourceMetrics', 'resource_metrics'), 'resource_metrics');
  for (let ri = 0; ri < list.length; ri++) {
    try {
      decodeResourceMetrics(list[ri], `resource_metrics[${ri}]`, out);
    } catch (err) {
      rethrowWithin(err, `resource_metrics[${ri}]`);
    }
  }
  return out.result();
}

function decodeResourceMetrics(value: unknown, path: string, out: DecodeCollector<MetricPoint>): void {
  const o = asObject(value, '');
  const schemaUrl = optString(member(o, 'schemaUrl', 'schema_url'), 'schema_url');
  let resource: ResourceInfo;
  try {
    resource = resourceFromJson(member(o, 'resource'), schemaUrl);
  } catch (err) {
    rethrowWithin(err, 'resource');
  }
  const scopes = optArray(member(o, 'scopeMetrics', 'scope_metrics'), 'scope_metrics');
  for (let si = 0; si < scopes.length; si++) {
    try {
      decodeScopeMetrics(scopes[si], resource, `${path}.scope_metrics[${si}]`, out);
    } catch (err) {
      rethrowWithin(err, `scope_metrics[${si}]`);
    }
  }
}

function decodeScopeMetrics(value: unknown, resource: ResourceInfo, path: string, out: DecodeCollector<MetricPoint>): void {
  const o = asObject(value, '');
  const schemaUrl = optString(member(o, 'schemaUrl', 'schema_url'), 'schema_url');
  let scope: ScopeInfo;
  try {
    scope = scopeFromJson(member(o, 'scope'), schemaUrl);
  } catch (err) {
    rethrowWithin(err, 'scope');
  }
  const metrics = optArray(member(o, 'metrics'), 'metrics');
  for (let mi = 0; mi < metrics.length; mi++) {
    try {
      decodeMetric(metrics[mi], resource, scope, `${path}.metrics[${mi}]`, out);
    } catch (err) {
      rethrowWithin(err, `metrics[${mi}]`);
    }
  }
}

function decodeMetric(
  value: unknown,
  resource: ResourceInfo,
  scope: ScopeInfo,
  path: string,
  out: DecodeCollector<MetricPoint>,
): void {
  const o = asObject(value, '');
  let kind: MetricDataKind | undefined;
  let data: unknown;
  for (const [jsonName, protoName] of DATA_MEMBERS) {
    const v = member(o, jsonName, protoName);
    if (v === undefined) continue;
    if (kind !== undefined) throw new OtlpMalformedError(`has both ${kind} and ${protoName}; the data is a oneof`);
    kind = protoName;
    data = v;
  }
  const m: MetricInfo = {
    resource,
    scope,
    name: optString(member(o, 'name'), 'name'),
    description: optString(member(o, 'description'), 'description'),
    unit: optString(member(o, 'unit'), 'unit'),
    aggregationTemporality: 0,
    isMonotonic: false,
  };
  if (kind === undefined) return;
  const d = asObject(data, kind);
  if (kind !== 'gauge' && kind !== 'summary') {
    m.aggregationTemporality = optEnum(
      member(d, 'aggregationTemporality', 'aggregation_temporality'),
      `${kind}.aggregation_temporality`,
      AGGREGATION_TEMPORALITY_BY_NAME,
    );
  }
  if (kind === 'sum') m.isMonotonic = optBool(member(d, 'isMonotonic', 'is_monotonic'), 'sum.is_monotonic');
  const points = optArray(member(d, 'dataPoints', 'data_points'), `${kind}.data_points`);
  for (let k = 0; k < points.length; k++) {
    try {
      out.items.push(pointFromJson(points[k], kind, m));
    } catch (err) {
      if (!isMalformed(err)) throw err;
      out.reject(err.within(`${path}.${kind}.data_points[${k}]`));
    }
  }
}

function pointFromJson(value: unknown, kind: MetricDataKind, m: MetricInfo): MetricPoint {
  switch (kind) {
    case 'gauge':
      return numberPointFromJson(value, m, false);
    case 'sum':
      return numberPointFromJson(value, m, true);
    case 'histogram':
      return histogramPointFromJson(value, m);
    case 'exponential_histogram':
      return exponentialHistogramPointFromJson(value, m);
    case 'summary':
      return summaryPointFromJson(value, m);
  }
}
