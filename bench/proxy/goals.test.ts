import { describe, expect, it } from 'vitest';
import { evaluateGoals } from './goals.js';
import { renderReport } from './report.js';
import type { BenchRun, LoadName, ProxyUsage, ScenarioResult } from './results.js';
import type { TargetName } from './targets.js';

function proxy(name: string, cpuUsPerRequest: number, rssMb: number): ProxyUsage {
  return { name, cpuSeconds: 1, cpuUsPerRequest, peakRssBytes: rssMb * 1e6, coreShare: 0.5, processes: 1 };
}

function scenario(key: string, load: LoadName, rps: number, p90Us: number, p99Us: number, proxies: ProxyUsage[], extra: Partial<ScenarioResult> = {}): ScenarioResult {
  const target = key.split('-')[0] as TargetName;
  return {
    key,
    target,
    tracing: key.endsWith('-traced') ? true : undefined,
    label: key,
    load,
    error: undefined,
    requests: rps * 10,
    seconds: 10,
    requestsPerSecond: rps,
    latencyUs: { p50: p90Us / 2, p90: p90Us, p99: p99Us, p999: undefined, max: p99Us * 2 },
    proxies,
    loadSideCpuSeconds: 1,
    coreBusy: [0.5, 0.5],
    otherCpuSeconds: 0,
    interruptSeconds: 0,
    non2xx: 0,
    failed: 0,
    generatorLagP99Us: undefined,
    raw: undefined,
    ...extra,
  };
}

const good = [
  scenario('haproxy', 'c50', 40_000, 1_000, 2_000, [proxy('haproxy', 20, 15)]),
  scenario('proxy1-traced', 'c50', 25_000, 2_000, 3_000, [proxy('sidecar', 35, 50)]),
  scenario('direct', 'rate', 1_000, 100, 200, []),
  scenario('proxy1-traced', 'rate', 1_000, 200, 300, [proxy('sidecar', 80, 55)]),
  scenario('proxy2-traced', 'rate', 1_000, 300, 450, [proxy('client sidecar', 90, 52), proxy('server sidecar', 85, 58)]),
];

describe('evaluateGoals', () => {
  it('passes every goal on figures inside them, quoting the figures', () => {
    const rows = evaluateGoals(good);
    expect(rows.map((r) => r.verdict)).toEqual(['PASS', 'PASS', 'PASS', 'PASS', 'PASS']);
    expect(rows[0]!.measured).toContain('0.63 ×');
    expect(rows[1]!.measured).toContain('0.200 ms');
    expect(rows[2]!.measured).toContain('0.250 ms');
    expect(rows[3]!.measured).toContain('90.0 µs worst');
    expect(rows[4]!.measured).toContain('58.0 MB peak worst');
  });

  it('fails each goal a figure misses, including throughput that only looks good because the load side limited HAProxy', () => {
    const bad = good.map((s) => ({ ...s, proxies: s.proxies.map((p) => ({ ...p })) }));
    // Same req/s as HAProxy, but three times HAProxy's CPU per request: one core would serve a third.
    bad[1] = scenario('proxy1-traced', 'c50', 40_000, 2_000, 3_000, [proxy('sidecar', 60, 50)]);
    bad[4] = scenario('proxy2-traced', 'rate', 1_000, 400, 520, [proxy('client sidecar', 101, 52), proxy('server sidecar', 85, 61)]);
    expect(evaluateGoals(bad).map((r) => r.verdict)).toEqual(['FAIL', 'FAIL', 'FAIL', 'FAIL', 'FAIL']);
  });

  it('fails a goal whose runs lost requests, and says which', () => {
    const lossy = [...good];
    lossy[4] = { ...good[4]!, failed: 500 };
    const rows = evaluateGoals(lossy);
    expect(rows[1]!.verdict).toBe('FAIL');
    expect(rows[1]!.measured).toContain('errors in proxy2-traced at rate (500 of 10000)');
  });

  it('warns beside the verdict when other work loaded the machine during a run it uses', () => {
    const noisy = [...good];
    noisy[2] = { ...good[2]!, otherCpuSeconds: 5 };
    const rows = evaluateGoals(noisy);
    expect(rows[1]!.verdict).toBe('PASS');
    expect(rows[1]!.measured).toContain('machine busy with other work (0.50 cores during direct at rate)');
    expect(rows[0]!.measured).not.toContain('machine busy');
  });

  it('says "not measured" and what is missing when a scenario did not run or failed', () => {
    const partial = good.filter((s) => s.key !== 'haproxy').map((s) => (s.key === 'proxy2-traced' ? { ...s, error: 'proxy not available: x' } : s));
    const rows = evaluateGoals(partial);
    expect(rows[0]).toMatchObject({ verdict: 'not measured', measured: 'needs haproxy at c50' });
    expect(rows[1]).toMatchObject({ verdict: 'not measured', measured: 'needs proxy2-traced at rate (failed: see below)' });
    // CPU and RSS fall back to the one-sidecar run.
    expect(rows[3]!.verdict).toBe('PASS');
    expect(evaluateGoals([]).every((r) => r.verdict === 'not measured')).toBe(true);
  });
});

describe('renderReport', () => {
  it('prints the machine, the goals with verdicts, one table per load and failed paths in the notes', () => {
    const run: BenchRun = {
      startedAt: '2026-11-21T12:00:00.000Z',
      finishedAt: '2026-11-21T12:05:00.000Z',
      command: 'npm run bench:proxy',
      partial: false,
      machine: { cpu: 'AMD EPYC', cores: 2, memory: '23.5 GiB', kernel: 'Linux 6', node: 'v20.20.2', haproxy: 'HAProxy version 2.6.12', nginx: 'nginx/1.22.1', wrk: 'wrk 4.1.0' },
      settings: { durationSeconds: 10, warmupSeconds: 2, rate: 1000, rateConnections: 16, loadCore: 0, proxyCore: 1, upstream: 'raw', tracingSink: 'sink.' },
      scenarios: [...good, { ...scenario('proxy2-untraced', 'c1', 0, 0, 0, []), error: 'proxy not available: unknown command' }],
      tracing: [{ key: 'proxy2-traced', requests: 1000, spans: 2000, spansPerRequest: 2, expectedPerRequest: 2 }],
      profile: undefined,
      notes: [],
    };
    const text = renderReport(run, 'proxy.json');
    expect(text).toContain('| CPU | AMD EPYC |');
    expect(text).toContain('both** sidecars on core 1');
    expect(text).toMatch(/\| throughput on one core .* \| \*\*PASS\*\* \|/);
    expect(text).toContain('### Closed loop, 1 connection');
    expect(text).toContain('### Closed loop, 50 connections');
    expect(text).toContain('### Constant rate, 1,000 req/s on 16 connections');
    expect(text).toContain('| proxy2-traced | 1,000 | 0.150 | 0.300 | 0.450 | – | 0.100 / 0.200 / 0.250 | 90.0 / 85.0 | 52.0 / 58.0 |');
    expect(text).toContain('| proxy2-untraced | failed (see Notes) |');
    expect(text).toContain('- proxy2-untraced (c1): proxy not available: unknown command');
    expect(text).toContain('| proxy2-traced | 1,000 | 2,000 | 2.000 | 2 |');
  });
});
