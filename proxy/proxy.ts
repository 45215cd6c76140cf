/**
 * One sidecar: telemetry, the cluster registry, the inbound and outbound
 * sides, their listeners and the admin server, started and stopped together.
 * Composition only; each part lives in its own module.
 */
import { configVersion } from '../src/config/config-version.js';
import type { ServiceSpec } from '../src/config/types.js';
import { TracemeshError } from '../src/lib/errors.js';
import { startAdminServer, type AdminServer } from './admin/server.js';
import { appCluster, createStaticRegistry } from './clusters/static-registry.js';
import type { ClusterRegistry } from './clusters/types.js';
import { createInbound, type TrafficSide } from './inbound.js';
import type { ProxyLimits } from './limits.js';
import { startListener, type Listener } from './listeners/listener.js';
import { createOutbound } from './outbound.js';
import { createTelemetry } from './telemetry/create-telemetry.js';
import type { WorkloadIdentity } from './telemetry/telemetry.js';

export type CaptureMode = 'explicit' | 'transparent';

export interface ProxyOptions {
  readonly identity: WorkloadIdentity;
  readonly appPort: number;
  readonly mode: CaptureMode;
  /** Address the inbound listener and the admin server bind; the explicit outbound listener binds loopback only. */
  readonly host: string;
  readonly inboundPort: number;
  readonly outboundPort: number;
  readonly adminPort: number;
  /** OTLP/gRPC URL of the collector (`http://host:4317`); undefined = no span export. */
  readonly collectorUrl: string | undefined;
  readonly spanSink: 'otel' | 'lean';
  readonly metricsExportIntervalMs: number;
  readonly accessLog: string | undefined;
  readonly services: readonly ServiceSpec[];
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
  private registry: ClusterRegistry;
  private started: Started | undefined;
  private stopping: Promise<void> | undefined;

  constructor(readonly options: ProxyOptions) {
    this.registry = createStaticRegistry(options.services, configVersion({ services: [...options.services] }));
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
    if (o.mode === 'transparent') {
      throw new TracemeshError(
        'TM_ERR_PROXY_MODE_UNAVAILABLE',
        '--mode transparent needs iptables capture and the SO_ORIGINAL_DST addon, which this build does not have yet; use --mode explicit',
      );
    }
    const telemetry = createTelemetry({
      identity: o.identity,
      collectorUrl: o.collectorUrl,
      accessLog: o.accessLog,
      spanSink: o.spanSink,
      metricsIntervalMs: o.metricsExportIntervalMs,
    });
    const app = appCluster(o.identity.service, o.identity.namespace, o.identity.version, o.appPort);
    const inbound = createInbound({ telemetry: telemetry.telemetry, limits: o.limits, app });
    const outbound = createOutbound({ telemetry: telemetry.telemetry, limits: o.limits, registry: () => this.registry });
    const listeners: Listener[] = [];
    try {
      listeners.push(
        await startListener({
          name: 'inbound',
          host: o.host,
          port: o.inboundPort,
          detectTimeoutMs: o.limits.detectTimeoutMs,
          maxConnections: o.maxConnections,
          onConnection: (conn) => inbound.handle(conn),
        }),
      );
      listeners.push(
        await startListener({
          name: 'outbound',
          // Explicit mode: only the local app may use the forward proxy.
          host: '127.0.0.1',
          port: o.outboundPort,
          detectTimeoutMs: o.limits.detectTimeoutMs,
          maxConnections: o.maxConnections,
          onConnection: (conn) => outbound.handle(conn),
        }),
      );
      const admin = await startAdminServer({
        host: o.host,
        port: o.adminPort,
        registry: telemetry.registry,
        ready: () => this.started !== undefined && this.stopping === undefined,
        configDump: () => this.configDump(),
        clusters: () => this.clustersView(),
      });
      this.started = { telemetry, inbound, outbound, listeners, admin };
    } catch (err) {
      await Promise.all(listeners.map((l) => l.close()));
      await Promise.all([inbound.close(), outbound.close()]);
      await telemetry.shutdown();
      throw err;
    }
  }

  /** Stops accepting, closes connections and pools, flushes telemetry. Safe twice and without start. */
  stop(): Promise<void> {
    this.stopping ??= this.doStop();
    return this.stopping;
  }

  private async doStop(): Promise<void> {
    const s = this.started;
    if (s === undefined) return;
    await Promise.all(s.listeners.map((l) => l.close()));
    await Promise.all([s.inbound.close(), s.outbound.close()]);
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
      appPort: o.appPort,
      listeners: this.started?.listeners.map((l) => ({ name: l.name, port: l.port })) ?? [],
      adminPort: this.started?.admin.port,
      collector: o.collectorUrl ?? 'none',
      accessLog: o.accessLog ?? 'off',
      limits: o.limits,
      configVersion: this.registry.version,
      services: o.services,
    };
  }

  private clustersView(): unknown {
    const s = this.started;
    return {
      configVersion: this.registry.version,
      clusters: this.registry.clusters.map((c) => ({
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
      listeners: s?.listeners.map((l) => ({ name: l.name, port: l.port, activeConnections: l.activeConnections(), accepted: l.accepted })) ?? [],
      pools: s === undefined ? {} : { inbound: s.inbound.poolStats(), outbound: s.outbound.poolStats() },
    };
  }
}
