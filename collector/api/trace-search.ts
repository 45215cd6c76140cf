import type { Store } from '../storage/store.js';
import type { StatusFilter, TraceSearchParams } from './params.js';

export interface TraceSummary {
  traceId: string;
  rootService: string;
  rootName: string;
  startTimeUnixNano: string;
  durationNanos: string;
  spanCount: number;
  errorCount: number;
}

export interface TraceSearchResponse {
  traces: TraceSummary[];
}

interface SummaryRow {
  traceId: string;
  rootService: string;
  rootName: string;
  startNanos: string;
  durationNanos: string;
  spanCount: string;
  errorCount: string;
}

const STATUS_CODES: Readonly<Record<StatusFilter, string>> = { error: 'Error', ok: 'Ok', unset: 'Unset' };

/**
 * The span conditions of a search, as SQL over otel_traces with every user
 * value a `{name:Type}` parameter. One span must meet all of them.
 */
function spanConditions(params: TraceSearchParams, fromNanos: bigint): { where: string; values: Record<string, unknown> } {
  const clauses = ['Timestamp >= fromUnixTimestamp64Nano({from:Int64})'];
  const values: Record<string, unknown> = { from: fromNanos.toString() };
  if (params.service !== undefined) {
    clauses.push('ServiceName = {service:String}');
    values['service'] = params.service;
  }
  if (params.operation !== undefined) {
    clauses.push('SpanName = {operation:String}');
    values['operation'] = params.operation;
  }
  if (params.minDurationNanos !== undefined) {
    clauses.push('Duration >= {minDuration:UInt64}');
    values['minDuration'] = params.minDurationNanos.toString();
  }
  if (params.maxDurationNanos !== undefined) {
    clauses.push('Duration <= {maxDuration:UInt64}');
    values['maxDuration'] = params.maxDurationNanos.toString();
  }
  if (params.status !== undefined) {
    clauses.push('StatusCode = {status:String}');
    values['status'] = STATUS_CODES[params.status];
  }
  params.attributes.forEach((filter, i) => {
    // A span matches on its own attributes or on its resource's.
    const k = `{attrKey${i}:String}`;
    const v = `{attrValue${i}:String}`;
    clauses.push(
      `((mapContains(SpanAttributes, ${k}) AND SpanAttributes[${k}] = ${v}) OR (mapContains(ResourceAttributes, ${k}) AND ResourceAttributes[${k}] = ${v}))`,
    );
    values[`attrKey${i}`] = filter.key;
    values[`attrValue${i}`] = filter.value;
  });
  return { where: clauses.join('\n       AND '), values };
}

/**
 * Traces with at least one span in the window that meets every condition,
 * newest first. Three steps in one statement: the matching trace ids from
 * otel_traces; their full time ranges from otel_traces_trace_id_ts, which
 * orders them by trace start and keeps `limit`; then a summary of all spans of
 * those traces, read from otel_traces within the union of their ranges.
 * The root is the span without a parent (the earliest such), else the earliest span.
 */
export async function searchTraces(store: Store, params: TraceSearchParams, nowNanos: bigint): Promise<TraceSearchResponse> {
  const { where, values } = spanConditions(params, nowNanos - params.sinceNanos);
  const rows = await store.query<SummaryRow>(
    `WITH picked AS (
       SELECT TraceId, min(Start) AS TraceStart, max(End) AS TraceEnd
       FROM otel_traces_trace_id_ts
       WHERE TraceId IN (
         SELECT DISTINCT TraceId FROM otel_traces
         WHERE ${where}
       )
       GROUP BY TraceId
       ORDER BY TraceStart DESC, TraceId
       LIMIT {limit:UInt32}
     )
     SELECT
       TraceId AS traceId,
       argMin(ServiceName, (ParentSpanId != '', Timestamp)) AS rootService,
       argMin(SpanName, (ParentSpanId != '', Timestamp)) AS rootName,
       toString(min(toUnixTimestamp64Nano(Timestamp))) AS startNanos,
       toString(max(toUnixTimestamp64Nano(Timestamp) + toInt64(Duration)) - min(toUnixTimestamp64Nano(Timestamp))) AS durationNanos,
       count() AS spanCount,
       countIf(StatusCode = 'Error') AS errorCount
     FROM otel_traces
     WHERE TraceId IN (SELECT TraceId FROM picked)
       AND Timestamp >= (SELECT min(TraceStart) FROM picked)
       AND Timestamp <= (SELECT max(TraceEnd) FROM picked)
     GROUP BY TraceId
     ORDER BY min(Timestamp) DESC, TraceId`,
    { ...values, limit: params.limit },
  );
  return {
    traces: rows.map((row) => ({
      traceId: row.traceId,
      rootService: row.rootService,
      rootName: row.rootName,
      startTimeUnixNano: row.startNanos,
      durationNanos: row.durationNanos,
      spanCount: Number(row.spanCount),
      errorCount: Number(row.errorCount),
    })),
  };
}
