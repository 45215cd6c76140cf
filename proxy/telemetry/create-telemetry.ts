/**
 * Builds the proxy's Telemetry from its flags, once, in the order the parts
 * depend on each other: metrics registry, span sink, OTLP metrics bridge,
 * access log. Shutdown runs the other way and is safe twice.
 */
import type { Registry } from 'prom-client';
import { errorMessage } from '../../src/lib/errors.js';
import { openAccessLog } from './access-log.js';
import type { CountingAccessLog } from './access-log.js';
import { startOtlpMetricsBridge } from './otlp-metrics-bridge.js';
import type { OtlpMetricsBridge } from './otlp-metrics-bridge.js';
import { createProxyMetrics } from './prom-metrics.js';
import type { PromProxyMetrics } from './prom-metrics.js';
import type { SpanSink } from './span-record.js';
import { createSpanSink } from './span-sink-factory.js';
import type { SpanSinkKind } from './span-sink-factory.js';
import { NoExportSpanSink } from './span-sink-none.js';
import { parseCollectorUrl } from './span-sink-resource.js';
import type { Telemetry, WorkloadIdentity } from './telemetry.js';

export interface TelemetryOptions {
  identity: WorkloadIdentity;
  /** OTLP/gRPC collector (`http://host:4317`); undefined = no tracing (no span is built) and no OTLP metrics. */
  collectorUrl: string | undefined;
  /** File path or '-' for stdout; undefined = off. */
  accessLog: string | undefined;
  spanSink?: SpanSinkKind;
  metricsIntervalMs?: number;
  /** Export failures, access-log errors. Default: stderr. */
  log?: (message: string) => void;
  /** Default true; tests that build many registries in one process turn it off. */
  defaultMetrics?: boolean;
}

export interface CreatedTelemetry {
  readonly telemetry: Telemetry;
  readonly registry: Registry;
  readonly metrics: PromProxyMetrics;
  readonly spans: SpanSink;
  readonly accessLog: CountingAccessLog | undefined;
  readonly metricsBridge: OtlpMetricsBridge | undefined;
  /** Flushes spans and a last metrics snapshot, closes the access log. Safe twice. Never rejects. */
  shutdown(): Promise<void>;
}

function stderrLog(message: string): void {
  process.stderr.write(`tracemesh proxy telemetry: ${message}\n`);
}

export function createTelemetry(options: TelemetryOptions): CreatedTelemetry {
  const log = options.log ?? stderrLog;
  const metrics = createProxyMetrics({ identity: options.identity, defaultMetrics: options.defaultMetrics });
  // Check the collector address, then open the access log, before anything holds a timer or a channel:
  // a bad flag then fails start-up with nothing to undo.
  if (options.collectorUrl !== undefined) parseCollectorUrl(options.collectorUrl);
  const accessLog = options.accessLog === undefined ? undefined : openAccessLog(options.accessLog, { log });
  const spans: SpanSink =
    options.collectorUrl === undefined
      ? new NoExportSpanSink()
      : createSpanSink(options.spanSink ?? 'otel', { identity: options.identity, collectorUrl: options.collectorUrl, log });
  const metricsBridge =
    options.collectorUrl === undefined
      ? undefined
      : startOtlpMetricsBridge({
          registry: metrics.registry,
          identity: options.identity,
          collectorUrl: options.collectorUrl,
          intervalMs: options.metricsIntervalMs,
          log,
        });
  metrics.trackSpanDrops(spans);
  if (accessLog !== undefined) metrics.trackAccessLogDrops(accessLog);
  if (metricsBridge !== undefined) metrics.trackMetricExportFailures(metricsBridge);

  const telemetry: Telemetry = { identity: options.identity, tracing: options.collectorUrl !== undefined, spans, metrics, accessLog };
  let stopping: Promise<void> | undefined;
  const shutdownOnce = async (): Promise<void> => {
    const report = (what: string) => (err: unknown) => log(`${what} shutdown: ${errorMessage(err)}`);
    await spans.shutdown().catch(report('span sink'));
    // After the spans: the last snapshot then includes the final drop count.
    await metricsBridge?.stop().catch(report('metrics bridge'));
    await accessLog?.close().catch(report('access log'));
  };
  return {
    telemetry,
    registry: metrics.registry,
    metrics,
    spans,
    accessLog,
    metricsBridge,
    shutdown() {
      stopping ??= shutdownOnce();
      return stopping;
    },
  };
}
