/**
 * The aggregate tables keep latency as quantilesTDigest(0.5, 0.9, 0.95, 0.99)
 * states over nanoseconds; this is the SQL that merges them and the step from
 * the merged array to the API's milliseconds.
 */
export const MERGE_LATENCY = 'quantilesTDigestMerge(0.5, 0.9, 0.95, 0.99)';

export const P50 = 0;
export const P99 = 3;

/** Nanoseconds (as ClickHouse gives the quantile) -> milliseconds, to the microsecond. 0 when there is no figure. */
export function nanosToMs(value: number | string | undefined): number {
  const nanos = Number(value);
  if (!Number.isFinite(nanos) || nanos <= 0) return 0;
  return Math.round(nanos / 1_000) / 1_000;
}
