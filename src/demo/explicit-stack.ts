/**
 * The demo without root: every process on loopback in the demo's own
 * network, each sidecar in explicit mode (its app sends calls to it as to
 * an HTTP proxy). Started by launch.ts; stopped apps first, then sidecars,
 * then the control plane, the collector last.
 */
import type { ManagedChild } from './child.js';
import { applyConfig, startCollector, startControlPlane, startWorkload } from './launch.js';
import type { LaunchContext, RunningWorkload } from './launch.js';
import type { DemoStack, StackContext, StartedStack } from './stack.js';
import { ENTRY_WORKLOAD, WORKLOADS } from './topology.js';

const APP_STOP_GRACE_MS = 12_000;
const SERVER_STOP_GRACE_MS = 20_000;

export class ExplicitStack implements DemoStack {
  private readonly children: ManagedChild[] = [];
  private readonly launch: LaunchContext;

  constructor(private readonly context: StackContext) {
    this.launch = {
      paths: context.paths,
      programs: context.programs,
      configDir: context.configDir,
      adopt: (child) => {
        this.children.push(child);
        context.adopt(child);
      },
      progress: context.progress,
    };
  }

  async start(): Promise<StartedStack> {
    const { guard, progress: say, configDir } = this.context;
    say(`tracemesh demo: data in ${this.context.paths.dataDir} (reused by the next run); starting the collector (chDB) ...`);
    const collector = await guard(startCollector(this.launch));
    say(`collector ready: query API ${collector.queryApiUrl}, OTLP/gRPC ${collector.otlpGrpcUrl}`);
    const controlPlaneUrl = await guard(startControlPlane(this.launch));
    const revision = await guard(applyConfig(controlPlaneUrl, configDir));
    say(`control plane ready: ${controlPlaneUrl}, ${configDir} applied (revision ${revision})`);
    const workloads: RunningWorkload[] = [];
    // Callees first, two at a time: a 2-core laptop starts Node processes faster in small groups.
    for (let i = 0; i < WORKLOADS.length; i += 2) {
      const batch = WORKLOADS.slice(i, i + 2);
      workloads.push(...(await guard(Promise.all(batch.map((w) => startWorkload(this.launch, w, { otlpGrpcUrl: collector.otlpGrpcUrl, controlPlaneUrl }))))));
    }
    const entry = workloads.find((w) => w.workload.name === ENTRY_WORKLOAD) as RunningWorkload;
    return {
      queryApiUrl: collector.queryApiUrl,
      controlPlaneUrl,
      entryPort: entry.inboundPort,
      workloads,
      urlLines: (traceCommand) => [
        `  web (through its sidecar): http://127.0.0.1:${entry.inboundPort}/product/42`,
        `  query API:                 ${collector.queryApiUrl}/api/v1/graph?since=5m`,
        `  control plane:             ${controlPlaneUrl}  (tracemesh apply -f ${configDir} --control-plane ${controlPlaneUrl})`,
        '  sidecars (admin; metrics at /stats/prometheus):',
        ...workloads.map((w) => `    ${w.workload.name.padEnd(10)} http://127.0.0.1:${w.adminPort}/   inbound :${w.inboundPort}  app :${w.appPort}`),
        `  open a trace:              ${traceCommand} <trace id>`,
      ],
    };
  }

  /** Apps first (they flush their spans through nothing else), then sidecars, then the control plane, the collector last. */
  async stop(say: (line: string) => void): Promise<void> {
    const children = this.children;
    const apps = children.filter((c) => c.label.endsWith(' app'));
    const proxies = children.filter((c) => c.label.endsWith(' proxy'));
    const rest = children.filter((c) => !apps.includes(c) && !proxies.includes(c)).reverse();
    const report = (child: ManagedChild, exit: { code: number | null; signal: string | null }): void => {
      if (exit.code !== 0 && exit.signal === null && child.stopRequested) {
        say(`  ${child.label} exited with code ${exit.code ?? '?'} when stopped; its last line: ${child.tail().split('\n').pop() ?? ''}`);
      }
    };
    for (const group of [apps, proxies]) {
      await Promise.all(group.map(async (child) => report(child, await child.stop(APP_STOP_GRACE_MS))));
    }
    for (const child of rest) report(child, await child.stop(SERVER_STOP_GRACE_MS));
  }

  /** A second Ctrl-C: every process group, at once. */
  killNow(): void {
    for (const child of this.children) {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        // gone already
      }
    }
  }
}
