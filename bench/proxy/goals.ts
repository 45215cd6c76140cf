/**
 * The proxy goals of issue 3 (tracing at 100 %), each checked against the
 * run's figures: PASS, FAIL, or not measured when a scenario it needs did not
 * run or failed.
 */
import type { LoadName, ScenarioResult } from './results.js';

export const GOALS = {
  /** Our proxy's throughput on one core ÷ single-threaded HAProxy's. */
  throughputVsHaproxy: 0.5,
  /** Added latency of the two-proxy path at 1,000 req/s, ms (Istio 1.20: 0.228 / 0.298). */
  addedP90Ms: 0.23,
  addedP99Ms: 0.3,
  /** CPU per request per proxy, µs (Istio 1.24: 0.2 vCPU per 1,000 req/s). */
  cpuUsPerRequest: 100,
  /** Peak RSS per proxy at 1,000 req/s, MB (10^6 bytes). */
  rssMb: 60,
  /** A scenario losing more than this share of requests cannot pass a goal. */
  maxErrorShare: 0.001,
  /** Other processes using more than this many cores during a run make its figures suspect (said beside the verdict). */
  maxOtherCores: 0.1,
} as const;

export type Verdict = 'PASS' | 'FAIL' | 'not measured';

export interface GoalRow {
  goal: string;
  measured: string;
  verdict: Verdict;
}

function find(scenarios: readonly ScenarioResult[], key: string, load: LoadName): ScenarioResult | undefined {
  const found = scenarios.find((s) => s.key === key && s.load === load);
  return found?.error === undefined ? found : undefined;
}

function errorShare(s: ScenarioResult): number {
  return s.requests > 0 ? (s.non2xx + s.failed) / s.requests : 1;
}

/** Why a scenario cannot be used for a goal, or undefined. */
function missing(scenarios: readonly ScenarioResult[], needs: ReadonlyArray<readonly [string, LoadName]>): string | undefined {
  const absent = needs.filter(([key, load]) => find(scenarios, key, load) === undefined);
  if (absent.length === 0) return undefined;
  return `needs ${absent.map(([key, load]) => `${key} at ${load}`).join(' and ')}${absent.some(([key, load]) => scenarios.some((s) => s.key === key && s.load === load && s.error !== undefined)) ? ' (failed: see below)' : ''}`;
}

const fmt = (n: number, digits: number): string => n.toFixed(digits);

