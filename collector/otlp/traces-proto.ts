/**
 * ExportTraceServiceRequest (protobuf) → SpanRecord, in one pass over the
 * body with no intermediate message objects.
 *
 * Framing (ExportTraceServiceRequest, ResourceSpans, ScopeSpans, and each
 * span's own length prefix) must be sound or the whole request is malformed:
 * without it we cannot tell where the next span starts. Inside a span, every
 * problem rejects only that span (its length prefix tells us where the next
 * one starts), so the receiver can answer partial success.
 */
import type { Attribute, DecodeResult, ResourceInfo, ScopeInfo, SpanEvent, SpanLink, SpanRecord } from '../model.js';
import { dedupeAttributes, pushKeyValue } from './attributes.js';
import { SPAN_ID_BYTES, TRACE_ID_BYTES, idHex, parentIdHex } from './ids.js';
import { isMalformed, rethrowWithin } from './malformed.js';
import { decodeResourceProto, decodeScopeProto, emptyResourceInfo, emptyScopeInfo } from './resource.js';
import { DecodeCollector } from './result.js';
import { checkSpanTimes, spanKindName, statusCodeName } from './span-enums.js';
import { ProtoReader, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from './wire.js';

// Span field numbers (opentelemetry/proto/trace/v1/trace.proto).
const SPAN_EVENTS = 11;
const SPAN_LINKS = 13;
const SPAN_STATUS = 15;

/**
 * Whole tags (field << 3 | wire type) of the Span fields we read: decodeSpan
 * switches on them, so a well-formed field costs one comparison.
 */
const TAG_TRACE_ID = (1 << 3) | WIRE_LEN;
const TAG_SPAN_ID = (2 << 3) | WIRE_LEN;
const TAG_TRACE_STATE = (3 << 3) | WIRE_LEN;
const TAG_PARENT_SPAN_ID = (4 << 3) | WIRE_LEN;
const TAG_NAME = (5 << 3) | WIRE_LEN;
const TAG_KIND = (6 << 3) | WIRE_VARINT;
const TAG_START_TIME = (7 << 3) | WIRE_FIXED64;
const TAG_END_TIME = (8 << 3) | WIRE_FIXED64;
const TAG_ATTRIBUTES = (9 << 3) | WIRE_LEN;
const TAG_EVENTS = (SPAN_EVENTS << 3) | WIRE_LEN;
const TAG_LINKS = (SPAN_LINKS << 3) | WIRE_LEN;
const TAG_STATUS = (SPAN_STATUS << 3) | WIRE_LEN;
const TAG_FLAGS = (16 << 3) | WIRE_FIXED32;

/** The wire type of each known Span field by number (-1: unknown), to reject a known field sent another way. */
const SPAN_WIRE_TYPES: readonly number[] = [
  -1,
  WIRE_LEN, // trace_id
  WIRE_LEN, // span_id
  WIRE_LEN, // trace_state
  WIRE_LEN, // parent_span_id
  WIRE_LEN, // name
  WIRE_VARINT, // kind
  WIRE_FIXED64, // start_time_unix_nano
  WIRE_FIXED64, // end_time_unix_nano
  WIRE_LEN, // attributes
  WIRE_VARINT, // dropped_attributes_count
  WIRE_LEN, // events
  WIRE_VARINT, // dropped_events_count
  WIRE_LEN, // links
  WIRE_VARINT, // dropped_links_count
  WIRE_LEN, // status
  WIRE_FIXED32, // flags
];

const SPAN_FIELDS: readonly string[] = [
  '',
  'trace_id',
  'span_id',
  'trace_state',
  'parent_span_id',
  'name',
  'kind',
  'start_time_unix_nano',
  'end_time_unix_nano',
  '', // attributes: pushKeyValue names the element
  'dropped_attributes_count',
  'events',
  'dropped_events_count',
  'links',
  'dropped_links_count',
  'status',
  'flags',
];

export function decodeTracesProto(body: Uint8Array): DecodeResult<SpanRecord> {
  const r = new ProtoReader(body);
  const out = new DecodeCollector<SpanRecord>();
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
      const e = r.lengthDelimited(end);
      decodeResourceSpans(r, e, ri, out);
    } catch (err) {
      rethrowWithin(err, `resource_spans[${ri}]`);
    }
    ri++;
  }
  return out.result();
}

