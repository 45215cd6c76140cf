import type { Store } from '../storage/store.js';
import { SPAN_COLUMNS, spanFromRow } from './span-json.js';
import type { ApiSpan, SpanRow } from './span-json.js';

export interface TraceResponse {
  traceId: string;
  spans: ApiSpan[];
}

/** A trace bigger than this is cut (earliest spans kept): one request must not hold the whole heap. */
export const MAX_TRACE_SPANS = 100_000;

/**
 * One trace, spans by start time. otel_traces_trace_id_ts gives the trace's
 * time range first, so the otel_traces read touches only the partitions and
 * granules of that range. Undefined when the trace is unknown.
 * `traceId` is already normalised (32 lowercase hex digits).
 */
export async function getTrace(store: Store, traceId: string): Promise<TraceResponse | undefined> {
  const ranges = await store.query<{ StartNanos: string; EndNanos: string }>(
    `SELECT toString(toUnixTimestamp64Nano(min(Start))) AS StartNanos, toString(toUnixTimestamp64Nano(max(End))) AS EndNanos
     FROM otel_traces_trace_id_ts
     WHERE TraceId = {traceId:String}
     GROUP BY TraceId`,
    { traceId },
  );
  const range = ranges[0];
  if (range === undefined) return undefined;
  const rows = await store.query<SpanRow>(
    `SELECT ${SPAN_COLUMNS}
     FROM otel_traces
     WHERE TraceId = {traceId:String}
       AND Timestamp BETWEEN fromUnixTimestamp64Nano({start:Int64}) AND fromUnixTimestamp64Nano({end:Int64})
     ORDER BY Timestamp, SpanId
     LIMIT {maxSpans:UInt32}`,
    { traceId, start: range.StartNanos, end: range.EndNanos, maxSpans: MAX_TRACE_SPANS },
  );
  if (rows.length === 0) return undefined;
  return { traceId, spans: rows.map(spanFromRow) };
}
