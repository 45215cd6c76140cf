/**
 * The scenario clock: what goes wrong when, so that traces, aggregates (and
 * later the policy engine) have something to show. Times are shares of the
 * run, so `--duration 30` shows every phase; without --duration the cycle is
 * CYCLE_MS long and repeats.
 *
 *   share of the run   phase                 faults played
 *   0%   – 20%         steady                none
 *   20%  – 40%         reviews-v3 failing    reviews-v3 answers every request 503
 *   40%  – 65%         ratings slow too      reviews-v3 503, ratings +300 ms per call
 *   65%  – 100%        healed                none
 *
 * With --duration 30: 0–6 s steady, 6–12 s v3 failing, 12–19.5 s ratings
 * slow as well, 19.5–30 s healed. Without: the same over each 2 minutes.
 */
import type { Faults } from './apps/faults.js';

export interface Phase {
  readonly name: string;
  /** Where the phase starts, as a share of the run (0 to 1). */
  readonly startsAt: number;
  /** One line for people. */
  readonly description: string;
  /** Faults by workload name; workloads not named play none. */
  readonly faults: Readonly<Record<string, Faults>>;
}

export const RATINGS_SLOWDOWN_MS = 300;
const V3_FAILING: Faults = { errorRate: 1, delayMs: 0 };
const RATINGS_SLOW: Faults = { errorRate: 0, delayMs: RATINGS_SLOWDOWN_MS };

export const PHASES: readonly Phase[] = [
  { name: 'steady', startsAt: 0, description: 'all services healthy', faults: {} },
  { name: 'reviews-v3 failing', startsAt: 0.2, description: 'reviews-v3 answers every request with 503', faults: { 'reviews-v3': V3_FAILING } },
  {
    name: 'ratings slow',
    startsAt: 0.4,
    description: `reviews-v3 still failing; ratings takes ${RATINGS_SLOWDOWN_MS} ms longer per call`,
    faults: { 'reviews-v3': V3_FAILING, ratings: RATINGS_SLOW },
  },
  { name: 'healed', startsAt: 0.65, description: 'both healed', faults: {} },
];

/** Without --duration the scenario repeats every CYCLE_MS. */
export const CYCLE_MS = 120_000;

export interface ClockReading {
  readonly index: number;
  readonly phase: Phase;
  /** Milliseconds left in this phase. */
  readonly remainingMs: number;
  /** Which repetition (0 first); always 0 with --duration. */
  readonly cycle: number;
}

/** The run length the shares apply to: the duration, or one cycle. */
export function scenarioLengthMs(durationSeconds: number | undefined): number {
  return durationSeconds === undefined ? CYCLE_MS : durationSeconds * 1000;
}

/** The phase at `elapsedMs` since traffic started; past the end of a cycle it starts over. */
export function phaseAt(elapsedMs: number, lengthMs: number): ClockReading {
  const elapsed = Math.max(0, elapsedMs);
  const cycle = Math.floor(elapsed / lengthMs);
  const within = elapsed - cycle * lengthMs;
  let index = 0;
  for (let i = 0; i < PHASES.length; i++) if (within >= (PHASES[i] as Phase).startsAt * lengthMs) index = i;
  const next = PHASES[index + 1];
  const endsAt = next === undefined ? lengthMs : next.startsAt * lengthMs;
  return { index, phase: PHASES[index] as Phase, remainingMs: Math.max(0, endsAt - within), cycle };
}

function seconds(ms: number): string {
  const value = ms / 1000;
  return Number.isInteger(value) ? `${value}` : value.toFixed(1);
}

/** The timeline for people: `6–12 s  reviews-v3 failing: reviews-v3 answers every request with 503`. */
export function describeTimeline(lengthMs: number): string[] {
  return PHASES.map((phase, i) => {
    const end = (PHASES[i + 1]?.startsAt ?? 1) * lengthMs;
    return `${`${seconds(phase.startsAt * lengthMs)}–${seconds(end)} s`.padEnd(12)} ${phase.name}: ${phase.description}`;
  });
}