/** ResourceSpans { resource 1, scope_spans 2, schema_url 3 }. */
function decodeResourceSpans(r: ProtoReader, end: number, ri: number, out: DecodeCollector<SpanRecord>): void {
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
        decodeScopeSpans(r, r.lengthDelimited(end), resource, ri, si, out);
        si++;
      } else if (field === 3) {
        r.expect(WIRE_LEN);
        resource.schemaUrl = r.string(end);
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, field === 1 ? 'resource' : field === 2 ? `scope_spans[${si}]` : field === 3 ? 'schema_url' : '');
  }
}

/** ScopeSpans { scope 1, spans 2, schema_url 3 }: the level where spans are accepted or rejected one by one. */
function decodeScopeSpans(
  r: ProtoReader,
  end: number,
  resource: ResourceInfo,
  ri: number,
  si: number,
  out: DecodeCollector<SpanRecord>,
): void {
  const scope = emptyScopeInfo();
  let k = 0;
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 2) {
        // A span sent with another wire type can still be skipped: reject just that one.
        const spanEnd = r.wireType === WIRE_LEN ? r.lengthDelimited(end) : -1;
        try {
          r.expect(WIRE_LEN);
          out.items.push(decodeSpan(r, spanEnd, resource, scope));
        } catch (err) {
          if (!isMalformed(err)) throw err;
          out.reject(err.within(`resource_spans[${ri}].scope_spans[${si}].spans[${k}]`));
          if (spanEnd < 0) r.skip(end);
        }
        if (spanEnd >= 0) r.pos = spanEnd;
        k++;
      } else if (field === 1) {
        r.expect(WIRE_LEN);
        decodeScopeProto(r, r.lengthDelimited(end), scope);
      } else if (field === 3) {
        r.expect(WIRE_LEN);
        scope.schemaUrl = r.string(end);
      } else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, field === 1 ? 'scope' : field === 2 ? `spans[${k}]` : field === 3 ? 'schema_url' : '');
  }
}

/** One Span in [r.pos, end); throws OtlpMalformedError (path relative to the span) to reject it. */
function decodeSpan(r: ProtoReader, end: number, resource: ResourceInfo, scope: ScopeInfo): SpanRecord {
  // Ids are kept as byte ranges until the end: a repeated scalar field means
  // "last one wins" in protobuf, so only the final value is validated.
  let traceIdStart = 0;
  let traceIdLen = 0;
  let spanIdStart = 0;
  let spanIdLen = 0;
  let parentStart = 0;
  let parentLen = 0;
  let traceState = '';
  let name = '';
  let kind = 0;
  let startTime = 0n;
  let endTime = 0n;
  let statusCode = 0;
  let statusMessage = '';
  let statusField = 0;
  let flags = 0;
  const attributes: Attribute[] = [];
  const events: SpanEvent[] = [];
  const links: SpanLink[] = [];
  let tag = 0;
  try {
    while (r.pos < end) {
      tag = 0;
      tag = r.rawTag(end);
      switch (tag) {
        case TAG_TRACE_ID: {
          const e = r.lengthDelimited(end);
          traceIdStart = r.pos;
          traceIdLen = e - r.pos;
          r.pos = e;
          break;
        }
        case TAG_SPAN_ID: {
          const e = r.lengthDelimited(end);
          spanIdStart = r.pos;
          spanIdLen = e - r.pos;
          r.pos = e;
          break;
        }
        case TAG_TRACE_STATE:
          traceState = r.string(end);
          break;
        case TAG_PARENT_SPAN_ID: {
          const e = r.lengthDelimited(end);
          parentStart = r.pos;
          parentLen = e - r.pos;
          r.pos = e;
          break;
        }
        case TAG_NAME:
          name = r.string(end);
          break;
        case TAG_KIND:
          kind = r.int32(end);
          break;
        case TAG_START_TIME:
          startTime = r.fixed64(end);
          break;
        case TAG_END_TIME:
          endTime = r.fixed64(end);
          break;
        case TAG_ATTRIBUTES:
          pushKeyValue(r, end, attributes, 'attributes');
          break;
        case TAG_EVENTS:
          events.push(decodeEvent(r, r.lengthDelimited(end)));
          break;
        case TAG_LINKS:
          links.push(decodeLink(r, r.lengthDelimited(end)));
          break;
        case TAG_STATUS: {
          // Status { message 2, code 3 }, read in place: two results, no object.
          const e = r.lengthDelimited(end);
          while (r.pos < e) {
            statusField = 0;
            statusField = r.tag(e);
            if (statusField === 2) {
              r.expect(WIRE_LEN);
              statusMessage = r.string(e);
            } else if (statusField === 3) {
              r.expect(WIRE_VARINT);
              statusCode = r.int32(e);
            } else r.skip(e);
          }
          break;
        }
        case TAG_FLAGS:
          flags = r.fixed32(end);
          break;
        default:
          r.skipUnexpected(tag, SPAN_WIRE_TYPES, end);
      }
    }
  } catch (err) {
    rethrowWithin(err, spanFieldSegment(tag >>> 3, statusField, events.length, links.length));
  }
  const traceId = idHex(r, traceIdStart, traceIdLen, TRACE_ID_BYTES, 'trace_id');
  const spanId = idHex(r, spanIdStart, spanIdLen, SPAN_ID_BYTES, 'span_id');
  const parentSpanId = parentIdHex(r, parentStart, parentLen);
  const kindName = spanKindName(kind);
  const statusName = statusCodeName(statusCode);
  checkSpanTimes(startTime, endTime);
  return {
    traceId,
    spanId,
    parentSpanId,
    traceState,
    name,
    kind: kindName,
    startTimeUnixNano: startTime,
    endTimeUnixNano: endTime,
    statusCode: statusName,
    statusMessage,
    attributes: dedupeAttributes(attributes),
    events,
    links,
    flags,
    resource,
    scope,
  };
}

