/**
 * One sidecar: telemetry, the cluster registry, the inbound and outbound
 * sides, their listeners and the admin server, started and stopped together.
 * Composition only; each part lives in its own module.
 *
 * Traffic management: one TrafficState for the proxy's life (ejections,
 * health, limit counters, token buckets) and the current TrafficConfig,
 * built whole from the whole MeshConfig (the static `--config`, then every
 * control-plane snapshot) and swapped whole; the previous version's is
 * closed (its timers stop, its in-flight requests finish on it). Outbound
 * applies its routes and destinations, inbound its rate limits.
 *
 * Under TPROXY capture the inbound side gets the connector that connects
 * from the client's address (capture/transparent-connect.ts, SO_MARK
 * `tproxyMark`), so the app sees the real client; everything else connects
 * from the proxy's own address.
 */
import { hostname } from 'node:os';
import { configVersion } from '../src/config/config-version.js';
import { validateMeshConfigTextInWorker } from '../src/config/load-in-worker.js';
import type { MeshConfig, ServiceSpec } from '../src/config/types.js';
import { TracemeshError } from '../src/lib/errors.js';
import { startAdminServer, type AdminServer } from './admin/server.js';
import { appCluster } from './clusters/static-registry.js';
import { capturedDestination } from './capture/captured-destination.js';
import { CAPTURE_DEFAULTS, formatMark } from './capture/iptables-rules.js';
import { loadCaptureAddon, setTransparent } from './capture/original-dst.js';
import { upstreamConnector } from './capture/transparent-connect.js';
import type { OutboundPolicy } from './capture/original-destinations.js';
import { createInbound, LOCAL_APP_HOST, type AppTarget, type TrafficSide } from './inbound.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import type { ProxyLimits } from './limits.js';
import { startListener, type Listener } from './listeners/listener.js';
import { dualStackOr } from './listeners/dual-stack.js';
import { prepareStateDir } from './state-dir.js';
import { createOutbound } from './outbound.js';
import type { OutlierEvent } from './pipeline/outlier-detection.js';
import { RateLimitBuckets } from './pipeline/rate-limit.js';
import { destinationReadings } from './pipeline/destination-readings.js';
import { createTrafficConfig } from './pipeline/traffic-config.js';
import { TrafficState } from './pipeline/traffic-state.js';
import type { TrafficConfig } from './pipeline/types.js';
import { DEFAULT_DISCOVERY_TIMING, DiscoveryClient } from './control/discovery-client.js';
import { defaultAdvertise } from './control/advertise.js';
import { createTelemetry } from './telemetry/create-telemetry.js';
import type { WorkloadIdentity } from './telemetry/telemetry.js';

export type CaptureMode = 'explicit' | 'transparent';
/** How the init step's rules send inbound traffic here (tracemesh iptables --mode); outbound is always REDIRECT. */
export type InboundCapture = 'redirect' | 'tproxy';

export interface ProxyOptions {
  readonly identity: WorkloadIdentity;
  /** Explicit mode: the app's port. Transparent: the port for inbound connections that were not captured (0 = refuse them). */
  readonly appPort: number;
  readonly mode: CaptureMode;
  /**
   * Transparent mode: tproxy makes the inbound listener IP_TRANSPARENT and connects to the app
   * from the client's address, at the captured destination (needs CAP_NET_ADMIN).
   */
  readonly inboundCapture: InboundCapture;
  /** Under tproxy: SO_MARK of those connections, the rules' `tracemesh iptables --tproxy-mark` (default 0x539). */
  readonly tproxyMark?: number;
  /** Transparent mode: destinations no service claims pass through (allow-any) or are refused (registry-only). */
  readonly outboundPolicy: OutboundPolicy;
  /**
   * Address the inbound listener and the admin server bind; undefined = all
   * (0.0.0.0, or dual-stack :: under transparent capture). The explicit
   * outbound listener binds loopback only.
   */
  readonly host: string | undefined;
  /** Writable directory for what the proxy keeps on disk (created at start). */
  readonly stateDir: string;
  /** http://host:15010: configuration comes from the control plane (cached in stateDir); undefined = static only. */
  readonly controlPlaneUrl: string | undefined;
  /** What peers should call to reach this workload, registered with the control plane; undefined = derived at start. */
  readonly advertise: { readonly address: string; readonly port: number } | undefined;
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  /** OTLP/gRPC URL of the collector (`http://host:4317`); undefined = no span export. */
  readonly collectorUrl: string | undefined;
  readonly spanSink: 'otel' | 'lean';
  readonly metricsExportIntervalMs: number;
  readonly accessLog: string | undefined;
  readonly services: readonly ServiceSpec[];
  /**
   * The whole static `--config` (routes, destination policies, rate limits);
   * its services must be `services`. Undefined: `services` alone (no traffic rules).
   */
  readonly config?: MeshConfig;
  readonly limits: ProxyLimits;
  readonly maxConnections: number;
}

