import type { Attribute, ResourceInfo, ScopeInfo, SpanRecord } from '../model.js';
import { RowBinaryWriter } from './row-binary.js';

/**
 * otel_traces rows in RowBinary. The columns are listed here in the order they
 * are written; the INSERT names them, so the table's own column order does not
 * matter. The types are the table's own (RowBinary writes LowCardinality(String)
 * exactly as String), so a server can take the same bytes with
 * `INSERT ... FORMAT RowBinary`. Resource and scope columns sit together so their
 * bytes are encoded once per ResourceSpans / ScopeSpans.
 */
export const OTEL_TRACES_ROW_BINARY_COLUMNS: ReadonlyArray<readonly [name: string, type: string]> = [
  ['Timestamp', 'DateTime64(9)'],
  ['TraceId', 'String'],
  ['SpanId', 'String'],
  ['ParentSpanId', 'String'],
  ['TraceState', 'String'],
  ['SpanName', 'LowCardinality(String)'],
  ['SpanKind', 'LowCardinality(String)'],
  ['ServiceName', 'LowCardinality(String)'],
  ['ResourceAttributes', 'Map(LowCardinality(String), String)'],
  ['ResourceAttributeTypes', 'Map(LowCardinality(String), LowCardinality(String))'],
  ['ScopeName', 'String'],
  ['ScopeVersion', 'String'],
  ['SpanAttributes', 'Map(LowCardinality(String), String)'],
  ['SpanAttributeTypes', 'Map(LowCardinality(String), LowCardinality(String))'],
  ['Duration', 'UInt64'],
  ['StatusCode', 'LowCardinality(String)'],
  ['StatusMessage', 'String'],
  ['Events.Timestamp', 'Array(DateTime64(9))'],
  ['Events.Name', 'Array(LowCardinality(String))'],
  ['Events.Attributes', 'Array(Map(LowCardinality(String), String))'],
  ['Events.AttributeTypes', 'Array(Map(LowCardinality(String), LowCardinality(String)))'],
  ['Links.TraceId', 'Array(String)'],
  ['Links.SpanId', 'Array(String)'],
  ['Links.TraceState', 'Array(String)'],
  ['Links.Attributes', 'Array(Map(LowCardinality(String), String))'],
  ['Links.AttributeTypes', 'Array(Map(LowCardinality(String), LowCardinality(String)))'],
];

function attributeValues(w: RowBinaryWriter, attributes: readonly Attribute[]): void {
  w.varint(attributes.length);
  for (let i = 0; i < attributes.length; i++) {
    const attribute = attributes[i] as Attribute;
    w.string(attribute.key);
    w.string(attribute.value);
  }
}

function attributeTypes(w: RowBinaryWriter, attributes: readonly Attribute[]): void {
  let typed = 0;
  for (let i = 0; i < attributes.length; i++) if ((attributes[i] as Attribute).type !== 'string') typed++;
  w.varint(typed);
  if (typed === 0) return;
  for (let i = 0; i < attributes.length; i++) {
    const attribute = attributes[i] as Attribute;
    if (attribute.type === 'string') continue;
    w.string(attribute.key);
    w.shortAscii(attribute.type);
  }
}

const resourceBytes = new WeakMap<ResourceInfo, Buffer>();
const scopeBytes = new WeakMap<ScopeInfo, Buffer>();

/** ServiceName, ResourceAttributes, ResourceAttributeTypes: once per resource. */
function resourceColumns(resource: ResourceInfo): Buffer {
  let bytes = resourceBytes.get(resource);
  if (bytes === undefined) {
    const w = new RowBinaryWriter(256);
    w.string(resource.serviceName);
    attributeValues(w, resource.attributes);
    attributeTypes(w, resource.attributes);
    bytes = w.take();
    resourceBytes.set(resource, bytes);
  }
  return bytes;
}

/** ScopeName, ScopeVersion: once per scope. */
function scopeColumns(scope: ScopeInfo): Buffer {
  let bytes = scopeBytes.get(scope);
  if (bytes === undefined) {
    const w = new RowBinaryWriter(64);
    w.string(scope.name);
    w.string(scope.version);
    bytes = w.take();
    scopeBytes.set(scope, bytes);
  }
  return bytes;
}

function eventColumns(w: RowBinaryWriter, span: SpanRecord): void {
  const events = span.events;
  const n = events.length;
  w.varint(n);
  for (let i = 0; i < n; i++) w.int64(events[i]!.timeUnixNano);
  w.varint(n);
  for (let i = 0; i < n; i++) w.string(events[i]!.name);
  w.varint(n);
  for (let i = 0; i < n; i++) attributeValues(w, events[i]!.attributes);
  w.varint(n);
  for (let i = 0; i < n; i++) attributeTypes(w, events[i]!.attributes);
}

function linkColumns(w: RowBinaryWriter, span: SpanRecord): void {
  const links = span.links;
  const n = links.length;
  w.varint(n);
  for (let i = 0; i < n; i++) w.shortAscii(links[i]!.traceId);
  w.varint(n);
  for (let i = 0; i < n; i++) w.shortAscii(links[i]!.spanId);
  w.varint(n);
  for (let i = 0; i < n; i++) w.string(links[i]!.traceState);
  w.varint(n);
  for (let i = 0; i < n; i++) attributeValues(w, links[i]!.attributes);
  w.varint(n);
  for (let i = 0; i < n; i++) attributeTypes(w, links[i]!.attributes);
}

/** Appends one otel_traces row in OTEL_TRACES_ROW_BINARY_COLUMNS order. Ids are hex from the decoder. */
export function writeSpanRowBinary(w: RowBinaryWriter, span: SpanRecord): void {
  w.int64(span.startTimeUnixNano);
  w.shortAscii(span.traceId);
  w.shortAscii(span.spanId);
  w.shortAscii(span.parentSpanId);
  w.string(span.traceState);
  w.string(span.name);
  w.shortAscii(span.kind);
  w.raw(resourceColumns(span.resource));
  w.raw(scopeColumns(span.scope));
  attributeValues(w, span.attributes);
  attributeTypes(w, span.attributes);
  w.uint64(Number(span.endTimeUnixNano - span.startTimeUnixNano));
  w.shortAscii(span.statusCode);
  w.string(span.statusMessage);
  eventColumns(w, span);
  linkColumns(w, span);
}
