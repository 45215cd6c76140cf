import { afterEach, describe, expect, it } from 'vitest';
import { DEFAULT_LIMITS } from '../limits.js';
import { DeadlineSweeper, sweepPeriodMs, type SweptConnection } from './deadlines.js';

const sweepers: DeadlineSweeper[] = [];
afterEach(() => {
  for (const s of sweepers.splice(0)) s.close();
});

function sweeper(periodMs: number): DeadlineSweeper {
  const s = new DeadlineSweeper(periodMs);
  sweepers.push(s);
  return s;
}

describe('sweepPeriodMs', () => {
  it('is a tenth of the shortest enabled timeout, within 10 ms and 1 s', () => {
    expect(sweepPeriodMs(DEFAULT_LIMITS)).toBe(1000);
    expect(sweepPeriodMs({ ...DEFAULT_LIMITS, requestHeaderTimeoutMs: 200 })).toBe(20);
    expect(sweepPeriodMs({ ...DEFAULT_LIMITS, requestTimeoutMs: 50 })).toBe(10);
    expect(sweepPeriodMs({ ...DEFAULT_LIMITS, idleTimeoutMs: 3_000, requestHeaderTimeoutMs: 0 })).toBe(300);
  });

  it('ignores disabled (0) timeouts', () => {
    expect(sweepPeriodMs({ ...DEFAULT_LIMITS, requestHeaderTimeoutMs: 0, idleTimeoutMs: 0, streamIdleTimeoutMs: 0, requestTimeoutMs: 0 })).toBe(1000);
  });
});

describe('DeadlineSweeper', () => {
  it('sweeps its members with the clock, and stops once it has none', async () => {
    const s = sweeper(10);
    expect(s.running).toBe(false);
    const seen: number[] = [];
    const member: SweptConnection = { sweep: (now) => seen.push(now) };
    s.add(member);
    expect(s.running).toBe(true);
    await expect.poll(() => seen.length, { timeout: 2000 }).toBeGreaterThanOrEqual(2);
    expect(seen[1] as number).toBeGreaterThan(seen[0] as number);
    s.delete(member);
    await expect.poll(() => s.running, { timeout: 2000 }).toBe(false);
    const count = seen.length;
    s.add({ sweep: () => {} });
    expect(s.running).toBe(true);
    expect(seen.length).toBe(count);
  });

  it('close() forgets the members and stops; safe twice', () => {
    const s = sweeper(10);
    s.add({ sweep: () => {} });
    s.close();
    s.close();
    expect(s.running).toBe(false);
    expect(s.size).toBe(0);
  });
});
