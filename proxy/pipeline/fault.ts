/**
 * Fault injection (Istio's HTTPFaultInjection): a rule's fixed delay and
 * abort, each applied to its own percentage of requests. The two are rolled
 * independently, delay first, as Envoy's fault filter does, so one request
 * may be delayed and then aborted. The protocol path carries the decision
 * out: it waits `delayMs`, then answers `abort` itself with flag FI.
 */
import type { FaultSpec } from '../../src/config/types.js';
import { NO_FAULT, type FaultDecision } from './types.js';

/**
 * True for `percent` of the calls: `random()` is uniform in [0, 1), so 100
 * always holds and 0 never does. Percentages may be fractional (0.5 = one
 * request in 200).
 */
export function rollPercent(percent: number, random: () => number): boolean {
  if (percent >= 100) return true;
  if (percent <= 0) return false;
  return random() * 100 < percent;
}

/**
 * The fault for one request. Draws from `random` only for a part that is
 * configured with a percentage strictly between 0 and 100, delay before
 * abort, so tests can script the draws. No fault → the shared NO_FAULT.
 */
export function decideFault(spec: FaultSpec | null, random: () => number): FaultDecision {
  if (spec === null) return NO_FAULT;
  const delay = spec.delay;
  const abort = spec.abort;
  const delayMs = delay !== null && rollPercent(delay.percent, random) ? delay.fixedMs : 0;
  if (abort !== null && rollPercent(abort.percent, random)) {
    return { delayMs, abort: { status: abort.status, grpc: abort.kind === 'grpc' } };
  }
  return delayMs === 0 ? NO_FAULT : { delayMs, abort: undefined };
}
