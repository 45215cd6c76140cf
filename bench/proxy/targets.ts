/**
 * What the load goes through: nothing (direct), HAProxy, nginx, one
 * tracemesh sidecar (the inbound listener fronting the upstream), or two
 * (client sidecar's outbound listener → server sidecar's inbound → upstream).
 * Each proxy runs pinned to the proxy core; a target is started, checked with
 * one request through it, measured, and stopped.
 */
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { CLIENT_SERVICE, SERVER_HOST_HEADER, SERVER_SERVICE, haproxyConfig, meshConfig, nginxConfig } from './configs.js';
import { freePort, httpGet, waitReady } from './probe.js';
import type { ManagedProcess, Processes } from './processes.js';
import { BODY_BYTES } from './upstream.js';
import { SIDECAR_NODE_FLAGS } from '../../src/cli/sidecar-node-flags.js';

export const TARGET_NAMES = ['direct', 'haproxy', 'nginx', 'proxy1', 'proxy2'] as const;
export type TargetName = (typeof TARGET_NAMES)[number];

export interface TargetSpec {
  name: TargetName;
  /** Our proxies only: spans for 100 % of requests, or none (`--collector none`). */
  tracing: boolean | undefined;
}

export function targetLabel(spec: TargetSpec): string {
  switch (spec.name) {
    case 'direct':
      return 'direct (no proxy)';
    case 'haproxy':
      return 'HAProxy, 1 thread';
    case 'nginx':
      return 'nginx, 1 worker';
    case 'proxy1':
      return `tracemesh, 1 sidecar, tracing ${spec.tracing === true ? '100 %' : 'off'}`;
    case 'proxy2':
      return `tracemesh, 2 sidecars, tracing ${spec.tracing === true ? '100 %' : 'off'}`;
  }
}

/** A short key for JSON and tables: `proxy1-traced`, `haproxy`. */
export function targetKey(spec: TargetSpec): string {
  if (spec.tracing === undefined) return spec.name;
  return `${spec.name}-${spec.tracing ? 'traced' : 'untraced'}`;
}

export interface MeasuredProxy {
  /** `haproxy`, `nginx`, `sidecar`, `client sidecar`, `server sidecar`. */
  name: string;
  pid: number;
  process: ManagedProcess;
}

/** Why the target can no longer serve (a proxy process exited), or undefined while all run. */
export function deadProxy(target: RunningTarget): string | undefined {
  const dead = target.proxies.find((p) => p.process.exited);
  if (dead === undefined) return undefined;
  return `${dead.name} exited (${dead.process.describeExit()}) during the run; its last output: ${dead.process.tail.trim().slice(-1500) || '(none)'}`;
}

export interface RunningTarget {
  spec: TargetSpec;
  /** Where the load generator connects (127.0.0.1). */
  port: number;
  hostHeader: string;
  proxies: MeasuredProxy[];
  stop(): Promise<void>;
}

export interface TargetContext {
  processes: Processes;
  /** Repository root: the sidecars' working directory. */
  root: string;
  /** The tracemesh CLI (normally dist/src/cli/main.js), run as `node <proxyMain> proxy …`. */
  proxyMain: string;
  /** Extra flags for every sidecar (`--span-exporter lean`), after the benchmark's own. */
  proxyArgs: readonly string[];
  /** A fresh directory for this run's config files. */
  dir: string;
  proxyCore: number;
  upstreamPort: number;
  /** OTLP/gRPC port of the span sink (for traced targets). */
  sinkPort: number | undefined;
  haproxy: string | undefined;
  nginx: string | undefined;
  /** When set, our proxies write a V8 CPU profile here on exit, named `<name>.cpuprofile`. */
  profileDir: string | undefined;
}

/** Our proxy could not be started: the report says why instead of crashing. */
export class ProxyUnavailableError extends Error {
  constructor(why: string) {
    super(`proxy not available: ${why}`);
    this.name = 'ProxyUnavailableError';
  }
}

const READY_TIMEOUT_MS = 20_000;
/** Our proxy flushes spans and closes listeners on SIGTERM; a profile is written at exit. */
const PROXY_STOP_GRACE_MS = 15_000;

