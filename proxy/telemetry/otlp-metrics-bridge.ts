/**
 * Sends the proxy's Prometheus figures to the collector as OTLP metrics,
 * so they land in otel_metrics_* beside the spans. Every `intervalMs` the
 * prom-client registry is read (the same snapshot /stats/prometheus serves),
 * encoded by otlp-metrics-encoder.ts and sent to MetricsService/Export over
 * node:http2 (otlp-grpc-client.ts), the lean span sink's transport. One
 * source of truth, two outputs: no second set of instruments on the request
 * path, and none of the SDK's metrics packages in memory.
 *
 * A failed export is counted (failedExports) and the next interval tries
 * again with fresh cumulative values, so nothing needs to be queued.
 */
import type { Registry } from 'prom-client';
import { TracemeshError, errorMessage } from '../../src/lib/errors.js';
import { GrpcUnaryClient } from './otlp-grpc-client.js';
import { encodeMetricsRequest } from './otlp-metrics-encoder.js';
import { encodeResource, encodeScope } from './span-sink-lean-encoder.js';
import { PROXY_SCOPE_NAME, parseCollectorUrl, proxyResourceAttributes } from './span-sink-resource.js';
import type { WorkloadIdentity } from './telemetry.js';

export const DEFAULT_METRICS_INTERVAL_MS = 10_000;
export const METRICS_EXPORT_PATH = '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export';

export interface OtlpMetricsBridgeOptions {
  registry: Registry;
  identity: WorkloadIdentity;
  /** http://host:4317 (or host:4317). */
  collectorUrl: string;
  intervalMs?: number;
  /** Default: the interval, at most 10 s; an export never overlaps the next. */
  exportTimeoutMs?: number;
  /** Start of the cumulative values (epoch ms). Default: when the process started. */
  startTimeMs?: number;
  resourceAttributes?: Record<string, string>;
  /** The first failure of a run, and the recovery. */
  log?: (message: string) => void;
}

export interface OtlpMetricsBridge {
  readonly exports: number;
  readonly failedExports: number;
  /** Reads the registry and exports now. Never rejects: a failure is counted. */
  exportNow(): Promise<void>;
  /** Stops the timer, sends one last snapshot (bounded by the export timeout), closes the connection. Safe twice. */
  stop(): Promise<void>;
}

class Bridge implements OtlpMetricsBridge {
  exports = 0;
  failedExports = 0;
  private readonly client: GrpcUnaryClient;
  private readonly resource: Buffer;
  private readonly scope: Buffer;
  private readonly timer: NodeJS.Timeout;
  private inFlight: Promise<void> | undefined = undefined;
  private stopping: Promise<void> | undefined = undefined;
  private failing = false;

  constructor(
    private readonly registry: Registry,
    collectorUrl: string,
    identity: WorkloadIdentity,
    intervalMs: number,
    private readonly exportTimeoutMs: number,
    private readonly startTimeMs: number,
    resourceAttributes: Record<string, string> | undefined,
    private readonly log: (message: string) => void,
  ) {
    this.client = new GrpcUnaryClient({ url: collectorUrl });
    this.resource = encodeResource(proxyResourceAttributes(identity, resourceAttributes));
    this.scope = encodeScope(PROXY_SCOPE_NAME);
    this.timer = setInterval(() => {
      // A slow collector must not stack exports up: skip the tick while one is out.
      if (this.inFlight === undefined) void this.exportNow();
    }, intervalMs);
    this.timer.unref();
  }

  exportNow(): Promise<void> {
    this.inFlight ??= this.exportOnce().finally(() => {
      this.inFlight = undefined;
    });
    return this.inFlight;
  }

  private async exportOnce(): Promise<void> {
    try {
      const snapshot = await this.registry.getMetricsAsJSON();
      const body = encodeMetricsRequest(snapshot, this.resource, this.scope, this.startTimeMs, Date.now());
      // The answer is ExportMetricsServiceResponse; a partial success is still a success (OTLP: do not retry).
      await this.client.call(METRICS_EXPORT_PATH, [body], this.exportTimeoutMs);
      this.exports++;
      if (this.failing) {
        this.failing = false;
        this.log('metric export recovered');
      }
    } catch (err) {
      this.failedExports++;
      if (!this.failing) {
        this.failing = true;
        this.log(`metric export failed: ${errorMessage(err)}`);
      }
    }
  }

  stop(): Promise<void> {
    this.stopping ??= this.stopOnce();
    return this.stopping;
  }

  private async stopOnce(): Promise<void> {
    clearInterval(this.timer);
    if (this.inFlight !== undefined) await this.inFlight;
    await this.exportNow();
    await this.client.close().catch((err: unknown) => this.log(`metric exporter shutdown: ${errorMessage(err)}`));
  }
}

function positiveInteger(name: string, value: number): number {
  if (!Number.isInteger(value) || value < 1 || value > 86_400_000) {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `metrics bridge option ${name} must be an integer number of milliseconds from 1 to 86400000, got ${value}`);
  }
  return value;
}

export function startOtlpMetricsBridge(options: OtlpMetricsBridgeOptions): OtlpMetricsBridge {
  const collector = parseCollectorUrl(options.collectorUrl);
  const intervalMs = positiveInteger('intervalMs', options.intervalMs ?? DEFAULT_METRICS_INTERVAL_MS);
  const exportTimeoutMs = positiveInteger('exportTimeoutMs', options.exportTimeoutMs ?? Math.min(intervalMs, 10_000));
  return new Bridge(
    options.registry,
    collector.url,
    options.identity,
    intervalMs,
    exportTimeoutMs,
    options.startTimeMs ?? performance.timeOrigin,
    options.resourceAttributes,
    options.log ?? (() => {}),
  );
}
