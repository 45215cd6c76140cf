/**
 * Passive health: Envoy's consecutive-5xx and consecutive-gateway-failure
 * outlier detection for one destination's endpoints.
 *
 * - consecutive5xx counts every failed attempt: 5xx answers and the local
 *   failures Envoy maps to 5xx (connect failure, reset, timeout).
 *   consecutiveGatewayErrors counts 502/503/504 and the same local failures
 *   (Envoy maps them to 503/504 when external and local errors are not split).
 *   A success resets both; a 5xx that is not a gateway error resets the
 *   gateway count, as in Envoy's putHttpResponseCode.
 * - An ejection lasts baseEjectionTime × the endpoint's ejection count
 *   (capped at Envoy's default max_ejection_time, 300 s, or the base when
 *   larger). The count drops by one at each `interval` sweep once the
 *   endpoint has been back for a base ejection time, so a host that
 *   recovered for good returns to short ejections.
 * - Un-ejection happens on the interval timer and lazily on every pick
 *   (pick compares the clock with the earliest end of an ejection), so an
 *   injected clock is exact in tests.
 * - maxEjectionPercent: an ejection happens while (ejected + 1) / endpoints
 *   ≤ maxEjectionPercent, and — Envoy's always_eject_one_host, which gRPC's
 *   outlier detection follows too — the first ejection is always allowed
 *   when the percent is above 0, so the default 10 % still protects a
 *   service of fewer than ten endpoints. 0 % never ejects. An ejection
 *   refused by the percent is reported as an `overflow` event (Envoy's
 *   ejections_overflow) and the counters are kept, so the endpoint is
 *   ejected at its next failure once room is made. Ejections whose time is
 *   up are ended before a failure is counted, so they never take up room.
 *   (Envoy's architecture docs: "if no hosts have been ejected, Envoy will
 *   eject the host immediately"; recent versions make that the
 *   always_eject_one_host option. We keep it on.)
 * - Panic (destination.ts): with maxEjectionPercent ≤ 100 − the panic
 *   threshold (50 % by default), ejections alone leave enough endpoints to
 *   stay out of panic mode, except the one allowed ejection of a
 *   one-endpoint destination, which then still gets traffic (as in Envoy).
 */
import type { OutlierDetection } from '../../src/config/types.js';
import type { DestinationTrafficState, EndpointTrafficState } from './traffic-state.js';
import type { AttemptOutcome, EjectionReason, OutlierDecision } from './types.js';

export type { EjectionReason } from './types.js';

/** Envoy's default max_ejection_time. */
export const MAX_EJECTION_TIME_MS = 300_000;

/** The four decisions record() can return, shared (no allocation per attempt). */
export const EJECTED_5XX: OutlierDecision = Object.freeze({ ejected: true, reason: 'consecutive-5xx' });
export const EJECTED_GATEWAY: OutlierDecision = Object.freeze({ ejected: true, reason: 'consecutive-gateway' });
export const REFUSED_5XX: OutlierDecision = Object.freeze({ ejected: false, reason: 'consecutive-5xx' });
export const REFUSED_GATEWAY: OutlierDecision = Object.freeze({ ejected: false, reason: 'consecutive-gateway' });

/** What outlier detection tells telemetry. */
export type OutlierEvent =
  | {
      readonly kind: 'ejected';
      readonly destination: string;
      readonly endpoint: string;
      readonly reason: EjectionReason;
      /** The endpoint's ejection count, this one included. */
      readonly ejections: number;
      readonly durationMs: number;
    }
  | { readonly kind: 'overflow'; readonly destination: string; readonly endpoint: string; readonly reason: EjectionReason }
  | { readonly kind: 'unejected'; readonly destination: string; readonly endpoint: string; readonly ejectedForMs: number };

export type OutlierListener = (event: OutlierEvent) => void;

export interface OutlierDetectorOptions {
  readonly spec: OutlierDetection;
  /** The destination's name, for events. */
  readonly destination: string;
  /** The destination's endpoint keys and their states, index-aligned. */
  readonly keys: readonly string[];
  readonly states: readonly EndpointTrafficState[];
  /** Shared with every version's Destination of this name: generation and the earliest un-ejection. */
  readonly shared: DestinationTrafficState;
  readonly now: () => number;
  readonly onEvent: OutlierListener | undefined;
}

export class OutlierDetector {
  private readonly timer: NodeJS.Timeout;
  private readonly maxEjectionMs: number;

