/**
 * Starts the demo's processes, each in its own process group, and reads the
 * real ports from their ready lines: the collector, the control plane (with
 * examples/demo applied), then per workload a sidecar in explicit mode on
 * loopback and its app behind it. Every started child is added to
 * `children` at once, so whoever stops the demo stops it too, also when a
 * later start fails.
 */
import { mkdirSync, rmSync } from 'node:fs';
import path from 'node:path';
import { tmpdir } from 'node:os';
import { formatConfigIssue } from '../config/issues.js';
import { readConfigSources } from '../cli/config-files.js';
import { answerIssues, createControlPlaneClient, expectObject } from '../cli/control-plane-client.js';
import { parseReadyLine } from './apps/lifecycle.js';
import { ManagedChild } from './child.js';
import { notReady } from './errors.js';
import type { DemoPaths, DemoPrograms } from './paths.js';
import { freePort, preferredOrAny } from './ports.js';
import type { Workload } from './topology.js';
import { APP_EXPORT_DELAY_MS, COLLECTOR_READY_MS, CONTROL_PLANE_PORT, CONTROL_PLANE_READY_MS, PROXY_METRICS_INTERVAL, QUERY_API_PORT } from './stack-settings.js';

const PROXY_READY_MS = 30_000;
const APP_READY_MS = 30_000;

export interface RunningWorkload {
  readonly workload: Workload;
  readonly appPort: number;
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  readonly faultFile: string | undefined;
}

/** A clean environment: no http_proxy, OTEL_* or NODE_OPTIONS of the person's shell reach the children. */
function childEnv(): NodeJS.ProcessEnv {
  return { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir(), LANG: process.env['LANG'] ?? 'C.UTF-8' };
}

export interface LaunchContext {
  readonly paths: DemoPaths;
  readonly programs: DemoPrograms;
  readonly configDir: string;
  /** Called with every child as soon as it is started (before it is ready); the caller stops them. */
  readonly adopt: (child: ManagedChild) => void;
  /** One line of progress for people ("collector ready ..."). */
  readonly progress: (line: string) => void;
}

async function startChild<Ready>(
  context: LaunchContext,
  label: string,
  command: string,
  args: string[],
  ready: (line: string) => Ready | undefined,
  readyTimeoutMs: number,
): Promise<Ready> {
  const started = await ManagedChild.start({ label, command, args, env: childEnv(), ready, readyTimeoutMs, onSpawn: context.adopt });
  return started.ready;
}

export async function startCollector(context: LaunchContext): Promise<{ queryApiUrl: string; otlpGrpcUrl: string }> {
  const apiPort = await preferredOrAny(QUERY_API_PORT);
  const args = [context.programs.cli, 'collector', '--data-dir', context.paths.collectorDir, '--host', '127.0.0.1'];
  args.push('--otlp-grpc-port', '0', '--otlp-http-port', '0', '--api-port', String(apiPort));
  return startChild(
    context,
    'collector',
    process.execPath,
    args,
    (line) => {
      const match = /^tracemesh collector ready: OTLP\/gRPC :(\d+),.*query API (http:\/\/[^,\s]+),/.exec(line);
      return match === null ? undefined : { otlpGrpcUrl: `http://127.0.0.1:${match[1]}`, queryApiUrl: match[2] as string };
    },
    COLLECTOR_READY_MS,
  );
}

export async function startControlPlane(context: LaunchContext): Promise<string> {
  const port = await preferredOrAny(CONTROL_PLANE_PORT);
  // Startup grace 0: every proxy of the demo starts after the control plane, none has a workload to keep.
  const args = [context.programs.cli, 'control-plane', '--config-dir', context.paths.configDir, '--port', String(port), '--startup-grace', '0s'];
  return startChild(
    context,
    'control plane',
    process.execPath,
    args,
    (line) => /^tracemesh control-plane ready: (http:\/\/127\.0\.0\.1:\d+),/.exec(line)?.[1],
    CONTROL_PLANE_READY_MS,
  );
}

/** Sends examples/demo (or --config) to the control plane; a refusal names every problem. */
export async function applyConfig(controlPlaneUrl: string, configDir: string): Promise<string> {
  const client = createControlPlaneClient(new URL(controlPlaneUrl));
  const sources = await readConfigSources([configDir], () => {
    throw notReady('the demo reads no configuration from standard input');
  });
  const answer = await client.call('POST', '/api/v1/config', { sources });
  const issues = answerIssues(answer);
  if (answer.status === 400 && issues.length > 0) {
    throw notReady(`the control plane refused ${configDir}:\n${issues.map((issue) => `  ${formatConfigIssue(issue)}`).join('\n')}`);
  }
  const result = expectObject(answer, client.base);
  return String(result['revision']);
}

export async function startWorkload(context: LaunchContext, workload: Workload, urls: { otlpGrpcUrl: string; controlPlaneUrl: string }): Promise<RunningWorkload> {
  const appPort = await freePort();
  const stateDir = path.join(context.paths.proxiesDir, workload.name);
  // The cache holds the last run's endpoints (other ports); the control plane sends the current ones.
  rmSync(stateDir, { recursive: true, force: true });
  mkdirSync(stateDir, { recursive: true });
  const proxyArgs = [context.programs.cli, 'proxy', '--service', workload.service, '--version', workload.version, '--app-port', String(appPort)];
  proxyArgs.push('--host', '127.0.0.1', '--inbound-port', '0', '--outbound-port', '0', '--admin-port', '0');
  proxyArgs.push('--collector', urls.otlpGrpcUrl, '--control-plane', urls.controlPlaneUrl, '--state-dir', stateDir, '--metrics-interval', PROXY_METRICS_INTERVAL);
  const ports = await startChild(
    context,
    `${workload.name} proxy`,
    process.execPath,
    proxyArgs,
    (line) => {
      const match = /^tracemesh proxy ready: .*inbound :(\d+) .*outbound 127\.0\.0\.1:(\d+) .*admin :(\d+),/.exec(line);
      return match === null ? undefined : { inbound: Number(match[1]), outbound: Number(match[2]), admin: Number(match[3]) };
    },
    PROXY_READY_MS,
  );
  const faultFile = workload.faults ? path.join(context.paths.faultsDir, `${workload.name}.json`) : undefined;
  const appArgs = [context.programs.app(workload.script), '--port', String(appPort), '--service-name', workload.name, '--collector', urls.otlpGrpcUrl];
  appArgs.push('--export-delay-ms', APP_EXPORT_DELAY_MS, '--proxy', `http://127.0.0.1:${ports.outbound}`, ...workload.appArgs);
  if (faultFile !== undefined) appArgs.push('--fault-file', faultFile);
  const app = workload.script.replace(/\.js$/, '').replace(/-app$/, '');
  await startChild(
    context,
    `${workload.name} app`,
    process.execPath,
    appArgs,
    (line) => {
      const ready = parseReadyLine(line);
      return ready !== undefined && ready.app === app ? ready.port : undefined;
    },
    APP_READY_MS,
  );
  context.progress(`${workload.name}: app :${appPort}, sidecar inbound :${ports.inbound} outbound :${ports.outbound} admin :${ports.admin}`);
  return { workload, appPort, inboundPort: ports.inbound, outboundPort: ports.outbound, adminPort: ports.admin, faultFile };
}
