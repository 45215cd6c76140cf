/** Nearest-rank quantiles of the benchmark's samples (milliseconds). */
export interface Quantiles {
  readonly count: number;
  readonly p50: number;
  readonly p99: number;
  readonly max: number;
}

export function quantiles(samples: readonly number[]): Quantiles {
  const sorted = [...samples].sort((a, b) => a - b);
  const at = (q: number): number => (sorted.length === 0 ? Number.NaN : (sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))] as number));
  return { count: sorted.length, p50: at(0.5), p99: at(0.99), max: sorted.length === 0 ? Number.NaN : (sorted[sorted.length - 1] as number) };
}
