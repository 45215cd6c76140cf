/**
 * otel_traces row -> the API's span object. Attribute values are stored as
 * strings (see `Attribute` in collector/model.ts); the *AttributeTypes maps say
 * which ones were something else, and the value is rebuilt with that type.
 */

export type JsonValue = string | number | boolean | null | JsonValue[] | { [key: string]: JsonValue };

/** Attributes as the API gives them: key -> typed value. */
export type ApiAttributes = Record<string, JsonValue>;

export interface ApiEvent {
  timeUnixNano: string;
  name: string;
  attributes: ApiAttributes;
}

export interface ApiLink {
  traceId: string;
  spanId: string;
  traceState: string;
  attributes: ApiAttributes;
}

export interface ApiSpan {
  traceId: string;
  spanId: string;
  parentSpanId: string;
  name: string;
  /** As stored: Server, Client, Internal, Producer, Consumer, Unspecified. */
  kind: string;
  serviceName: string;
  /** Unix nanoseconds, as a decimal string. */
  startTimeUnixNano: string;
  /** Nanoseconds, as a decimal string. */
  durationNanos: string;
  /** Ok, Error, Unset. */
  statusCode: string;
  statusMessage: string;
  attributes: ApiAttributes;
  resourceAttributes: ApiAttributes;
  events: ApiEvent[];
  links: ApiLink[];
}

type StringMap = Record<string, string>;

/** One row of SPAN_COLUMNS. */
export interface SpanRow {
  TraceId: string;
  SpanId: string;
  ParentSpanId: string;
  SpanName: string;
  SpanKind: string;
  ServiceName: string;
  StartNanos: string;
  Duration: string;
  StatusCode: string;
  StatusMessage: string;
  SpanAttributes: StringMap;
  SpanAttributeTypes: StringMap;
  ResourceAttributes: StringMap;
  ResourceAttributeTypes: StringMap;
  EventTimes: string[];
  EventNames: string[];
  EventAttributes: StringMap[];
  EventAttributeTypes: StringMap[];
  LinkTraceIds: string[];
  LinkSpanIds: string[];
  LinkTraceStates: string[];
  LinkAttributes: StringMap[];
  LinkAttributeTypes: StringMap[];
}

/** The select list that produces a SpanRow from otel_traces. Times leave ClickHouse as exact nanosecond strings. */
export const SPAN_COLUMNS = `
  TraceId, SpanId, ParentSpanId, SpanName, SpanKind, ServiceName,
  toString(toUnixTimestamp64Nano(Timestamp)) AS StartNanos,
  toString(Duration) AS Duration,
  StatusCode, StatusMessage,
  SpanAttributes, SpanAttributeTypes, ResourceAttributes, ResourceAttributeTypes,
  arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS EventTimes,
  Events.Name AS EventNames,
  Events.Attributes AS EventAttributes,
  Events.AttributeTypes AS EventAttributeTypes,
  Links.TraceId AS LinkTraceIds,
  Links.SpanId AS LinkSpanIds,
  Links.TraceState AS LinkTraceStates,
  Links.Attributes AS LinkAttributes,
  Links.AttributeTypes AS LinkAttributeTypes`;

const INT_TEXT_RE = /^-?\d+$/;

/** One stored attribute value back to its type. Anything that does not parse as its type stays the stored string. */
export function typedAttributeValue(value: string, type: string | undefined): JsonValue {
  switch (type) {
    case undefined:
    case 'string':
    case 'bytes': // stored as base64, which is what the API gives
      return value;
    case 'bool':
      if (value === 'true') return true;
      if (value === 'false') return false;
      return value;
    case 'int': {
      if (!INT_TEXT_RE.test(value)) return value;
      const n = Number(value);
      // Past 2^53 a JS number would silently round: keep the exact digits.
      return Number.isSafeInteger(n) && String(n) === value ? n : value;
    }
    case 'double': {
      const n = Number(value);
      // NaN and the infinities have no JSON number form; an unparsable value stays as stored.
      return Number.isFinite(n) && value.trim() !== '' ? n : value;
    }
    case 'array':
    case 'kvlist':
      try {
        return JSON.parse(value) as JsonValue;
      } catch {
        return value;
      }
    default:
      return value;
  }
}

/** A stored attribute map and its type map -> key -> typed value. */
export function typedAttributes(values: StringMap | undefined, types: StringMap | undefined): ApiAttributes {
  // No prototype: an attribute named `__proto__` is plain data.
  const out = Object.create(null) as ApiAttributes;
  if (values === undefined) return out;
  for (const key of Object.keys(values)) {
    out[key] = typedAttributeValue(values[key] as string, types?.[key]);
  }
  return out;
}

export function spanFromRow(row: SpanRow): ApiSpan {
  const events: ApiEvent[] = [];
  for (let i = 0; i < row.EventTimes.length; i++) {
    events.push({
      timeUnixNano: row.EventTimes[i] as string,
      name: row.EventNames[i] ?? '',
      attributes: typedAttributes(row.EventAttributes[i], row.EventAttributeTypes[i]),
    });
  }
  const links: ApiLink[] = [];
  for (let i = 0; i < row.LinkTraceIds.length; i++) {
    links.push({
      traceId: row.LinkTraceIds[i] as string,
      spanId: row.LinkSpanIds[i] ?? '',
      traceState: row.LinkTraceStates[i] ?? '',
      attributes: typedAttributes(row.LinkAttributes[i], row.LinkAttributeTypes[i]),
    });
  }
  return {
    traceId: row.TraceId,
    spanId: row.SpanId,
    parentSpanId: row.ParentSpanId,
    name: row.SpanName,
    kind: row.SpanKind,
    serviceName: row.ServiceName,
    startTimeUnixNano: row.StartNanos,
    durationNanos: row.Duration,
    statusCode: row.StatusCode,
    statusMessage: row.StatusMessage,
    attributes: typedAttributes(row.SpanAttributes, row.SpanAttributeTypes),
    resourceAttributes: typedAttributes(row.ResourceAttributes, row.ResourceAttributeTypes),
    events,
    links,
  };
}