/** One request through the target must come back 200 with the upstream's 1 KiB body. */
async function smokeCheck(label: string, port: number, hostHeader: string): Promise<void> {
  const answer = await httpGet(port, hostHeader);
  if (answer.status !== 200 || answer.bodyBytes !== BODY_BYTES) {
    const flags = answer.headers['x-tracemesh-flags'] ?? answer.headers['x-response-flags'];
    throw new Error(
      `${label}: a request through it got ${answer.status} with ${answer.bodyBytes} body bytes (expected 200 and ${BODY_BYTES})` +
        (flags !== undefined ? `, response flags ${String(flags)}` : ''),
    );
  }
}

async function startHaproxy(ctx: TargetContext, spec: TargetSpec): Promise<RunningTarget> {
  if (ctx.haproxy === undefined) throw new Error('haproxy is not installed');
  const port = await freePort();
  const file = path.join(ctx.dir, 'haproxy.cfg');
  writeFileSync(file, haproxyConfig({ listenPort: port, upstreamPort: ctx.upstreamPort }));
  const child = ctx.processes.spawn('haproxy', ctx.haproxy, ['-db', '-f', file], { core: ctx.proxyCore });
  const stop = (): Promise<void> => child.stop();
  try {
    await waitReady('haproxy answers', async () => (await httpGet(port, `127.0.0.1:${port}`)).status > 0, READY_TIMEOUT_MS, child);
    await smokeCheck('haproxy', port, `127.0.0.1:${port}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { spec, port, hostHeader: `127.0.0.1:${port}`, proxies: [{ name: 'haproxy', pid: child.pid, process: child }], stop };
}

async function startNginx(ctx: TargetContext, spec: TargetSpec): Promise<RunningTarget> {
  if (ctx.nginx === undefined) throw new Error('nginx is not installed');
  const port = await freePort();
  const dir = path.join(ctx.dir, 'nginx');
  mkdirSync(dir, { recursive: true });
  const file = path.join(dir, 'nginx.conf');
  writeFileSync(file, nginxConfig({ listenPort: port, upstreamPort: ctx.upstreamPort }, dir));
  const child = ctx.processes.spawn('nginx', ctx.nginx, ['-p', dir, '-c', file, '-e', path.join(dir, 'nginx-error.log')], { core: ctx.proxyCore });
  // SIGTERM is nginx's fast shutdown: the master stops its worker and exits.
  const stop = (): Promise<void> => child.stop();
  try {
    await waitReady('nginx answers', async () => (await httpGet(port, `127.0.0.1:${port}`)).status > 0, READY_TIMEOUT_MS, child);
    await smokeCheck('nginx', port, `127.0.0.1:${port}`);
  } catch (err) {
    await stop();
    throw err;
  }
  return { spec, port, hostHeader: `127.0.0.1:${port}`, proxies: [{ name: 'nginx', pid: child.pid, process: child }], stop };
}

interface SidecarPorts {
  inbound: number;
  outbound: number;
  admin: number;
}

async function sidecarPorts(): Promise<SidecarPorts> {
  return { inbound: await freePort(), outbound: await freePort(), admin: await freePort() };
}

/** `node dist/src/cli/main.js proxy …` pinned to the proxy core; resolves once /ready answers 200. */
async function startSidecar(ctx: TargetContext, spec: TargetSpec, label: string, service: string, ports: SidecarPorts, configFile: string): Promise<ManagedProcess> {
  const main = ctx.proxyMain;
  if (!existsSync(main)) throw new ProxyUnavailableError(`${main} does not exist (npm run build)`);
  const collector = spec.tracing === true ? `127.0.0.1:${ctx.sinkPort ?? 0}` : 'none';
  if (spec.tracing === true && ctx.sinkPort === undefined) throw new Error('tracing needs the OTLP sink, which is not running');
  // As bin/tracemesh starts a sidecar.
  const nodeFlags: string[] = [...SIDECAR_NODE_FLAGS];
  if (ctx.profileDir !== undefined) {
    nodeFlags.push('--cpu-prof', '--cpu-prof-dir', ctx.profileDir, '--cpu-prof-name', `${label.replace(/\s+/g, '-')}.cpuprofile`);
  }
  const args = [
    ...nodeFlags,
    main,
    'proxy',
    '--service',
    service,
    '--app-port',
    String(ctx.upstreamPort),
    '--inbound-port',
    String(ports.inbound),
    '--outbound-port',
    String(ports.outbound),
    '--admin-port',
    String(ports.admin),
    '--config',
    configFile,
    '--collector',
    collector,
    // Listeners on loopback only: the benchmark sends nothing beyond 127.0.0.1.
    '--host',
    '127.0.0.1',
    ...ctx.proxyArgs,
  ];
  const sidecar = ctx.processes.spawn(label, process.execPath, args, { core: ctx.proxyCore, cwd: ctx.root });
  try {
    await waitReady(`${label} /ready`, async () => (await httpGet(ports.admin, `127.0.0.1:${ports.admin}`, '/ready')).status === 200, READY_TIMEOUT_MS, sidecar);
  } catch (err) {
    await sidecar.stop(PROXY_STOP_GRACE_MS);
    const why = err instanceof Error ? err.message : String(err);
    throw new ProxyUnavailableError(`\`${sidecar.commandLine}\`: ${why}`);
  }
  return sidecar;
}