export function evaluateGoals(scenarios: readonly ScenarioResult[]): GoalRow[] {
  const rows: GoalRow[] = [];
  const errorsNote = (list: readonly ScenarioResult[]): string => {
    const bad = list.filter((s) => errorShare(s) > GOALS.maxErrorShare);
    return bad.length === 0 ? '' : `; errors in ${bad.map((s) => `${s.key} at ${s.load} (${s.non2xx + s.failed} of ${s.requests})`).join(', ')}`;
  };
  // Not a verdict change (the figures are what they are) but a warning beside it.
  const noiseNote = (list: readonly ScenarioResult[]): string => {
    const busy = list.filter((s) => s.otherCpuSeconds / s.seconds > GOALS.maxOtherCores);
    return busy.length === 0 ? '' : `; machine busy with other work (${busy.map((s) => `${(s.otherCpuSeconds / s.seconds).toFixed(2)} cores during ${s.key} at ${s.load}`).join(', ')})`;
  };

  // 1. Throughput on one core, 50 connections.
  {
    const goal = `throughput on one core ≥ ${GOALS.throughputVsHaproxy} × HAProxy (1 sidecar, 50 connections)`;
    const why = missing(scenarios, [
      ['haproxy', 'c50'],
      ['proxy1-traced', 'c50'],
    ]);
    if (why !== undefined) {
      rows.push({ goal, measured: why, verdict: 'not measured' });
    } else {
      const haproxy = find(scenarios, 'haproxy', 'c50')!;
      const ours = find(scenarios, 'proxy1-traced', 'c50')!;
      const ratio = ours.requestsPerSecond / haproxy.requestsPerSecond;
      // Requests one fully busy core could serve: 1 / CPU per request. Decides when the load side, not the proxy, limited a run.
      const haproxyCpu = haproxy.proxies[0]?.cpuUsPerRequest ?? Number.NaN;
      const oursCpu = ours.proxies[0]?.cpuUsPerRequest ?? Number.NaN;
      const capacity = haproxyCpu / oursCpu;
      const errors = errorsNote([haproxy, ours]);
      const pass = ratio >= GOALS.throughputVsHaproxy && capacity >= GOALS.throughputVsHaproxy && errors === '';
      rows.push({
        goal,
        measured:
          `${fmt(ours.requestsPerSecond, 0)} / ${fmt(haproxy.requestsPerSecond, 0)} req/s = ${fmt(ratio, 2)} ×; ` +
          `per CPU-second (1 / CPU per request) ${fmt(1e6 / oursCpu, 0)} / ${fmt(1e6 / haproxyCpu, 0)} = ${fmt(capacity, 2)} ×${errors}${noiseNote([haproxy, ours])}`,
        verdict: pass ? 'PASS' : 'FAIL',
      });
    }
  }

  // 2 and 3. Added latency of the two-proxy path at the constant rate.
  for (const [quantile, limit] of [
    ['p90', GOALS.addedP90Ms],
    ['p99', GOALS.addedP99Ms],
  ] as const) {
    const goal = `two sidecars add ≤ ${limit} ms ${quantile} at the constant rate`;
    const why = missing(scenarios, [
      ['direct', 'rate'],
      ['proxy2-traced', 'rate'],
    ]);
    if (why !== undefined) {
      rows.push({ goal, measured: why, verdict: 'not measured' });
      continue;
    }
    const direct = find(scenarios, 'direct', 'rate')!;
    const ours = find(scenarios, 'proxy2-traced', 'rate')!;
    const addedMs = (ours.latencyUs[quantile] - direct.latencyUs[quantile]) / 1000;
    const errors = errorsNote([direct, ours]);
    rows.push({
      goal,
      measured: `${fmt(addedMs, 3)} ms (${fmt(ours.latencyUs[quantile] / 1000, 3)} − ${fmt(direct.latencyUs[quantile] / 1000, 3)} direct)${errors}${noiseNote([direct, ours])}`,
      verdict: addedMs <= limit && errors === '' ? 'PASS' : 'FAIL',
    });
  }

  // 4 and 5. CPU and memory per proxy at the constant rate: the worst of every traced sidecar measured.
  const traced = (['proxy1-traced', 'proxy2-traced'] as const).map((key) => find(scenarios, key, 'rate')).filter((s): s is ScenarioResult => s !== undefined);
  const perProxy = traced.flatMap((s) => s.proxies.map((p) => ({ scenario: s, proxy: p })));
  {
    const goal = `CPU ≤ ${GOALS.cpuUsPerRequest} µs per request per sidecar at the constant rate`;
    if (perProxy.length === 0) {
      rows.push({ goal, measured: missing(scenarios, [['proxy1-traced', 'rate']]) ?? 'no sidecar measured', verdict: 'not measured' });
    } else {
      const worst = perProxy.reduce((a, b) => (b.proxy.cpuUsPerRequest > a.proxy.cpuUsPerRequest ? b : a));
      const all = perProxy.map((x) => `${x.scenario.key} ${x.proxy.name} ${fmt(x.proxy.cpuUsPerRequest, 1)}`).join(', ');
      rows.push({
        goal,
        measured: `${fmt(worst.proxy.cpuUsPerRequest, 1)} µs worst (${all})${noiseNote(traced)}`,
        verdict: worst.proxy.cpuUsPerRequest <= GOALS.cpuUsPerRequest ? 'PASS' : 'FAIL',
      });
    }
  }
  {
    const goal = `RSS ≤ ${GOALS.rssMb} MB per sidecar at the constant rate`;
    if (perProxy.length === 0) {
      rows.push({ goal, measured: missing(scenarios, [['proxy1-traced', 'rate']]) ?? 'no sidecar measured', verdict: 'not measured' });
    } else {
      const worst = perProxy.reduce((a, b) => (b.proxy.peakRssBytes > a.proxy.peakRssBytes ? b : a));
      const all = perProxy.map((x) => `${x.scenario.key} ${x.proxy.name} ${fmt(x.proxy.peakRssBytes / 1e6, 1)}`).join(', ');
      rows.push({
        goal,
        measured: `${fmt(worst.proxy.peakRssBytes / 1e6, 1)} MB peak worst (${all})`,
        verdict: worst.proxy.peakRssBytes / 1e6 <= GOALS.rssMb ? 'PASS' : 'FAIL',
      });
    }
  }
  return rows;
}
