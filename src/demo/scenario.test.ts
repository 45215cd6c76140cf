import { describe, expect, it } from 'vitest';
import { CYCLE_MS, PHASES, RATINGS_SLOWDOWN_MS, describeTimeline, phaseAt, scenarioLengthMs } from './scenario.js';

describe('scenario clock', () => {
  it('a 30 s run goes through every phase at the documented times', () => {
    const length = scenarioLengthMs(30);
    expect(length).toBe(30_000);
    const at = (seconds: number): string => phaseAt(seconds * 1000, length).phase.name;
    expect([0, 5.9, 6, 11.9, 12, 19.4, 19.5, 29.9].map(at)).toEqual([
      'steady',
      'steady',
      'reviews-v3 failing',
      'reviews-v3 failing',
      'ratings slow',
      'ratings slow',
      'healed',
      'healed',
    ]);
  });

  it('plays reviews-v3 failures, then ratings slowness on top, then nothing', () => {
    const faults = PHASES.map((phase) => phase.faults);
    expect(faults[0]).toEqual({});
    expect(faults[1]).toEqual({ 'reviews-v3': { errorRate: 1, delayMs: 0 } });
    expect(faults[2]).toEqual({ 'reviews-v3': { errorRate: 1, delayMs: 0 }, ratings: { errorRate: 0, delayMs: RATINGS_SLOWDOWN_MS } });
    expect(faults[3]).toEqual({});
  });

  it('says how long the phase has left', () => {
    expect(phaseAt(7_000, 30_000)).toMatchObject({ index: 1, remainingMs: 5_000, cycle: 0 });
    expect(phaseAt(25_000, 30_000)).toMatchObject({ index: 3, remainingMs: 5_000 });
  });

  it('without --duration repeats every cycle', () => {
    expect(scenarioLengthMs(undefined)).toBe(CYCLE_MS);
    expect(phaseAt(CYCLE_MS + 1_000, CYCLE_MS)).toMatchObject({ index: 0, cycle: 1 });
    expect(phaseAt(CYCLE_MS * 2 + CYCLE_MS * 0.5, CYCLE_MS)).toMatchObject({ index: 2, cycle: 2 });
    expect(phaseAt(-5, CYCLE_MS)).toMatchObject({ index: 0, cycle: 0 });
  });

  it('describes the timeline in seconds', () => {
    expect(describeTimeline(30_000)).toEqual([
      '0–6 s        steady: all services healthy',
      '6–12 s       reviews-v3 failing: reviews-v3 answers every request with 503',
      '12–19.5 s    ratings slow: reviews-v3 still failing; ratings takes 300 ms longer per call',
      '19.5–30 s    healed: both healed',
    ]);
  });
});
