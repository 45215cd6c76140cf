import { describe, expect, it } from 'vitest';
import type { LiveSnapshot } from './live-stats.js';
import { RateTracker } from './live-stats.js';
import { phaseAt } from './scenario.js';
import { formatClock, formatMs, formatPercent, progressLine, renderSummary, renderView } from './view.js';
import type { ViewState } from './view.js';

const stats: LiveSnapshot = {
  services: [
    { name: 'web', ratePerSecond: 19.96, requests: 400, errors: 40, errorRate: 0.1, p50Ms: 12.4, p99Ms: 340 },
    { name: 'ratings', ratePerSecond: 13.3, requests: 260, errors: 0, errorRate: 0, p50Ms: 0.84, p99Ms: 301.2 },
  ],
  edges: [
    { client: 'web', server: 'inventory', requests: 400, errors: 0, p50Ms: 1.5, p99Ms: 4 },
    { client: 'catalog', server: 'reviews', requests: 400, errors: 40, p50Ms: 9, p99Ms: 1250 },
  ],
  failedTraces: [{ traceId: 'a'.repeat(32), rootService: 'web', rootName: 'GET', durationMs: 14.2, errorCount: 4 }],
  slowTraces: [],
  spansStored: 12345,
  problem: undefined,
};

function state(overrides: Partial<ViewState> = {}): ViewState {
  return {
    elapsedMs: 7_400,
    durationMs: 30_000,
    frame: 3,
    clock: phaseAt(7_400, 30_000),
    rate: 20,
    load: { sent: 148, ok: 140, failed: 8, skipped: 0, failures: { '502': 7, error: 1 } },
    stats,
    traceCommand: 'tracemesh trace',
    color: false,
    ...overrides,
  };
}

describe('live view formatting', () => {
  it('formats times, durations and shares', () => {
    expect([formatClock(0), formatClock(7_999), formatClock(61_000), formatClock(-3)]).toEqual(['00:00', '00:07', '01:01', '00:00']);
    expect([formatMs(0), formatMs(0.84), formatMs(12.4), formatMs(301.2), formatMs(1250)]).toEqual(['-', '0.8 ms', '12 ms', '301 ms', '1.25 s']);
    expect(formatPercent(0.1234)).toBe('12.3%');
  });

  it('renders one frame: heartbeat, clock, phase, load, services, edges, traces', () => {
    expect(renderView(state())).toEqual([
      'tracemesh demo  ⠸ 00:07 / 00:30  phase 2/4: reviews-v3 failing (5 s left) - reviews-v3 answers every request with 503',
      'load 20 req/s: sent 148, ok 140, failed 8 (502×7, error×1), skipped 0   spans stored: 12345',
      '',
      'SERVICE         REQ/S   REQUESTS      ERR%        P50        P99',
      'web              20.0        400     10.0%      12 ms     340 ms',
      'ratings          13.3        260      0.0%     0.8 ms     301 ms',
      '',
      'EDGE (last 1-2 min)        REQS   ERRORS      ERR%        P50        P99',
      'catalog → reviews           400       40     10.0%     9.0 ms     1.25 s',
      'web → inventory             400        0      0.0%     1.5 ms     4.0 ms',
      '',
      'latest failed traces (open one with: tracemesh trace <id>)',
      `  ${'a'.repeat(32)}  web GET  14 ms  4 errors`,
      'latest slow traces (over 250 ms)',
      '  none',
      '',
      'Ctrl-C stops the demo and every process it started.',
    ]);
  });

  it('the heartbeat moves every frame, and without --duration the clock counts up alone', () => {
    const first = renderView(state({ frame: 0, durationMs: undefined }))[0];
    const second = renderView(state({ frame: 1, durationMs: undefined }))[0];
    expect(first).not.toBe(second);
    expect(first).toContain(' 00:07  phase');
  });

  it('colours failing rows red only when asked, and shows a query problem', () => {
    const lines = renderView(state({ color: true, stats: { ...stats, problem: 'no answer within 5s' } }));
    expect(lines.find((l) => l.includes('web   '))).toMatch(/^\x1b\[31mweb/);
    expect(lines.find((l) => l.includes('ratings '))).not.toContain('\x1b[31m');
    expect(lines).toContain('\x1b[31mquery API: no answer within 5s (showing the last figures)\x1b[0m');
    expect(renderView(state()).join('\n')).not.toContain('\x1b');
  });

  it('the --no-ui progress line names failing services', () => {
    expect(progressLine(state())).toBe('00:07 reviews-v3 failing: sent 148, failed 8, spans stored 12345, errors: web 10.0%');
  });

  it('the summary has requests sent, spans stored and errors by service', () => {
    expect(renderSummary({ elapsedMs: 30_500, load: state().load, stats })).toEqual([
      'tracemesh demo summary (00:30 of traffic)',
      '  requests sent: 148 (ok 140, failed 8 (502×7, error×1), skipped 0)',
      '  spans stored: 12345',
      '  errors by service:',
      '    web              40 of 400',
      '    ratings           0 of 260',
    ]);
  });

  it('rates are the growth of a count over the last seconds', () => {
    const rates = new RateTracker();
    expect(rates.record('web', 0, 0)).toBe(0);
    expect(rates.record('web', 1_000, 20)).toBe(20);
    expect(rates.record('web', 2_000, 40)).toBe(20);
    for (let t = 3_000; t <= 10_000; t += 1_000) rates.record('web', t, (t / 1000) * 20 + (t >= 8_000 ? 100 : 0));
    // 100 extra requests counted within the last 5 s window: (300 - 100) / 5 s = 40/s.
    expect(rates.record('web', 11_000, 11 * 20 + 100)).toBe(40);
  });
});
