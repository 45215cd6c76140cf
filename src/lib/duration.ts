import { TracemeshError } from './errors.js';

const UNIT_NANOS: ReadonlyMap<string, bigint> = new Map([
  ['ns', 1n],
  ['us', 1_000n],
  ['µs', 1_000n],
  ['ms', 1_000_000n],
  ['s', 1_000_000_000n],
  ['m', 60_000_000_000n],
  ['h', 3_600_000_000_000n],
  ['d', 86_400_000_000_000n],
]);

const DURATION_RE = /^(\d{1,15})(ns|us|µs|ms|s|m|h|d)$/;

/**
 * Parses `250ms`, `15m`, `1h`, `2d` (one integer and one unit) into nanoseconds.
 * `what` names the flag or parameter for the error message.
 */
export function parseDurationNanos(text: string, what: string): bigint {
  const match = DURATION_RE.exec(text.trim());
  if (match === null) {
    throw new TracemeshError(
      'TM_ERR_CLI_BAD_VALUE',
      `${what}: '${text}' is not a duration (expected a whole number with a unit: ns, us, ms, s, m, h, d, e.g. 250ms, 15m, 2d)`,
    );
  }
  const unit = UNIT_NANOS.get(match[2] as string) as bigint;
  return BigInt(match[1] as string) * unit;
}

/** Same as parseDurationNanos, in (possibly fractional) milliseconds. */
export function parseDurationMs(text: string, what: string): number {
  return Number(parseDurationNanos(text, what)) / 1e6;
}

/** `1.5s`, `250ms`, `12µs` — for people reading a span tree. */
export function formatDurationNanos(nanos: number): string {
  if (nanos >= 60e9) return `${(nanos / 60e9).toFixed(1)}m`;
  if (nanos >= 1e9) return `${(nanos / 1e9).toFixed(2)}s`;
  if (nanos >= 1e6) return `${(nanos / 1e6).toFixed(2)}ms`;
  if (nanos >= 1e3) return `${(nanos / 1e3).toFixed(1)}µs`;
  return `${nanos}ns`;
}
