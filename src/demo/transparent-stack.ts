/**
 * The demo with transparent capture (root only), built on the system
 * tests' topology code (src/netns): one pod (network namespace) per
 * workload on a bridge, plus `infra` for the collector and the control
 * plane and `load` for the load generator's side of a port forward. In each
 * workload pod `tracemesh iptables` installs REDIRECT capture, the sidecar
 * runs as uid 1337 in transparent mode, and the app runs unmodified: it
 * calls its peers by name on their service ports (`catalog:9080`), with no
 * proxy setting; the pod's rules hand the connection to the sidecar.
 *
 * Names: every pod is its workload's name, and a service that has no pod of
 * its own name (reviews) is an alias of its first workload's pod. The
 * caller's sidecar routes HTTP and gRPC by the service name in the request
 * (so reviews' 60/30/10 split still applies) and opaque TCP by the pod
 * address it was sent to. Sidecars register their pod's IPv4 address, so the
 * apps resolve names IPv4 first (the hosts files list IPv6 too).
 *
 * The load generator, the live view and the admin pages are reached through
 * port forwards (no interface or route in the host). Everything is removed
 * by stop(), and by the network's exit guard on a crash or a signal; names
 * carry the demo's pid, and a later run removes what a SIGKILLed one left.
 */
import { chownSync, existsSync, mkdirSync, readdirSync, realpathSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createMeshNetwork } from '../netns/mesh-network.js';
import type { MeshNetwork, Pod } from '../netns/mesh-network.js';
import type { PodProcess } from '../netns/pod-process.js';
import { PROXY_USER } from '../netns/process-user.js';
import { isProcessAlive } from '../netns/stale.js';
import { notReady } from './errors.js';
import { applyConfig } from './launch.js';
import type { DemoStack, ReadyWorkload, StackContext, StartedStack, TrackedProcess } from './stack.js';
import { ENTRY_WORKLOAD, WORKLOADS } from './topology.js';
import type { Workload } from './topology.js';
import { TRANSPARENT_NEEDS_ROOT, checkTransparentDemo } from './transparent.js';
import { APP_EXPORT_DELAY_MS, COLLECTOR_READY_MS, CONTROL_PLANE_PORT, CONTROL_PLANE_READY_MS, PROXY_METRICS_INTERVAL, QUERY_API_PORT } from './stack-settings.js';

/** Starts every name this demo puts in a global place: `tmdemo<pid>-web`. */
export const TRANSPARENT_BASE = 'tmdemo';
/** The pod the load generator's requests come from (through a port forward). */
export const LOAD_POD = 'load';

const OTLP_GRPC_PORT = 4317;
const OTLP_HTTP_PORT = 4318;
const ADMIN_PORT = 15000;
const READY_MS = 30_000;
const IPTABLES_MS = 30_000;
const APP_STOP_GRACE_MS = 12_000;
const SERVER_STOP_GRACE_MS = 20_000;
const TAIL_CHARS = 4_000;
/** The sidecars register their IPv4 address; an app that picked a name's IPv6 address would reach a destination no service claims. */
const APP_NODE_OPTIONS = '--dns-result-order=ipv4first';

/** The pods of the demo's network: each workload's, with service names as aliases where no pod has that name. */
export function demoPods(workloads: readonly Workload[] = WORKLOADS): Array<{ name: string; aliases: string[] }> {
  const podNames = new Set(workloads.map((w) => w.name));
  const aliased = new Set<string>();
  const pods = workloads.map((w) => {
    const aliases: string[] = [];
    if (!podNames.has(w.service) && !aliased.has(w.service)) {
      aliased.add(w.service);
      aliases.push(w.service);
    }
    return { name: w.name, aliases };
  });
  return [...pods, { name: LOAD_POD, aliases: [] }];
}

/**
 * What the sidecar (uid 1337) must read: the package the CLI belongs to
 * (nearest package.json above it) and where its node_modules and native
 * build really are; revealed by the network when a directory above is closed.
 */
export function proxyReadPaths(cli: string): string[] {
  let root = path.dirname(cli);
  while (!existsSync(path.join(root, 'package.json')) && path.dirname(root) !== root) root = path.dirname(root);
  const paths = [root];
  for (const name of ['node_modules', 'build']) {
    const candidate = path.join(root, name);
    if (!existsSync(candidate)) continue;
    const real = realpathSync(candidate);
    if (!paths.some((p) => real === p || real.startsWith(`${p}${path.sep}`))) paths.push(real);
  }
  return paths;
}

const STATE_ROOT = /^tracemesh-demo-(\d+)-proxies$/;

function stateRootFor(pid: number): string {
  return path.join(tmpdir(), `tracemesh-demo-${pid}-proxies`);
}

/** The sidecars' state dirs of runs that were SIGKILLed (their pid is gone). */
function removeStaleStateRoots(): void {
  for (const entry of readdirSync(tmpdir())) {
    const pid = Number(STATE_ROOT.exec(entry)?.[1] ?? 0);
    if (pid > 0 && pid !== process.pid && !isProcessAlive(pid)) rmSync(path.join(tmpdir(), entry), { recursive: true, force: true });
  }
}

