/** bench/results/proxy.md from a BenchRun: machine, set-up, goals, one table per load, tracing check, profile. */
import { GOALS, evaluateGoals } from './goals.js';
import type { BenchRun, LoadName, ScenarioResult } from './results.js';

const LOAD_TITLES: Readonly<Record<LoadName, string>> = {
  c1: 'Closed loop, 1 connection (wrk -t1 -c1)',
  c50: 'Closed loop, 50 connections (wrk -t1 -c50)',
  rate: 'Constant rate',
};

function num(n: number, digits = 0): string {
  if (!Number.isFinite(n)) return '–';
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function ms(us: number | undefined): string {
  return us === undefined || !Number.isFinite(us) ? '–' : (us / 1000).toFixed(3);
}

function pct(share: number): string {
  return Number.isFinite(share) ? `${Math.round(share * 100)} %` : '–';
}

/** `a / b` for the two sidecars of a path, one figure otherwise, `–` with no proxy. */
function perProxy(s: ScenarioResult, figure: (p: ScenarioResult['proxies'][number]) => string): string {
  if (s.proxies.length === 0) return '–';
  return s.proxies.map(figure).join(' / ');
}

function loadTable(run: BenchRun, load: LoadName): string[] {
  const rows = run.scenarios.filter((s) => s.load === load);
  if (rows.length === 0) return [];
  const haproxy = rows.find((s) => s.key === 'haproxy' && s.error === undefined);
  const direct = rows.find((s) => s.key === 'direct' && s.error === undefined);
  const rate = load === 'rate';
  const title = rate ? `${LOAD_TITLES.rate}, ${num(run.settings.rate)} req/s on ${run.settings.rateConnections} connections (bench/proxy/constant-rate.ts)` : LOAD_TITLES[load];
  const head = rate
    ? '| path | req/s | p50 ms | p90 ms | p99 ms | p99.9 ms | added p50 / p90 / p99 ms | CPU µs/req per proxy | peak RSS MB per proxy | proxy core busy | core 0 / core 1 busy | errors |'
    : '| path | req/s | × HAProxy | p50 ms | p90 ms | p99 ms | CPU µs/req per proxy | peak RSS MB per proxy | proxy core busy | core 0 / core 1 busy | errors |';
  const out = [`### ${title}`, '', head, head.replace(/[^|]+/g, (cell) => (cell.includes('path') ? ' --- ' : ' ---: '))];
  for (const s of rows) {
    if (s.error !== undefined) {
      const cells = head.split('|').length - 3;
      out.push(`| ${s.label} | failed (see Notes) |${' – |'.repeat(cells - 1)}`);
      continue;
    }
    const cpu = perProxy(s, (p) => num(p.cpuUsPerRequest, 1));
    const rss = perProxy(s, (p) => num(p.peakRssBytes / 1e6, 1));
    const busy = perProxy(s, (p) => pct(p.coreShare));
    const cores = s.coreBusy.map(pct).join(' / ');
    const errors = s.non2xx + s.failed === 0 ? '0' : `${s.non2xx} non-2xx, ${s.failed} failed`;
    if (rate) {
      const added =
        direct === undefined || s.key === 'direct'
          ? '–'
          : [s.latencyUs.p50 - direct.latencyUs.p50, s.latencyUs.p90 - direct.latencyUs.p90, s.latencyUs.p99 - direct.latencyUs.p99].map(ms).join(' / ');
      out.push(
        `| ${s.label} | ${num(s.requestsPerSecond)} | ${ms(s.latencyUs.p50)} | ${ms(s.latencyUs.p90)} | ${ms(s.latencyUs.p99)} | ${ms(s.latencyUs.p999)} | ${added} | ${cpu} | ${rss} | ${busy} | ${cores} | ${errors} |`,
      );
    } else {
      const ratio = haproxy === undefined ? '–' : (s.requestsPerSecond / haproxy.requestsPerSecond).toFixed(2);
      out.push(
        `| ${s.label} | ${num(s.requestsPerSecond)} | ${ratio} | ${ms(s.latencyUs.p50)} | ${ms(s.latencyUs.p90)} | ${ms(s.latencyUs.p99)} | ${cpu} | ${rss} | ${busy} | ${cores} | ${errors} |`,
      );
    }
  }
  if (rate) {
    const lag = rows.map((s) => s.generatorLagP99Us).filter((v): v is number => v !== undefined && Number.isFinite(v));
    if (lag.length > 0) {
      out.push('', `Generator timer lateness (not charged to any path), p99 over these runs: ${ms(Math.min(...lag))}–${ms(Math.max(...lag))} ms.`);
    }
  }
  out.push('');
  return out;
}

/** `jsonName`: the raw figures' file, beside the report. */
export function renderReport(run: BenchRun, jsonName: string): string {
  const m = run.machine;
  const st = run.settings;
  const goals = evaluateGoals(run.scenarios);
  const lines: string[] = [
    '# Proxy benchmark',
    '',
    `Run on ${run.startedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')} with \`${run.command}\` (finished ${run.finishedAt.replace('T', ' ').replace(/\.\d+Z$/, ' UTC')}). Written by \`bench/proxy/run.ts\`; do not edit by hand, run it again. Raw figures: \`${jsonName}\` beside this file.`,
    '',
  ];
  if (run.partial) lines.push('**Partial run** (`--quick`, `--only`, `--loads`, `--tracing` or `--proxy-main`): not the recorded result.', '');
  lines.push(
    '## Machine',
    '',
    '| | |',
    '| --- | --- |',
    `| CPU | ${m.cpu} |`,
    `| cores | ${m.cores} |`,
    `| memory | ${m.memory} |`,
    `| kernel | ${m.kernel} |`,
    `| Node.js | ${m.node} |`,
    `| HAProxy | ${m.haproxy} |`,
    `| nginx | ${m.nginx} |`,
    `| wrk | ${m.wrk} |`,
    '',
    '## Set-up',
    '',
    `- Pinning (taskset): every proxy under test on core ${st.proxyCore}; a two-sidecar path puts **both** sidecars on core ${st.proxyCore}, so they share one core. ` +
      `The upstream, the load generator (wrk or the constant-rate generator), the OTLP span sink and this runner on core ${st.loadCore}.`,
    `- Upstream: ${st.upstream}`,
    `- Tracing at 100 %: ${st.tracingSink} Tracing off: \`--collector none\` (no span recorded).`,
    `- HAProxy \`nbthread 1\`, \`mode http\`, \`http-reuse always\`, no logging; nginx \`worker_processes 1\`, upstream \`keepalive 64\`, \`proxy_http_version 1.1\`, \`proxy_set_header Connection ""\`, no access log. Both single hops to the same upstream, no tracing.`,
    '- Two sidecars: the load goes to the client sidecar\'s outbound listener as origin-form requests with `Host: bench-server:8080`, which the outbound listener routes by Host to the server sidecar\'s inbound listener, which fronts the upstream. One sidecar: the load goes to the inbound listener.',
    `- Each run: ${st.warmupSeconds} s warm-up (not measured), then ${st.durationSeconds} s measured. HTTP/1.1 keep-alive, \`GET /\`, 1 KiB response body.`,
    `- Closed loop: wrk 4.1 \`--latency\` (1 thread). Constant rate: bench/proxy/constant-rate.ts schedules request i at t0 + i / rate on ${st.rateConnections} keep-alive connections; a request due while all connections are busy waits for one and that wait counts in its latency (no coordinated omission); the generator's own timer lateness is excluded and shown separately. Added latency = path quantile − direct quantile at the same rate.`,
    `- CPU µs/req: utime + stime from /proc/<pid>/stat of the proxy's processes (nginx master + worker) over the measured window ÷ requests completed. Peak RSS: VmRSS from /proc/<pid>/status every 100 ms over the window (nginx: master + worker summed). "proxy core busy": the proxy's CPU seconds ÷ wall seconds; near 100 % means the proxy, not the load side, limited the run. "core 0 / core 1 busy": each core's busy share from /proc/stat, whoever ran (other work on the machine shows here).`,
    '',
    '## Goals (tracing at 100 %)',
    '',
    '| goal (issue 3) | measured | |',
    '| --- | --- | --- |',
    ...goals.map((g) => `| ${g.goal} | ${g.measured} | **${g.verdict}** |`),
    '',
    `Reference points: HAProxy single-threaded, no tracing; Istio 1.20 publishes 0.228 / 0.298 ms added p90 / p99 (goals: ${GOALS.addedP90Ms} / ${GOALS.addedP99Ms} ms) for its two Envoy sidecars at 1,000 req/s, Istio 1.24 0.2 vCPU per 1,000 req/s (200 µs per request for two sidecars).`,
    '',
    '## Results',
    '',
  );
  for (const load of ['c1', 'c50', 'rate'] as const) lines.push(...loadTable(run, load));
  if (run.tracing.length > 0) {
    lines.push(
      '## Tracing check',
      '',
      'Spans the OTLP sink received over each traced path\'s life (after the sidecars stopped and flushed) ÷ requests completed through it (warm-ups and the start-up check included). ' +
        'Requests still in flight when wrk stops are proxied and traced but not counted by wrk (up to 50 per 50-connection run), so a figure slightly above the expected one is normal; one below it means spans were dropped or lost.',
      '',
      '| path | requests | spans | spans per request | expected |',
      '| --- | ---: | ---: | ---: | ---: |',
      ...run.tracing.map((t) => `| ${t.key} | ${num(t.requests)} | ${num(t.spans)} | ${t.spansPerRequest.toFixed(3)} | ${t.expectedPerRequest} |`),
      '',
    );
  }
  const measured = run.scenarios.filter((s) => s.error === undefined);
  const other = measured.filter((s) => s.otherCpuSeconds > 0.1 * s.seconds);
  if (other.length > 0) {
    lines.push(
      '## Noise',
      '',
      `Other processes used more than 10 % of a core during ${other.length} of ${measured.length} runs (process CPU time outside the benchmark's processes, from /proc/stat; the runner itself counts here too): ` +
        other.map((s) => `${s.key} at ${s.load} ${num(s.otherCpuSeconds / s.seconds, 2)} cores`).join(', ') +
        '. Figures from those runs are less reliable: run again on an idle machine.',
      '',
    );
  }
  if (measured.length > 0) {
    const irq = measured.map((s) => s.interruptSeconds / s.seconds).filter(Number.isFinite);
    if (irq.length > 0) {
      lines.push(
        `Interrupt time (irq + softirq over both cores, mostly loopback packet delivery, charged to no process and so in no CPU µs/req figure): ${num(Math.min(...irq), 2)}–${num(Math.max(...irq), 2)} cores over the runs.`,
        '',
      );
    }
  }
  if (run.profile !== undefined) {
    const p = run.profile;
    lines.push('## Profile', '');
    if (p.error !== undefined) {
      lines.push(`Profiling ${p.scenario} failed: ${p.error}`, '');
    } else {
      lines.push(
        `${p.scenario}: a separate run after the measured ones (so the profiler's overhead is in no figure above) with \`node --cpu-prof\`, ${num(p.requestsPerSecond)} req/s under the profiler. ` +
          `The profile covers the sidecar's whole life (start-up, warm-up, the run), ${(p.totalMs / 1000).toFixed(1)} s of samples, file \`${p.file ?? '?'}\` (open it in Chrome DevTools or summarise it with \`node dist/bench/collector/profile-summary.js FILE\`). Top 20 functions by self time:`,
        '',
        '| function | where | ms | share |',
        '| --- | --- | ---: | ---: |',
        ...p.top.map((r) => `| \`${r.name || '(anonymous)'}\` | ${r.where === '' ? '' : `\`${r.where}\``} | ${r.ms.toFixed(0)} | ${(r.share * 100).toFixed(1)} % |`),
        '',
      );
    }
  }
  const failed = run.scenarios.filter((s) => s.error !== undefined);
  if (failed.length > 0 || run.notes.length > 0) {
    lines.push('## Notes', '');
    const seen = new Set<string>();
    for (const s of failed) {
      const text = `${s.key}: ${s.error}`;
      if (seen.has(text)) continue;
      seen.add(text);
      lines.push(`- ${s.key} (${s.load}${failed.filter((f) => f.key === s.key && f.error === s.error).length > 1 ? ' and the other loads' : ''}): ${s.error!.replace(/\n/g, ' ').slice(0, 1500)}`);
    }
    for (const note of run.notes) lines.push(`- ${note}`);
    lines.push('');
  }
  return lines.join('\n');
}
