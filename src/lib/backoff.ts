/** Retry pacing shared by everything that retries: 250 ms, doubling, at most 5 s. */
export const BACKOFF_MIN_MS = 250;
export const BACKOFF_MAX_MS = 5_000;

/** The wait before retry number `attempt` (0 for the first retry). */
export function backoffMs(attempt: number, minMs = BACKOFF_MIN_MS, maxMs = BACKOFF_MAX_MS): number {
  return Math.min(maxMs, minMs * 2 ** Math.min(attempt, 30));
}

/**
 * A wait. By default it does not hold the process open (a background retry must
 * not keep a stopping process alive); pass `holdProcess` where the wait is the
 * only thing the process is doing, such as start-up.
 */
export function sleep(ms: number, options: { holdProcess?: boolean } = {}): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(resolve, ms);
    if (options.holdProcess !== true) timer.unref();
  });
}
