/**
 * A small seeded PRNG for fuzz tests, so every failure is reproducible from
 * the numbers a failing run prints. Each case gets a generator of its own,
 * derived from (seed, stream, case index): one case can be regenerated alone,
 * whatever the cases before it drew.
 */
import { randomInt } from 'node:crypto';

/** mulberry32: 32 bits of state, good enough spread for picking mutations, and fast. */
export class Random {
  private state: number;

  constructor(seed: number) {
    this.state = seed >>> 0;
  }

  /** Next unsigned 32-bit value. */
  next(): number {
    this.state = (this.state + 0x6d2b79f5) >>> 0;
    let t = this.state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return (t ^ (t >>> 14)) >>> 0;
  }

  /** Uniform in [0, 1). */
  float(): number {
    return this.next() / 0x1_0000_0000;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.float() * n);
  }

  /** Uniform integer in [lo, hi], both included. */
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.float() < p;
  }

  pick<T>(items: readonly T[]): T {
    if (items.length === 0) throw new Error('Random.pick from an empty list');
    return items[this.int(items.length)] as T;
  }

  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.next() & 0xff;
    return out;
  }

  /** A string of n characters drawn from `alphabet`. */
  string(n: number, alphabet: string): string {
    let s = '';
    for (let i = 0; i < n; i++) s += alphabet[this.int(alphabet.length)];
    return s;
  }
}

/** Mixes three numbers into one 32-bit seed (murmur3's finaliser over a simple combination). */
function mix(a: number, b: number, c: number): number {
  let h = (a ^ Math.imul(b + 0x9e3779b9, 0x85ebca6b) ^ Math.imul(c + 0x7f4a7c15, 0xc2b2ae35)) >>> 0;
  h = Math.imul(h ^ (h >>> 16), 0x85ebca6b);
  h = Math.imul(h ^ (h >>> 13), 0xc2b2ae35);
  return (h ^ (h >>> 16)) >>> 0;
}

/** Named streams, so the HTTP/1 and HTTP/2 cases of one seed do not share draws. */
export const STREAM_HTTP1 = 1;
export const STREAM_HTTP2 = 2;

/** The generator for case `index` of `stream` under `seed`. */
export function caseRandom(seed: number, stream: number, index: number): Random {
  return new Random(mix(seed, stream, index));
}

/**
 * The run's seed: FUZZ_SEED when set (decimal or 0x hex, to replay a failure),
 * else a fresh random one. Bad values are an error, not a silent new seed.
 */
export function fuzzSeed(env: NodeJS.ProcessEnv = process.env): number {
  const text = env['FUZZ_SEED'];
  if (text === undefined || text === '') return randomInt(0, 0xffff_ffff);
  const value = Number(text);
  if (!Number.isInteger(value) || value < 0 || value > 0xffff_ffff) {
    throw new Error(`FUZZ_SEED: '${text}' is not an unsigned 32-bit integer (decimal or 0x hex)`);
  }
  return value;
}