/** A pod process as run-demo.ts watches it. */
class PodChild implements TrackedProcess {
  readonly label: string;
  readonly pid: number;
  readonly exited: PodProcess['exited'];

  constructor(
    readonly proc: PodProcess,
    readonly command: readonly string[],
    private readonly stopping: () => boolean,
  ) {
    this.label = proc.label;
    this.pid = proc.pid;
    this.exited = proc.exited;
  }

  get stopRequested(): boolean {
    return this.stopping();
  }

  tail(): string {
    return this.proc.output().slice(-TAIL_CHARS).trimEnd() || '(nothing)';
  }
}

export class TransparentStack implements DemoStack {
  private network: MeshNetwork | undefined;
  private stateRoot: string | undefined;
  private readonly apps: PodChild[] = [];
  private readonly proxies: PodChild[] = [];
  private readonly servers: PodChild[] = [];
  private stopping = false;

  constructor(private readonly context: StackContext) {
    checkTransparentDemo();
  }

  async start(): Promise<StartedStack> {
    const { guard, progress: say, paths, configDir } = this.context;
    say(`tracemesh demo --transparent: data in ${paths.dataDir}; building the pod network (namespaces ${TRANSPARENT_BASE}${process.pid}-*) ...`);
    const network = createMeshNetwork({ base: TRANSPARENT_BASE, pods: demoPods(), rootMessage: TRANSPARENT_NEEDS_ROOT });
    this.network = network;
    if (network.staleRemoved.length > 0) say(`removed what an earlier run left: ${network.staleRemoved.join(', ')}`);
    // The sidecars' state dirs: writable by uid 1337 wherever the data dir is; named by pid, removed by stop().
    removeStaleStateRoots();
    const stateRoot = stateRootFor(process.pid);
    rmSync(stateRoot, { recursive: true, force: true });
    mkdirSync(stateRoot, { mode: 0o755 });
    this.stateRoot = stateRoot;
    const infra = network.infra;

    const collector = this.spawn('infra', 'collector', [this.cli, 'collector', '--data-dir', paths.collectorDir, '--otlp-grpc-port', String(OTLP_GRPC_PORT),
      '--otlp-http-port', String(OTLP_HTTP_PORT), '--api-port', String(QUERY_API_PORT)], {}, this.servers);
    const controlPlane = this.spawn('infra', 'control plane', [this.cli, 'control-plane', '--config-dir', paths.configDir, '--host', '0.0.0.0',
      '--port', String(CONTROL_PLANE_PORT), '--startup-grace', '0s'], {}, this.servers);
    await guard(Promise.all([
      collector.proc.waitForLine(/^tracemesh collector ready: /, COLLECTOR_READY_MS),
      controlPlane.proc.waitForLine(/^tracemesh control-plane ready: /, CONTROL_PLANE_READY_MS),
    ]));
    const queryApiUrl = (await guard(network.forward('infra', QUERY_API_PORT))).url;
    const otlpGrpcUrl = `http://${infra.ipv4}:${OTLP_GRPC_PORT}`;
    say(`collector ready: query API ${queryApiUrl}, OTLP/gRPC ${otlpGrpcUrl} (in pod infra)`);
    const controlPlaneUrl = (await guard(network.forward('infra', CONTROL_PLANE_PORT))).url;
    const revision = await guard(applyConfig(controlPlaneUrl, configDir));
    say(`control plane ready: ${controlPlaneUrl} (http://${infra.ipv4}:${CONTROL_PLANE_PORT} in the pods), ${configDir} applied (revision ${revision})`);

    const workloads: ReadyWorkload[] = [];
    // Callees first, two at a time, as in explicit mode.
    for (let i = 0; i < WORKLOADS.length; i += 2) {
      const batch = WORKLOADS.slice(i, i + 2);
      workloads.push(...(await guard(Promise.all(batch.map((w) => this.startWorkload(w, infra))))));
    }
    const entryWorkload = WORKLOADS.find((w) => w.name === ENTRY_WORKLOAD) as Workload;
    const entryPod = network.pod(entryWorkload.name);
    // From the load pod to web's address: over the bridge, so web's inbound capture sees it as any client's call.
    const entry = await guard(network.forward(LOAD_POD, entryWorkload.port, entryPod.ipv4));
    return {
      queryApiUrl,
      controlPlaneUrl,
      entryPort: entry.port,
      workloads,
      urlLines: (traceCommand) => [
        `  pods: ${network.pods().map((pod) => `${pod.name} ${pod.ipv4}`).join(', ')} (ip netns exec ${network.prefix}-<pod> …)`,
        `  web (load pod → ${entryPod.ipv4}:${entryWorkload.port}, forwarded): http://127.0.0.1:${entry.port}/product/42`,
        `  query API (forwarded):     ${queryApiUrl}/api/v1/graph?since=5m`,
        `  control plane (forwarded): ${controlPlaneUrl}  (tracemesh apply -f ${configDir} --control-plane ${controlPlaneUrl})`,
        '  sidecars, uid 1337, REDIRECT capture (admin forwarded; metrics at /stats/prometheus):',
        ...workloads.map((w) => `    ${w.workload.name.padEnd(10)} http://127.0.0.1:${w.adminPort}/   app ${network.pod(w.workload.name).ipv4}:${w.workload.port}`),
        `  open a trace:              ${traceCommand} <trace id>`,
      ],
    };
  }

