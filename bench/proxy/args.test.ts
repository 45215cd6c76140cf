import { describe, expect, it } from 'vitest';
import { parseArgs, targetSpecs } from './args.js';

describe('bench:proxy arguments', () => {
  it('defaults to 10 s runs after 5 s warm-up; --quick is 3 s after 1 s; explicit values win', () => {
    expect(parseArgs([])).toMatchObject({ durationSeconds: 10, warmupSeconds: 5, rate: 1000, rateConnections: 16, profile: false, tracing: 'both' });
    expect(parseArgs(['--quick'])).toMatchObject({ durationSeconds: 3, warmupSeconds: 1, quick: true });
    expect(parseArgs(['--quick', '--duration', '5', '--warmup', '0'])).toMatchObject({ durationSeconds: 5, warmupSeconds: 0 });
    expect(parseArgs(['--only', 'haproxy,proxy2', '--loads', 'rate', '--profile'])).toMatchObject({ only: ['haproxy', 'proxy2'], loads: ['rate'], profile: true });
    expect(parseArgs(['--proxy-args', ' --span-exporter  lean '])).toMatchObject({ proxyArgs: ['--span-exporter', 'lean'] });
  });

  it('rejects unknown flags, names and bad numbers with the flag in the message', () => {
    expect(() => parseArgs(['--fast'])).toThrow(/unknown flag --fast/);
    expect(() => parseArgs(['--only', 'envoy'])).toThrow(/--only: unknown 'envoy'/);
    expect(() => parseArgs(['--loads', ''])).toThrow(/--loads: empty list/);
    expect(() => parseArgs(['--duration', '0'])).toThrow(/--duration: expected a number from 1/);
    expect(() => parseArgs(['--rate', '1.5'])).toThrow(/--rate: expected an integer/);
    expect(() => parseArgs(['--tracing', 'sometimes'])).toThrow(/--tracing/);
    expect(() => parseArgs(['--duration'])).toThrow(/--duration: missing value/);
  });

  it('runs the references first, then each sidecar path traced and untraced as --tracing says', () => {
    const keys = (only: string[], tracing: 'on' | 'off' | 'both'): string[] =>
      targetSpecs(parseArgs(['--only', only.join(','), '--tracing', tracing])).map((s) => `${s.name}${s.tracing === undefined ? '' : s.tracing ? '+' : '-'}`);
    expect(keys(['proxy2', 'direct', 'haproxy', 'nginx', 'proxy1'], 'both')).toEqual(['direct', 'haproxy', 'nginx', 'proxy1+', 'proxy1-', 'proxy2+', 'proxy2-']);
    expect(keys(['proxy1', 'haproxy'], 'on')).toEqual(['haproxy', 'proxy1+']);
    expect(keys(['proxy2'], 'off')).toEqual(['proxy2-']);
  });
});
