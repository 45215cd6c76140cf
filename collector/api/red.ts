import type { Store } from '../storage/store.js';
import type { RedKind, RedParams } from './params.js';
import { MERGE_LATENCY, P50, P99, nanosToMs } from './quantiles.js';

export interface RedPoint {
  /** Start of the step bucket, Unix nanoseconds as a decimal string. */
  time: string;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface RedResponse {
  series: RedPoint[];
}

/** Span kinds counted for each `kind`: by default the requests a service serves. */
const KINDS: Readonly<Record<RedKind, readonly string[] | undefined>> = {
  server: ['Server', 'Consumer'],
  client: ['Client', 'Producer'],
  all: undefined,
};

interface BucketRow {
  bucket: string;
  requests: string;
  errors: string;
  latency: Array<number | string>;
}

const NANOS_PER_SECOND = 1_000_000_000n;

/**
 * Rate, errors and latency of one service from tracemesh_red_1m, one point per
 * step. Buckets are aligned to multiples of the step since the Unix epoch; the
 * last one holds `now`, and there are `params.points` of them (since / step,
 * rounded up). Buckets without data are zeros.
 */
export async function redSeries(store: Store, params: RedParams, nowNanos: bigint): Promise<RedResponse> {
  const stepSeconds = params.stepNanos / NANOS_PER_SECOND;
  const nowSeconds = nowNanos / NANOS_PER_SECOND;
  const lastBucket = (nowSeconds / stepSeconds) * stepSeconds;
  const firstBucket = lastBucket - BigInt(params.points - 1) * stepSeconds;
  const endSeconds = lastBucket + stepSeconds;

  const clauses = ['ServiceName = {service:String}', 'Minute >= toDateTime({first:Int64})', 'Minute < toDateTime({end:Int64})'];
  const values: Record<string, unknown> = {
    service: params.service,
    first: firstBucket.toString(),
    end: endSeconds.toString(),
    step: stepSeconds.toString(),
  };
  if (params.operation !== undefined) {
    clauses.push('SpanName = {operation:String}');
    values['operation'] = params.operation;
  }
  const kinds = KINDS[params.kind];
  if (kinds !== undefined) {
    clauses.push('SpanKind IN {kinds:Array(String)}');
    values['kinds'] = kinds;
  }
  const rows = await store.query<BucketRow>(
    `SELECT intDiv(toInt64(toUnixTimestamp(Minute)) - {first:Int64}, {step:Int64}) AS bucket,
       sum(Requests) AS requests, sum(Errors) AS errors,
       ${MERGE_LATENCY}(Latency) AS latency
     FROM tracemesh_red_1m
     WHERE ${clauses.join(' AND ')}
     GROUP BY bucket
     ORDER BY bucket`,
    values,
  );
  const byBucket = new Map<number, BucketRow>();
  for (const row of rows) byBucket.set(Number(row.bucket), row);
  const series: RedPoint[] = [];
  for (let i = 0; i < params.points; i++) {
    const time = ((firstBucket + BigInt(i) * stepSeconds) * NANOS_PER_SECOND).toString();
    const row = byBucket.get(i);
    series.push(
      row === undefined
        ? { time, requests: 0, errors: 0, p50Ms: 0, p99Ms: 0 }
        : {
            time,
            requests: Number(row.requests),
            errors: Number(row.errors),
            p50Ms: nanosToMs(row.latency[P50]),
            p99Ms: nanosToMs(row.latency[P99]),
          },
    );
  }
  return { series };
}