  constructor(private readonly options: OutlierDetectorOptions) {
    this.maxEjectionMs = Math.max(MAX_EJECTION_TIME_MS, options.spec.baseEjectionTimeMs);
    this.timer = setInterval(() => this.sweep(), options.spec.intervalMs);
    this.timer.unref();
    // State carried over from a previous version may hold ejections already over.
    this.recomputeNextUneject();
    this.refresh();
  }

  /** The end of one attempt on the endpoint at `index`; what it made outlier detection do, undefined when nothing. */
  record(index: number, outcome: AttemptOutcome): OutlierDecision | undefined {
    const state = this.options.states[index];
    if (state === undefined) return undefined;
    if (outcome === 'success') {
      state.consecutive5xx = 0;
      state.consecutiveGateway = 0;
      return undefined;
    }
    // An ejection whose time is up ends before this failure counts: the
    // endpoint's own failure is counted again, and it no longer takes up
    // maxEjectionPercent's room (an attempt in flight may end before any pick
    // or sweep un-ejected it).
    this.refresh();
    if (state.ejected) return undefined; // attempts started before the ejection still end; they do not extend it
    const spec = this.options.spec;
    if (outcome === '5xx') state.consecutiveGateway = 0;
    else state.consecutiveGateway++;
    state.consecutive5xx++;
    if (spec.consecutiveGatewayErrors > 0 && state.consecutiveGateway >= spec.consecutiveGatewayErrors) {
      return this.eject(index, state, 'consecutive-gateway') ? EJECTED_GATEWAY : REFUSED_GATEWAY;
    }
    if (spec.consecutive5xx > 0 && state.consecutive5xx >= spec.consecutive5xx) {
      return this.eject(index, state, 'consecutive-5xx') ? EJECTED_5XX : REFUSED_5XX;
    }
    return undefined;
  }

  /** Un-ejects endpoints whose time is up; cheap when none is due (one clock read). */
  refresh(): void {
    const shared = this.options.shared;
    if (shared.nextUnejectMs === Number.POSITIVE_INFINITY) return;
    const now = this.options.now();
    if (now < shared.nextUnejectMs) return;
    this.unejectDue(now);
  }

  /** The interval timer: un-eject, and lower the multiplier of endpoints that stayed back. */
  sweep(): void {
    const now = this.options.now();
    this.unejectDue(now);
    const base = this.options.spec.baseEjectionTimeMs;
    for (const state of this.options.states) {
      if (!state.ejected && state.ejections > 0 && state.unejectedAtMs >= 0 && now - state.unejectedAtMs >= base) state.ejections--;
    }
  }

  close(): void {
    clearInterval(this.timer);
  }

  /** False: maxEjectionPercent refused it (the counters stay, so the next failure asks again). */
  private eject(index: number, state: EndpointTrafficState, reason: EjectionReason): boolean {
    const { spec, states, shared, destination, keys, onEvent } = this.options;
    let ejected = 0;
    for (const other of states) if (other.ejected) ejected++;
    const allowed = spec.maxEjectionPercent > 0 && (ejected === 0 || (100 * (ejected + 1)) / states.length <= spec.maxEjectionPercent);
    if (!allowed) {
      onEvent?.({ kind: 'overflow', destination, endpoint: keys[index]!, reason });
      return false;
    }
    const now = this.options.now();
    state.ejections++;
    const durationMs = Math.min(spec.baseEjectionTimeMs * state.ejections, this.maxEjectionMs);
    state.ejected = true;
    state.ejectedAtMs = now;
    state.ejectedUntilMs = now + durationMs;
    state.consecutive5xx = 0;
    state.consecutiveGateway = 0;
    if (state.ejectedUntilMs < shared.nextUnejectMs) shared.nextUnejectMs = state.ejectedUntilMs;
    shared.generation++;
    onEvent?.({ kind: 'ejected', destination, endpoint: keys[index]!, reason, ejections: state.ejections, durationMs });
    return true;
  }

  private unejectDue(now: number): void {
    const { states, shared, destination, keys, onEvent } = this.options;
    let changed = false;
    for (let i = 0; i < states.length; i++) {
      const state = states[i]!;
      if (!state.ejected || state.ejectedUntilMs > now) continue;
      state.ejected = false;
      state.unejectedAtMs = now;
      changed = true;
      onEvent?.({ kind: 'unejected', destination, endpoint: keys[i]!, ejectedForMs: now - state.ejectedAtMs });
    }
    if (changed) shared.generation++;
    this.recomputeNextUneject();
  }

  private recomputeNextUneject(): void {
    let next = Number.POSITIVE_INFINITY;
    for (const state of this.options.states) if (state.ejected && state.ejectedUntilMs < next) next = state.ejectedUntilMs;
    this.options.shared.nextUnejectMs = next;
  }
}