interface Started {
  telemetry: ReturnType<typeof createTelemetry>;
  inbound: TrafficSide;
  outbound: TrafficSide;
  listeners: Listener[];
  admin: AdminServer;
}

export class Proxy {
  private config: MeshConfig;
  private readonly trafficState = new TrafficState(new RateLimitBuckets());
  /** Built at start, replaced by every applied snapshot. */
  private traffic: TrafficConfig | undefined = undefined;
  /** Outlier events go to the metrics once telemetry exists. */
  private onOutlierEvent: (event: OutlierEvent) => void = () => {};
  private discovery: DiscoveryClient | undefined;
  private started: Started | undefined;
  private stopping: Promise<void> | undefined;

  constructor(readonly options: ProxyOptions) {
    this.config = options.config ?? { services: [...options.services] };
  }

  /** A configuration version takes effect: a new TrafficConfig (and registry) in, the previous one closed. */
  private applyConfig(config: MeshConfig, version: string): void {
    const next = createTrafficConfig(config, version, this.trafficState, { onEjection: (event) => this.onOutlierEvent(event) });
    const previous = this.traffic;
    this.config = config;
    this.traffic = next;
    previous?.close();
  }

  private currentTraffic(): TrafficConfig {
    if (this.traffic === undefined) throw new Error('proxy not started');
    return this.traffic;
  }

  get inboundPort(): number {
    return this.listener('inbound').port;
  }

  get outboundPort(): number {
    return this.listener('outbound').port;
  }

  get adminPort(): number {
    return this.requireStarted().admin.port;
  }

