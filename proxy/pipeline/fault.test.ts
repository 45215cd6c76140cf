import { describe, expect, it } from 'vitest';
import type { FaultSpec } from '../../src/config/types.js';
import { Random } from '../../test/support/fuzz/random.js';
import { decideFault, rollPercent } from './fault.js';
import { NO_FAULT } from './types.js';

/** A random source that returns the given draws in order and fails the test on one draw too many. */
function draws(...values: number[]): { random: () => number; left: () => number } {
  let next = 0;
  return {
    random: () => {
      if (next >= values.length) throw new Error(`unexpected random draw #${next + 1}`);
      return values[next++] as number;
    },
    left: () => values.length - next,
  };
}

const noDraws = (): number => {
  throw new Error('no random draw expected');
};

describe('rollPercent', () => {
  it('100 always holds and 0 never does, without drawing', () => {
    expect(rollPercent(100, noDraws)).toBe(true);
    expect(rollPercent(0, noDraws)).toBe(false);
  });

  it('holds when the draw falls below the percentage, fractional ones included', () => {
    expect(rollPercent(5, draws(0.0499).random)).toBe(true);
    expect(rollPercent(5, draws(0.05).random)).toBe(false);
    expect(rollPercent(0.5, draws(0.004).random)).toBe(true);
    expect(rollPercent(0.5, draws(0.006).random)).toBe(false);
  });
});

describe('decideFault', () => {
  const both: FaultSpec = { delay: { fixedMs: 50, percent: 10 }, abort: { kind: 'http', status: 503, percent: 20 } };

  it('no spec: the shared NO_FAULT, nothing drawn', () => {
    expect(decideFault(null, noDraws)).toBe(NO_FAULT);
  });

  it('rolls the delay and the abort independently, delay first', () => {
    expect(decideFault(both, draws(0.05, 0.5).random)).toEqual({ delayMs: 50, abort: undefined });
    expect(decideFault(both, draws(0.5, 0.1).random)).toEqual({ delayMs: 0, abort: { status: 503, grpc: false } });
    expect(decideFault(both, draws(0.0, 0.0).random)).toEqual({ delayMs: 50, abort: { status: 503, grpc: false } });
    const none = draws(0.5, 0.5);
    expect(decideFault(both, none.random)).toBe(NO_FAULT);
    expect(none.left()).toBe(0);
  });

  it('percent 100 always and 0 never, without drawing', () => {
    const always: FaultSpec = { delay: { fixedMs: 7, percent: 100 }, abort: { kind: 'grpc', status: 14, percent: 100 } };
    expect(decideFault(always, noDraws)).toEqual({ delayMs: 7, abort: { status: 14, grpc: true } });
    const never: FaultSpec = { delay: { fixedMs: 7, percent: 0 }, abort: { kind: 'http', status: 500, percent: 0 } };
    expect(decideFault(never, noDraws)).toBe(NO_FAULT);
  });

  it('a delay-only or abort-only spec draws once', () => {
    const delayOnly = draws(0.01);
    expect(decideFault({ delay: { fixedMs: 20, percent: 2 }, abort: null }, delayOnly.random)).toEqual({ delayMs: 20, abort: undefined });
    expect(delayOnly.left()).toBe(0);
    const abortOnly = draws(0.99);
    expect(decideFault({ delay: null, abort: { kind: 'http', status: 418, percent: 99.5 } }, abortOnly.random)).toEqual({ delayMs: 0, abort: { status: 418, grpc: false } });
  });

  it('the shares come out as configured over many requests (seeded)', () => {
    const rng = new Random(42);
    const random = (): number => rng.float();
    let delayed = 0;
    let aborted = 0;
    let bothCount = 0;
    for (let i = 0; i < 10_000; i++) {
      const decision = decideFault(both, random);
      if (decision.delayMs > 0) delayed++;
      if (decision.abort !== undefined) aborted++;
      if (decision.delayMs > 0 && decision.abort !== undefined) bothCount++;
    }
    expect(Math.abs(delayed / 100 - 10)).toBeLessThan(1);
    expect(Math.abs(aborted / 100 - 20)).toBeLessThan(1);
    // Independent: about 10% × 20% = 2% get both.
    expect(Math.abs(bothCount / 100 - 2)).toBeLessThan(0.6);
  });
});