async function startOneSidecar(ctx: TargetContext, spec: TargetSpec): Promise<RunningTarget> {
  const ports = await sidecarPorts();
  const file = path.join(ctx.dir, 'mesh-proxy1.yaml');
  writeFileSync(file, meshConfig(ports.inbound));
  const server = await startSidecar(ctx, spec, 'sidecar', SERVER_SERVICE, ports, file);
  const stop = (): Promise<void> => server.stop(PROXY_STOP_GRACE_MS);
  try {
    await smokeCheck('sidecar inbound', ports.inbound, SERVER_HOST_HEADER);
  } catch (err) {
    await stop();
    throw err;
  }
  return { spec, port: ports.inbound, hostHeader: SERVER_HOST_HEADER, proxies: [{ name: 'sidecar', pid: server.pid, process: server }], stop };
}

async function startTwoSidecars(ctx: TargetContext, spec: TargetSpec): Promise<RunningTarget> {
  const serverPorts = await sidecarPorts();
  const clientPorts = await sidecarPorts();
  const file = path.join(ctx.dir, 'mesh-proxy2.yaml');
  writeFileSync(file, meshConfig(serverPorts.inbound));
  const server = await startSidecar(ctx, spec, 'server sidecar', SERVER_SERVICE, serverPorts, file);
  let client: ManagedProcess | undefined;
  const stop = async (): Promise<void> => {
    await Promise.all([client?.stop(PROXY_STOP_GRACE_MS), server.stop(PROXY_STOP_GRACE_MS)]);
  };
  try {
    client = await startSidecar(ctx, spec, 'client sidecar', CLIENT_SERVICE, clientPorts, file);
    await smokeCheck('client sidecar outbound → server sidecar', clientPorts.outbound, SERVER_HOST_HEADER);
  } catch (err) {
    await stop();
    throw err;
  }
  return {
    spec,
    port: clientPorts.outbound,
    hostHeader: SERVER_HOST_HEADER,
    proxies: [
      { name: 'client sidecar', pid: client.pid, process: client },
      { name: 'server sidecar', pid: server.pid, process: server },
    ],
    stop,
  };
}

export async function startTarget(ctx: TargetContext, spec: TargetSpec): Promise<RunningTarget> {
  switch (spec.name) {
    case 'direct':
      await smokeCheck('upstream', ctx.upstreamPort, `127.0.0.1:${ctx.upstreamPort}`);
      return { spec, port: ctx.upstreamPort, hostHeader: `127.0.0.1:${ctx.upstreamPort}`, proxies: [], stop: async () => {} };
    case 'haproxy':
      return startHaproxy(ctx, spec);
    case 'nginx':
      return startNginx(ctx, spec);
    case 'proxy1':
      return startOneSidecar(ctx, spec);
    case 'proxy2':
      return startTwoSidecars(ctx, spec);
  }
}