  async start(): Promise<void> {
    const o = this.options;
    const transparent = o.mode === 'transparent';
    if (transparent) {
      const addon = loadCaptureAddon();
      if (!addon.ok) {
        throw new TracemeshError('TM_ERR_PROXY_MODE_UNAVAILABLE', `--mode transparent needs the capture addon, which cannot be used: ${addon.reason}; --mode explicit works without it`);
      }
    }
    await prepareStateDir(o.stateDir);
    const host = o.host ?? (transparent ? await dualStackOr('0.0.0.0') : '0.0.0.0');
    const telemetry = createTelemetry({
      identity: o.identity,
      collectorUrl: o.collectorUrl,
      accessLog: o.accessLog,
      spanSink: o.spanSink,
      metricsIntervalMs: o.metricsExportIntervalMs,
    });
    const id = o.identity;
    const metrics = telemetry.metrics;
    this.onOutlierEvent = (event) => metrics.recordOutlierEvent(event);
    // The destination gauges and the panic counter read the current version's destinations at scrape time.
    metrics.trackDestinations(() => (this.traffic === undefined ? [] : destinationReadings(this.traffic.destinations)));
    this.applyConfig(this.config, configVersion(this.config));
    const tproxy = transparent && o.inboundCapture === 'tproxy';
    const inbound = createInbound({
      telemetry: telemetry.telemetry,
      limits: o.limits,
      appPort: o.appPort,
      appTargetOf: appTargetOf(o.mode, o.inboundCapture, o.appPort),
      appCluster: (host, port) => appCluster(id.service, id.namespace, id.version, port, host),
      rateLimits: () => this.currentTraffic().rateLimits,
      // TPROXY: the app sees the real client as its peer (the pools then key connections per client).
      connector: upstreamConnector(tproxy ? 'tproxy' : 'redirect', { mark: o.tproxyMark ?? CAPTURE_DEFAULTS.tproxyMark }),
    });
    const outbound = createOutbound({
      telemetry: telemetry.telemetry,
      limits: o.limits,
      registry: () => this.currentTraffic().registry,
      outboundPolicy: o.outboundPolicy,
      traffic: () => this.currentTraffic(),
    });
    const listeners: Listener[] = [];
    try {
      listeners.push(
        await startListener({
          name: 'inbound',
          host,
          port: o.inboundPort,
          detectTimeoutMs: o.limits.detectTimeoutMs,
          maxConnections: o.maxConnections,
          onConnection: (conn) => inbound.handle(conn),
          ...(transparent ? { destinationOf: capturedDestination } : {}),
          ...(transparent && o.inboundCapture === 'tproxy' ? { onListening: setTransparent } : {}),
        }),
      );
      listeners.push(
        await startListener({
          name: 'outbound',
          // Explicit mode: only the local app may use the forward proxy. Transparent: REDIRECT
          // sends the app's connections to 127.0.0.1 or ::1, so the dual-stack address takes both.
          host: transparent ? host : '127.0.0.1',
          port: o.outboundPort,
          detectTimeoutMs: o.limits.detectTimeoutMs,
          maxConnections: o.maxConnections,
          onConnection: (conn) => outbound.handle(conn),
          ...(transparent ? { destinationOf: capturedDestination, opaque: (target) => outbound.opaque(target) } : {}),
        }),
      );
      const admin = await startAdminServer({
        host,
        port: o.adminPort,
        registry: telemetry.registry,
        ready: () => this.started !== undefined && this.stopping === undefined,
        configDump: () => this.configDump(),
        clusters: () => this.clustersView(),
      });
      this.started = { telemetry, inbound, outbound, listeners, admin };
      if (o.controlPlaneUrl !== undefined) await this.connectControlPlane(o.controlPlaneUrl, transparent);
    } catch (err) {
      await Promise.all(listeners.map((l) => l.close()));
      await Promise.all([inbound.close(), outbound.close()]);
      this.traffic?.close();
      await telemetry.shutdown();
      throw err;
    }
  }

  /**
   * Configuration from the control plane from now on: its snapshots replace
   * the registry whole (the static `--config` documents until the first one,
   * or the cached snapshot when there is one).
   */
  private async connectControlPlane(url: string, transparent: boolean): Promise<void> {
    const o = this.options;
    const advertise = o.advertise ?? defaultAdvertise(transparent, o.host, o.appPort, this.inboundPort);
    const id = o.identity;
    this.discovery = new DiscoveryClient({
      controlPlaneUrl: url,
      registration: { id: `${id.service}.${id.namespace}@${hostname()}:${process.pid}`, ...id, labels: {}, ...advertise },
      stateDir: o.stateDir,
      validate: (documents, version) => validateMeshConfigTextInWorker(documents.map((d) => JSON.stringify(d)).join('\n---\n'), `<control plane version ${version}>`),
      apply: (config, version) => this.applyConfig(config, version),
      log: (message) => process.stderr.write(`${new Date().toISOString()} proxy: ${message}\n`),
      ...DEFAULT_DISCOVERY_TIMING,
    });
    await this.discovery.start();
  }

