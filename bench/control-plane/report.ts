/** bench/results/control-plane.md from one run of bench/control-plane/run.ts. */
import type { Quantiles } from './stats.js';

export interface Machine {
  readonly nproc: number;
  readonly cpuModel: string;
  /** /proc/loadavg when the run started. */
  readonly loadavg: string;
  /** /proc/loadavg when it finished. */
  readonly loadavgEnd: string;
  readonly memoryGiB: number;
  readonly node: string;
  readonly kernel: string;
}

export interface RunResult {
  readonly store: 'directory' | 'etcd';
  readonly proxies: number;
  readonly applies: number;
  /** Per apply: from the POST to the last proxy's ACK answered (ms). */
  readonly allAcked: Quantiles;
  /** Per proxy and apply: from the POST to that proxy's ACK answered (ms). */
  readonly perProxy: Quantiles;
  readonly cpuMsPerApply: number;
  /** Control-plane CPU time ÷ wall time over the measured applies (1 = one core). */
  readonly cpuShare: number;
  readonly rssBytes: number;
}

export interface Report {
  readonly started: Date;
  readonly finished: Date;
  readonly machine: Machine;
  readonly command: string;
  readonly pinned: boolean;
  readonly results: readonly RunResult[];
  readonly cpuProf: string | undefined;
  /** Processes the simulated proxies were spread over. */
  readonly workers: number;
}

const GOAL_PROXIES = 1000;
const GOAL_P99_MS = 1000;

function when(date: Date): string {
  return `${date.toISOString().replace('T', ' ').slice(0, 19)} UTC`;
}

const ms = (value: number): string => (Number.isNaN(value) ? '-' : value >= 100 ? value.toFixed(0) : value.toFixed(1));

export function renderReport(report: Report): string {
  const m = report.machine;
  const lines = [
    '# Control-plane benchmark',
    '',
    `Run on ${when(report.started)} with \`${report.command}\` (finished ${when(report.finished)}). Written by \`bench/control-plane/run.ts\`; do not edit by hand, run it again.`,
    '',
    '## Machine',
    '',
    '| | |',
    '| --- | --- |',
    `| CPU | ${m.cpuModel} |`,
    `| cores (nproc) | ${m.nproc} |`,
    `| load at start (/proc/loadavg) | ${m.loadavg} |`,
    `| load at end (/proc/loadavg) | ${m.loadavgEnd} |`,
    `| memory | ${m.memoryGiB.toFixed(1)} GiB |`,
    `| kernel | ${m.kernel} |`,
    `| Node.js | ${m.node} |`,
    '',
    '## Set-up',
    '',
    `- The control plane (\`ControlPlane\`, as \`tracemesh control-plane\` runs it, start-up grace 0) in a process of its own${report.pinned ? ', pinned to core 1 (taskset)' : ''}; the simulated proxies spread evenly over ${report.workers} worker processes (each its own event loop)${report.pinned ? ' on core 0, with the runner and etcd when used' : ''}. The machine is shared: other engineers' work shows in the load above.`,
    '- A simulated proxy speaks the real protocol and nothing more: POST /api/v1/registry, GET /api/v1/discovery/stream (NDJSON, its own connection), and a POST /api/v1/discovery/ack per snapshot or delta on a keep-alive connection of its own. It does not validate or merge what it receives. Each stream starts with the whole snapshot; after that the control plane sends deltas (only the changed documents), as to real proxies.',
    '- Before measuring: 50 Services applied, the proxies registered into them (so every snapshot carries one endpoint per proxy, as a real mesh does), every proxy ACKing, then 2 applies not measured.',
    `- An apply is POST /api/v1/config with one changed Service (what \`tracemesh apply -f\` sends); the time is from just before the POST to the last proxy's ACK answered by the control plane. ${report.results[0]?.applies ?? 0} applies per row, one after another with 50 ms between them.`,
    '- Directory store: a temp directory (the apply is seen through fs.watch). etcd: Debian etcd-server 3.4, one member, temp data dir; registrations in etcd too (leases).',
    '- CPU: process.cpuUsage() of the control-plane process over the measured applies, per apply and as a share of one core over that window. RSS: process.memoryUsage().rss after the applies.',
    '',
    '## Results',
    '',
    '| store | proxies | applies | all ACKed p50 (ms) | p99 (ms) | max (ms) | per-proxy ACK p50 (ms) | per-proxy p99 (ms) | CP CPU per apply (ms) | CP CPU share | CP RSS (MiB) |',
    '| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |',
    ...report.results.map(
      (r) =>
        `| ${r.store} | ${r.proxies} | ${r.applies} | ${ms(r.allAcked.p50)} | ${ms(r.allAcked.p99)} | ${ms(r.allAcked.max)} | ${ms(r.perProxy.p50)} | ${ms(r.perProxy.p99)} | ${ms(r.cpuMsPerApply)} | ${(r.cpuShare * 100).toFixed(0)} % | ${(r.rssBytes / 2 ** 20).toFixed(0)} |`,
    ),
    '',
    '## Goal',
    '',
    ...report.results
      .filter((r) => r.proxies === GOAL_PROXIES)
      .map((r) => `- ${r.store}: p99 from apply to every proxy's ACK at ${GOAL_PROXIES} proxies is ${ms(r.allAcked.p99)} ms: ${r.allAcked.p99 < GOAL_P99_MS ? 'met' : 'MISSED'} (goal < ${GOAL_P99_MS} ms).`),
    ...(report.results.some((r) => r.proxies === GOAL_PROXIES) ? [] : [`- not measured: no run with ${GOAL_PROXIES} proxies.`]),
    '',
    '## Before',
    '',
    'The first round (2026-11-21 17:44 UTC, load 13.65 at start) measured all-ACKed p99 at 1,000 proxies of 1,332 ms (directory) and 1,696 ms (etcd), p50 645 and 678 ms, with 118 and 146 ms of control-plane CPU per apply. Every apply then sent the whole snapshot (about 100 KB: the Service documents carry every registered endpoint) to every stream, about 100 MB per apply, and all simulated proxies shared one process and one event loop, so part of what was measured was that process reading 100 MB. Now an apply sends each proxy a delta of the one changed document (a few hundred bytes), and the simulated proxies are spread over worker processes.',
    '',
    'Reading the figures: the control plane works for "CP CPU per apply" of each apply (parsing and checking the applied YAML, storing it, building and serialising the snapshot once, writing it to every stream, and one ACK request per proxy). Where the all-ACKed time is far above that, the rest was waiting: for a core (compare the load at start with the core count), for etcd, or for the simulated proxies, whose worker processes share one core with the runner (and etcd).',
    ...(report.cpuProf === undefined ? [] : ['', `CPU profiles of the control plane (--cpu-prof) in ${report.cpuProf}.`]),
    '',
  ];
  return lines.join('\n');
}