  private get cli(): string {
    return this.context.programs.cli;
  }

  private spawn(pod: string, what: string, args: string[], extra: { user?: typeof PROXY_USER; env?: Record<string, string>; cwd?: string; reveal?: string[] }, group: PodChild[]): PodChild {
    const network = this.network as MeshNetwork;
    const proc = network.spawn(pod, { command: process.execPath, args, label: `${what}`, ...extra });
    const child = new PodChild(proc, [process.execPath, ...args], () => this.stopping);
    group.push(child);
    this.context.adopt(child);
    return child;
  }

  private async startWorkload(workload: Workload, infra: Pod): Promise<ReadyWorkload> {
    const network = this.network as MeshNetwork;
    const { paths, programs } = this.context;
    const name = workload.name;
    const captured = await network.run(name, {
      command: process.execPath,
      args: [this.cli, 'iptables', '--mode', 'redirect', '--collector', `${infra.ipv4}:${OTLP_GRPC_PORT}`],
      timeoutMs: IPTABLES_MS,
      label: `${name} iptables`,
    });
    if (captured.code !== 0) throw notReady(`tracemesh iptables in pod ${name} failed (exit ${captured.code}): ${captured.stderr.trim() || captured.stdout.trim()}`);

    const stateDir = path.join(this.stateRoot as string, name);
    mkdirSync(stateDir, { mode: 0o700 });
    chownSync(stateDir, PROXY_USER.uid, PROXY_USER.gid);
    const proxy = this.spawn(name, `${name} proxy`, [this.cli, 'proxy', '--service', workload.service, '--version', workload.version, '--mode', 'transparent',
      '--app-port', String(workload.port), '--collector', `${infra.ipv4}:${OTLP_GRPC_PORT}`, '--control-plane', `http://${infra.ipv4}:${CONTROL_PLANE_PORT}`,
      '--state-dir', stateDir, '--metrics-interval', PROXY_METRICS_INTERVAL], { user: PROXY_USER, cwd: stateDir, reveal: proxyReadPaths(this.cli) }, this.proxies);

    const faultFile = workload.faults ? path.join(paths.faultsDir, `${name}.json`) : undefined;
    const appArgs = [programs.app(workload.script), '--port', String(workload.port), '--service-name', name, '--collector', `http://${infra.ipv4}:${OTLP_GRPC_PORT}`,
      '--export-delay-ms', APP_EXPORT_DELAY_MS, ...workload.appArgs];
    if (faultFile !== undefined) appArgs.push('--fault-file', faultFile);
    const app = this.spawn(name, `${name} app`, appArgs, { env: { NODE_OPTIONS: APP_NODE_OPTIONS } }, this.apps);
    await Promise.all([
      proxy.proc.waitForLine(/^tracemesh proxy ready: /, READY_MS),
      app.proc.waitForLine(/^tracemesh-demo \S+ listening on /, READY_MS),
    ]);
    const admin = await network.forward(name, ADMIN_PORT);
    const pod = network.pod(name);
    this.context.progress(`${name}: pod ${pod.ipv4}, app :${workload.port}, sidecar (uid ${PROXY_USER.uid}) admin forwarded to :${admin.port}`);
    return { workload, adminPort: admin.port, faultFile };
  }

  /** Apps first (they flush their spans), then sidecars, then the control plane and the collector; then the network goes. */
  async stop(say: (line: string) => void): Promise<void> {
    this.stopping = true;
    const report = (child: PodChild, exit: { code: number | null; signal: string | null }): void => {
      if (exit.code !== 0 && exit.signal === null) say(`  ${child.label} exited with code ${exit.code ?? '?'} when stopped; its last line: ${child.tail().split('\n').pop() ?? ''}`);
    };
    const stopAll = async (group: readonly PodChild[], graceMs: number): Promise<void> => {
      await Promise.all(group.map(async (child) => report(child, await child.proc.stop(graceMs))));
    };
    try {
      await stopAll(this.apps, APP_STOP_GRACE_MS);
      await stopAll(this.proxies, APP_STOP_GRACE_MS);
      for (const server of [...this.servers].reverse()) await stopAll([server], SERVER_STOP_GRACE_MS);
    } finally {
      try {
        await this.network?.teardown();
      } finally {
        if (this.stateRoot !== undefined) rmSync(this.stateRoot, { recursive: true, force: true });
      }
    }
  }

  killNow(): void {
    this.stopping = true;
    try {
      this.network?.teardownNow();
    } finally {
      if (this.stateRoot !== undefined) rmSync(this.stateRoot, { recursive: true, force: true });
    }
  }
}