function spanFieldSegment(field: number, statusField: number, eventCount: number, linkCount: number): string {
  switch (field) {
    case SPAN_EVENTS:
      return `events[${eventCount}]`;
    case SPAN_LINKS:
      return `links[${linkCount}]`;
    case SPAN_STATUS:
      return statusField === 2 ? 'status.message' : statusField === 3 ? 'status.code' : 'status';
    default:
      return SPAN_FIELDS[field] ?? '';
  }
}

const EVENT_FIELDS: readonly string[] = ['', 'time_unix_nano', 'name', '', 'dropped_attributes_count'];

/** Span.Event { time_unix_nano 1, name 2, attributes 3, dropped_attributes_count 4 }. */
function decodeEvent(r: ProtoReader, end: number): SpanEvent {
  let time = 0n;
  let name = '';
  const attributes: Attribute[] = [];
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 1) {
        r.expect(WIRE_FIXED64);
        time = r.fixed64(end);
      } else if (field === 2) {
        r.expect(WIRE_LEN);
        name = r.string(end);
      } else if (field === 3) pushKeyValue(r, end, attributes, 'attributes');
      else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, EVENT_FIELDS[field] ?? '');
  }
  return { timeUnixNano: time, name, attributes: dedupeAttributes(attributes) };
}

const LINK_FIELDS: readonly string[] = ['', 'trace_id', 'span_id', 'trace_state', '', 'dropped_attributes_count', 'flags'];

/** Span.Link { trace_id 1, span_id 2, trace_state 3, attributes 4, dropped_attributes_count 5, flags 6 }. */
function decodeLink(r: ProtoReader, end: number): SpanLink {
  let traceIdStart = 0;
  let traceIdLen = 0;
  let spanIdStart = 0;
  let spanIdLen = 0;
  let traceState = '';
  const attributes: Attribute[] = [];
  let field = 0;
  try {
    while (r.pos < end) {
      field = 0;
      field = r.tag(end);
      if (field === 1 || field === 2) {
        r.expect(WIRE_LEN);
        const e = r.lengthDelimited(end);
        if (field === 1) {
          traceIdStart = r.pos;
          traceIdLen = e - r.pos;
        } else {
          spanIdStart = r.pos;
          spanIdLen = e - r.pos;
        }
        r.pos = e;
      } else if (field === 3) {
        r.expect(WIRE_LEN);
        traceState = r.string(end);
      } else if (field === 4) pushKeyValue(r, end, attributes, 'attributes');
      else r.skip(end);
    }
  } catch (err) {
    rethrowWithin(err, LINK_FIELDS[field] ?? '');
  }
  return {
    traceId: idHex(r, traceIdStart, traceIdLen, TRACE_ID_BYTES, 'trace_id'),
    spanId: idHex(r, spanIdStart, spanIdLen, SPAN_ID_BYTES, 'span_id'),
    traceState,
    attributes: dedupeAttributes(attributes),
  };
}