  /** Stops accepting, closes connections and pools, flushes telemetry. Safe twice and without start. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const s = this.started;
    if (s === undefined) return;
    await this.discovery?.stop();
    await Promise.all(s.listeners.map((l) => l.close()));
    await Promise.all([s.inbound.close(), s.outbound.close()]);
    this.traffic?.close();
    await s.admin.close();
    await s.telemetry.shutdown();
  }

  private requireStarted(): Started {
    if (this.started === undefined) throw new Error('proxy not started');
    return this.started;
  }

  private listener(name: string): Listener {
    const found = this.requireStarted().listeners.find((l) => l.name === name);
    if (found === undefined) throw new Error(`no ${name} listener`);
    return found;
  }

  private configDump(): unknown {
    const o = this.options;
    return {
      identity: o.identity,
      mode: o.mode,
      ...(o.mode === 'transparent' ? { inboundCapture: o.inboundCapture, outboundPolicy: o.outboundPolicy } : {}),
      ...(o.mode === 'transparent' && o.inboundCapture === 'tproxy' ? { tproxyMark: formatMark(o.tproxyMark ?? CAPTURE_DEFAULTS.tproxyMark) } : {}),
      stateDir: o.stateDir,
      appPort: o.appPort,
      listeners: this.started?.listeners.map((l) => ({ name: l.name, port: l.port })) ?? [],
      adminPort: this.started?.admin.port,
      collector: o.collectorUrl ?? 'none',
      accessLog: o.accessLog ?? 'off',
      limits: o.limits,
      configVersion: this.currentTraffic().version,
      controlPlane:
        this.discovery === undefined
          ? 'none (static --config)'
          : { url: o.controlPlaneUrl, connected: this.discovery.connected, appliedVersion: this.discovery.appliedVersion, source: this.discovery.source, lastError: this.discovery.lastError },
      services: this.config.services,
      routes: this.config.routes ?? [],
      destinationPolicies: this.config.destinationPolicies ?? [],
      rateLimits: this.config.rateLimits ?? [],
    };
  }

  private clustersView(): unknown {
    const s = this.started;
    return {
      configVersion: this.currentTraffic().version,
      clusters: this.currentTraffic().registry.clusters.map((c) => ({
        name: c.name,
        service: c.service,
        namespace: c.namespace,
        port: c.port,
        endpoints: c.endpoints.map((e) => ({
          address: e.address,
          port: e.port,
          labels: e.labels,
          state: e.consecutiveFailures > 0 ? 'failing' : 'healthy',
          activeRequests: e.activeRequests,
          totalRequests: e.totalRequests,
          failedRequests: e.failedRequests,
          consecutiveFailures: e.consecutiveFailures,
          lastFailure: e.lastFailure,
        })),
      })),
      destinations: this.traffic === undefined ? [] : this.traffic.destinations.map(destinationView),
      listeners: s?.listeners.map((l) => ({ name: l.name, port: l.port, activeConnections: l.activeConnections(), accepted: l.accepted })) ?? [],
      pools: s === undefined ? {} : { inbound: s.inbound.poolStats(), outbound: s.outbound.poolStats() },
    };
  }
}

/**
 * Where the inbound side sends a connection's app traffic: explicit mode, the app on
 * 127.0.0.1:--app-port; REDIRECT, 127.0.0.1 at the port the caller connected to; TPROXY, the
 * captured destination itself (the pod's own address at that port), because a connection from
 * the client's address to 127.0.0.1 would be a martian. Connections made straight to the
 * listener (no captured destination) use --app-port on 127.0.0.1; without --app-port they have
 * no app (undefined: refused, NR).
 */
function appTargetOf(mode: CaptureMode, capture: InboundCapture, appPort: number): (conn: AcceptedConnection) => AppTarget | undefined {
  const fixed: AppTarget | undefined = appPort === 0 ? undefined : { host: LOCAL_APP_HOST, port: appPort };
  if (mode === 'explicit') return () => fixed;
  if (capture === 'tproxy') return (conn) => conn.target ?? fixed;
  return (conn) => (conn.target === undefined ? fixed : { host: LOCAL_APP_HOST, port: conn.target.port });
}

/** A destination on the admin `/clusters` page: its limits' counters and each endpoint's state. */
function destinationView(destination: TrafficConfig['destinations'][number]): unknown {
  const status = destination.status?.();
  if (status === undefined) return { name: destination.name, endpoints: destination.endpoints.map((e) => ({ endpoint: e.key, state: 'healthy' })) };
  const now = Date.now();
  return {
    ...status,
    endpoints: status.endpoints.map((e) => ({
      ...e,
      state: endpointState(e.healthy, e.ejectedUntilMs, now),
    })),
  };
}

/** "healthy", "ejected until <ISO time>", or "failing health check" (ejection first: it is the one that ends by itself). */
function endpointState(healthy: boolean, ejectedUntilMs: number, now: number): string {
  if (ejectedUntilMs > now) return `ejected until ${new Date(ejectedUntilMs).toISOString()}`;
  return healthy ? 'healthy' : 'failing health check';
}
