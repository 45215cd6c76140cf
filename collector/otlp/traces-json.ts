/**
 * ExportTraceServiceRequest in OTLP/JSON → SpanRecord.
 *
 * Same rules as the protobuf decoder: the request, ResourceSpans and
 * ScopeSpans levels must have the right JSON shape or the whole request is
 * malformed; a span with a problem (a wrong JSON type for a known field, an
 * id that is not hex of the right length, ...) is rejected alone. Ids are hex,
 * enums numbers or names, 64-bit integers strings or numbers, keys
 * lowerCamelCase or snake_case; unknown members are ignored.
 */
import type { DecodeResult, ResourceInfo, ScopeInfo, SpanEvent, SpanLink, SpanRecord } from '../model.js';
import { attributesFromJson } from './attributes.js';
import { SPAN_ID_BYTES, TRACE_ID_BYTES, jsonIdHex, jsonParentIdHex } from './ids.js';
import {
  asObject,
  jsonTypeName,
  member,
  optArray,
  optEnum,
  optObject,
  optString,
  optUint32,
  optUint64,
  parseJsonBody,
  type JsonObject,
} from './json-values.js';
import { OtlpMalformedError, isMalformed, rethrowWithin } from './malformed.js';
import { resourceFromJson, scopeFromJson } from './resource.js';
import { DecodeCollector } from './result.js';
import {
  SPAN_KIND_BY_NAME,
  STATUS_CODE_BY_NAME,
  checkSpanTimes,
  spanKindName,
  statusCodeName,
} from './span-enums.js';

export function decodeTracesJson(body: string | Uint8Array): DecodeResult<SpanRecord> {
  const root = parseJsonBody(body);
  if (typeof root !== 'object' || root === null || Array.isArray(root)) {
    throw new OtlpMalformedError(`the request must be a JSON object, got ${jsonTypeName(root)}`);
  }
  const out = new DecodeCollector<SpanRecord>();
  const list = optArray(member(root as JsonObject, 'resourceSpans', 'resource_spans'), 'resource_spans');
  for (let ri = 0; ri < list.length; ri++) {
    try {
      decodeResourceSpans(list[ri], ri, out);
    } catch (err) {
      rethrowWithin(err, `resource_spans[${ri}]`);
    }
  }
  return out.result();
}

function decodeResourceSpans(value: unknown, ri: number, out: DecodeCollector<SpanRecord>): void {
  const o = asObject(value, '');
  const schemaUrl = optString(member(o, 'schemaUrl', 'schema_url'), 'schema_url');
  let resource: ResourceInfo;
  try {
    resource = resourceFromJson(member(o, 'resource'), schemaUrl);
  } catch (err) {
    rethrowWithin(err, 'resource');
  }
  const scopes = optArray(member(o, 'scopeSpans', 'scope_spans'), 'scope_spans');
  for (let si = 0; si < scopes.length; si++) {
    try {
      decodeScopeSpans(scopes[si], resource, ri, si, out);
    } catch (err) {
      rethrowWithin(err, `scope_spans[${si}]`);
    }
  }
}

function decodeScopeSpans(
  value: unknown,
  resource: ResourceInfo,
  ri: number,
  si: number,
  out: DecodeCollector<SpanRecord>,
): void {
  const o = asObject(value, '');
  const schemaUrl = optString(member(o, 'schemaUrl', 'schema_url'), 'schema_url');
  let scope: ScopeInfo;
  try {
    scope = scopeFromJson(member(o, 'scope'), schemaUrl);
  } catch (err) {
    rethrowWithin(err, 'scope');
  }
  const spans = optArray(member(o, 'spans'), 'spans');
  for (let k = 0; k < spans.length; k++) {
    try {
      out.items.push(decodeSpan(spans[k], resource, scope));
    } catch (err) {
      if (!isMalformed(err)) throw err;
      out.reject(err.within(`resource_spans[${ri}].scope_spans[${si}].spans[${k}]`));
    }
  }
}

function decodeSpan(value: unknown, resource: ResourceInfo, scope: ScopeInfo): SpanRecord {
  const o = asObject(value, '');
  const traceId = jsonIdHex(member(o, 'traceId', 'trace_id'), TRACE_ID_BYTES, 'trace_id');
  const spanId = jsonIdHex(member(o, 'spanId', 'span_id'), SPAN_ID_BYTES, 'span_id');
  const parentSpanId = jsonParentIdHex(member(o, 'parentSpanId', 'parent_span_id'));
  const traceState = optString(member(o, 'traceState', 'trace_state'), 'trace_state');
  const name = optString(member(o, 'name'), 'name');
  const kind = spanKindName(optEnum(member(o, 'kind'), 'kind', SPAN_KIND_BY_NAME));
  const startTime = optUint64(member(o, 'startTimeUnixNano', 'start_time_unix_nano'), 'start_time_unix_nano');
  const endTime = optUint64(member(o, 'endTimeUnixNano', 'end_time_unix_nano'), 'end_time_unix_nano');
  checkSpanTimes(startTime, endTime);
  const attributes = attributesFromJson(member(o, 'attributes'), 'attributes');
  const eventList = optArray(member(o, 'events'), 'events');
  const events: SpanEvent[] = [];
  for (let i = 0; i < eventList.length; i++) {
    try {
      events.push(decodeEvent(eventList[i]));
    } catch (err) {
      rethrowWithin(err, `events[${i}]`);
    }
  }
  const linkList = optArray(member(o, 'links'), 'links');
  const links: SpanLink[] = [];
  for (let i = 0; i < linkList.length; i++) {
    try {
      links.push(decodeLink(linkList[i]));
    } catch (err) {
      rethrowWithin(err, `links[${i}]`);
    }
  }
  const status = optObject(member(o, 'status'), 'status');
  const statusCode = status === undefined ? 0 : optEnum(member(status, 'code'), 'status.code', STATUS_CODE_BY_NAME);
  const statusMessage = status === undefined ? '' : optString(member(status, 'message'), 'status.message');
  return {
    traceId,
    spanId,
    parentSpanId,
    traceState,
    name,
    kind,
    startTimeUnixNano: startTime,
    endTimeUnixNano: endTime,
    statusCode: statusCodeName(statusCode),
    statusMessage,
    attributes,
    events,
    links,
    flags: optUint32(member(o, 'flags'), 'flags'),
    resource,
    scope,
  };
}

function decodeEvent(value: unknown): SpanEvent {
  const o = asObject(value, '');
  return {
    timeUnixNano: optUint64(member(o, 'timeUnixNano', 'time_unix_nano'), 'time_unix_nano'),
    name: optString(member(o, 'name'), 'name'),
    attributes: attributesFromJson(member(o, 'attributes'), 'attributes'),
  };
}

function decodeLink(value: unknown): SpanLink {
  const o = asObject(value, '');
  return {
    traceId: jsonIdHex(member(o, 'traceId', 'trace_id'), TRACE_ID_BYTES, 'trace_id'),
    spanId: jsonIdHex(member(o, 'spanId', 'span_id'), SPAN_ID_BYTES, 'span_id'),
    traceState: optString(member(o, 'traceState', 'trace_state'), 'trace_state'),
    attributes: attributesFromJson(member(o, 'attributes'), 'attributes'),
  };
}
