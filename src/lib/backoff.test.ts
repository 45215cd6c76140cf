import { describe, expect, it } from 'vitest';
import { backoffMs } from './backoff.js';

describe('backoffMs', () => {
  it('doubles from 250 ms and stops at 5 s, also for very many attempts', () => {
    expect([0, 1, 2, 3, 4, 5, 6, 1000].map((a) => backoffMs(a))).toEqual([250, 500, 1000, 2000, 4000, 5000, 5000, 5000]);
  });

  it('takes other bounds', () => {
    expect([0, 1, 2].map((a) => backoffMs(a, 10, 25))).toEqual([10, 20, 25]);
  });
});
