/** The shapes bench/results/proxy.json holds, shared by the runner, the goals and the report. */
import type { ConstantRateResult } from './constant-rate.js';
import type { TargetName } from './targets.js';
import type { WrkResult } from './wrk.js';

export const LOAD_NAMES = ['c1', 'c50', 'rate'] as const;
export type LoadName = (typeof LOAD_NAMES)[number];

export interface ProxyUsage {
  /** `haproxy`, `nginx`, `sidecar`, `client sidecar`, `server sidecar`. */
  name: string;
  cpuSeconds: number;
  cpuUsPerRequest: number;
  peakRssBytes: number;
  /** CPU seconds ÷ wall seconds: 1 means the proxy kept its core busy all window. */
  coreShare: number;
  /** Processes counted (nginx: master and worker). */
  processes: number;
}

export interface Latency {
  /** Microseconds. */
  p50: number;
  p90: number;
  p99: number;
  /** Only the constant-rate generator has it (wrk prints 50/75/90/99). */
  p999: number | undefined;
  max: number;
}

export interface ScenarioResult {
  /** `proxy1-traced`, `haproxy`, … (targetKey). */
  key: string;
  target: TargetName;
  tracing: boolean | undefined;
  label: string;
  load: LoadName;
  /** Set when the scenario could not run; every figure is then NaN. */
  error: string | undefined;
  requests: number;
  seconds: number;
  requestsPerSecond: number;
  latencyUs: Latency;
  proxies: ProxyUsage[];
  /** Upstream, load generator and span sink: everything on the load core. */
  loadSideCpuSeconds: number;
  /** Busy share of each core over the window (1 = fully busy), whoever ran. */
  coreBusy: number[];
  /** Process CPU seconds outside the watched processes: other work on the machine (and the runner). */
  otherCpuSeconds: number;
  /** irq + softirq seconds over all cores: loopback packet delivery (ours mostly), charged to no process. */
  interruptSeconds: number;
  non2xx: number;
  /** wrk socket errors, or constant-rate requests never answered. */
  failed: number;
  /** Constant rate only: how late the generator's own timer fired (p99, µs), not charged to the system. */
  generatorLagP99Us: number | undefined;
  raw: WrkResult | ConstantRateResult | undefined;
}

/** Per traced target: spans the sink received over the target's life ÷ requests sent to it. */
export interface TracingCheck {
  key: string;
  requests: number;
  spans: number;
  spansPerRequest: number;
  /** 1 for one sidecar, 2 for two: one span per request per proxy. */
  expectedPerRequest: number;
}

export interface ProfileRow {
  name: string;
  where: string;
  ms: number;
  share: number;
}

export interface ProfileResult {
  /** The scenario profiled and the file written. */
  scenario: string;
  file: string | undefined;
  requestsPerSecond: number;
  totalMs: number;
  top: ProfileRow[];
  error: string | undefined;
}

export interface Machine {
  cpu: string;
  cores: number;
  memory: string;
  kernel: string;
  node: string;
  haproxy: string;
  nginx: string;
  wrk: string;
}

export interface Settings {
  durationSeconds: number;
  warmupSeconds: number;
  rate: number;
  rateConnections: number;
  loadCore: number;
  proxyCore: number;
  upstream: string;
  tracingSink: string;
}

export interface BenchRun {
  startedAt: string;
  finishedAt: string;
  command: string;
  /** A run limited by --only/--loads/--tracing/--quick: not the recorded result. */
  partial: boolean;
  machine: Machine;
  settings: Settings;
  scenarios: ScenarioResult[];
  tracing: TracingCheck[];
  profile: ProfileResult | undefined;
  notes: string[];
}
