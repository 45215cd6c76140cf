/** Latency quantiles over a bounded sample array, for the constant-rate generator and the report. */

export interface LatencySummary {
  /** Samples summarised. */
  count: number;
  /** Microseconds. */
  p50: number;
  p90: number;
  p99: number;
  p999: number;
  max: number;
  mean: number;
}

/** Nearest-rank quantile of an ascending array (NaN when empty). */
export function quantile(sorted: ArrayLike<number>, q: number): number {
  const n = sorted.length;
  if (n === 0) return Number.NaN;
  const rank = Math.min(n - 1, Math.max(0, Math.ceil(q * n) - 1));
  return sorted[rank]!;
}

/** Quantiles of the first `count` samples of `samples` (sorted in place). */
export function summarize(samples: Float64Array, count: number): LatencySummary {
  const used = samples.subarray(0, count).sort();
  let sum = 0;
  for (let i = 0; i < used.length; i++) sum += used[i]!;
  return {
    count,
    p50: quantile(used, 0.5),
    p90: quantile(used, 0.9),
    p99: quantile(used, 0.99),
    p999: quantile(used, 0.999),
    max: count > 0 ? used[count - 1]! : Number.NaN,
    mean: count > 0 ? sum / count : Number.NaN,
  };
}
