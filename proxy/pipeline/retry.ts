/**
 * Retry decisions for a route's RetryPolicy, with Envoy's `retry_on`
 * meanings, and the backoff between tries. The protocol paths run the
 * attempt loop; this file only answers "retry this try?" and "wait how long?".
 * Whether a retry may start at all (attempts left, maxRetries, the retry
 * budget) is the loop's and DestinationLimits' business.
 */
import type { RetryCondition, RetryPolicy } from '../../src/config/types.js';
import type { AttemptOutcome } from './types.js';

/** A try that produced no response: the connection failed, was reset, or the per-try timeout fired. */
function noResponse(outcome: AttemptOutcome): boolean {
  return outcome === 'connect-failure' || outcome === 'reset' || outcome === 'timeout';
}

/**
 * Whether one retry condition covers how a try ended. `statusCode` is the
 * response's status (0 when there was none). A response counts as 5xx when
 * its status is, or when the path classified it so (the HTTP/2 path calls a
 * gRPC trailers-only UNAVAILABLE answer 'gateway' with status 200), so both
 * the status and the outcome are read.
 *
 * Envoy's meanings (router filter, x-envoy-retry-on):
 * - 5xx: any 5xx response, and every try without a response (reset,
 *   connect failure, per-try timeout): Envoy counts a reset as the 503 it
 *   turns into.
 * - gateway-error: 502, 503, 504, and, like 5xx, every try without a
 *   response (Envoy's RetryStateImpl treats resets alike for both).
 * - reset: no response at all (disconnect, reset, per-try timeout), which
 *   includes a failed connect (a connect failure is a reset reason in Envoy).
 * - connect-failure: the connection could not be made (refused, unreachable, connect timeout).
 * - retriable-status-codes: the response's status is listed.
 */
function covers(condition: RetryCondition, policy: RetryPolicy, outcome: AttemptOutcome, statusCode: number): boolean {
  switch (condition) {
    case '5xx':
      return statusCode >= 500 || outcome === '5xx' || outcome === 'gateway' || noResponse(outcome);
    case 'gateway-error':
      return statusCode === 502 || statusCode === 503 || statusCode === 504 || outcome === 'gateway' || noResponse(outcome);
    case 'reset':
      return noResponse(outcome);
    case 'connect-failure':
      return outcome === 'connect-failure';
    case 'retriable-status-codes':
      return statusCode !== 0 && policy.retriableStatusCodes.includes(statusCode);
  }
}

/** Whether the try that ended with `outcome` (and `statusCode`, 0 when no response) is retried under `policy`. */
export function isRetriable(policy: RetryPolicy, outcome: AttemptOutcome, statusCode: number): boolean {
  const retryOn = policy.retryOn;
  for (let i = 0; i < retryOn.length; i++) {
    if (covers(retryOn[i] as RetryCondition, policy, outcome, statusCode)) return true;
  }
  return false;
}

// 2^30 × any base already exceeds every allowed maximum (10 minutes); capping the exponent keeps the arithmetic exact.
const MAX_EXPONENT = 30;

/**
 * Milliseconds to wait before retry number `retryNumber` (1 for the first
 * retry): Envoy's fully jittered exponential backoff, a uniform whole number
 * in [0, min(maxMs, baseMs·2^(retryNumber−1))]. Full jitter spreads the
 * retries of many callers over the whole window instead of synchronizing
 * them. (Envoy's window is (2^n − 1)·base; we use base·2^(n−1), which gives
 * the same first window and grows as the issue describes.)
 */
export function retryBackoffMs(policy: RetryPolicy, retryNumber: number, random: () => number): number {
  const base = policy.backoff.baseMs;
  const max = policy.backoff.maxMs;
  const exponent = retryNumber < 1 ? 0 : Math.min(retryNumber - 1, MAX_EXPONENT);
  const window = Math.min(max, base * 2 ** exponent);
  if (!(window > 0)) return 0;
  // floor(random · (window + 1)) is uniform over the whole numbers 0..window, both included.
  return Math.floor(random() * (Math.floor(window) + 1));
}
