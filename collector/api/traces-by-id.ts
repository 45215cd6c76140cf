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
 * Settings for the span read. otel_traces is ordered by service and span
 * name, so a trace's spans sit in a few 8,192-row granules spread over the
 * part (8 spans: about 8 granules), and the read costs what decompressing
 * every selected column of those granules costs (about 40 MB for 8 spans).
 * That is under ClickHouse's thresholds for a parallel read (163,840 rows,
 * 24 MiB), so by default one thread does it all; with these, the granules
 * are shared among all cores (max_threads).
 *
 * Measured with 2,000,000 spans on 2 cores, 300 lookups: 5 parts, p50 70 ->
 * 54 ms and p99 91 -> 76 ms; one merged part, p50 55 -> 53 ms and p99 87 ->
 * 70 ms. Reading the rows' (_part, _part_offset) first and then the full
 * columns of only those rows is slower (p50 75 ms): ClickHouse cannot read
 * less than a compressed block, so the second read still decompresses the
 * same whole granules and the narrow first read is pure extra.
 */
const SPAN_READ_SETTINGS = 'merge_tree_min_rows_for_concurrent_read = 1, merge_tree_min_bytes_for_concurrent_read = 1';

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
     LIMIT {maxSpans:UInt32}
     SETTINGS ${SPAN_READ_SETTINGS}`,
    { traceId, start: range.StartNanos, end: range.EndNanos, maxSpans: MAX_TRACE_SPANS },
  );
  if (rows.length === 0) return undefined;
  return { traceId, spans: rows.map(spanFromRow) };
}
