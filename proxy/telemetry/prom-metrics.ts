/**
 * The proxy's Prometheus metrics (prom-client), named as Istio users know
 * them with a tracemesh_ prefix, plus process CPU and memory from
 * collectDefaultMetrics.
 *
 * Hot path: recordRequest runs once per request. Its four families are
 * plain numbers per label set (prom-request-series.ts) that the registry
 * reads at scrape time, so a request costs a comparison with the previous
 * request's labels (a Map lookup when they differ) and a few additions: no
 * label hashing, no validation, no garbage.
 *
 * Bytes are counters, not Istio's request/response size histograms: a
 * histogram observe is a bucket search and three updates per request, and
 * the totals are what dashboards plot (rate of bytes per edge).
 */
import { Counter, Registry, collectDefaultMetrics } from 'prom-client';
import { RequestSeriesTable, registerRequestMetrics } from './prom-request-series.js';
import type { RequestLabels, TcpLabels, ProxyMetrics, WorkloadIdentity } from './telemetry.js';

/** Istio's request_duration_milliseconds buckets. */
export const ISTIO_DURATION_BUCKETS_MS: readonly number[] = [
  0.5, 1, 5, 10, 25, 50, 100, 250, 500, 1000, 2500, 5000, 10000, 30000, 60000, 300000, 600000, 1800000, 3600000,
];

const TCP_LABELS = ['direction', 'protocol', 'source_service', 'destination_service', 'destination_version'] as const;
type TcpLabelName = (typeof TCP_LABELS)[number];

/**
 * Distinct label sets kept per metric family. Peer metadata arrives in
 * request headers, so a misbehaving peer could otherwise mint a new series
 * per request; past the cap, new label sets share one series whose peer
 * labels read "overflow", and tracemesh_metric_series_overflow_total counts them.
 */
export const DEFAULT_MAX_SERIES = 10_000;
const EVENT_LOOP_MONITORING_PRECISION_MS = 100;
const OVERFLOW = 'overflow';
/** Cannot occur in a label value we set (header values have no control characters). */
const KEY_SEPARATOR = '\u0001';

interface TcpChildren {
  readonly opened: Counter.Internal;
  readonly closed: Counter.Internal;
  readonly received: Counter.Internal;
  readonly sent: Counter.Internal;
}

export interface PromProxyMetrics extends ProxyMetrics {
  readonly registry: Registry;
  readonly identity: WorkloadIdentity;
  /** Reports this sink's droppedSpans as tracemesh_spans_dropped_total (read at scrape time). Several sinks add up. */
  trackSpanDrops(sink: { readonly droppedSpans: number }): void;
  /** Reports the access log's droppedLines as tracemesh_access_log_dropped_lines_total. */
  trackAccessLogDrops(log: { readonly droppedLines: number }): void;
  /** Reports failed OTLP metric exports as tracemesh_metrics_export_failures_total. */
  trackMetricExportFailures(bridge: { readonly failedExports: number }): void;
  /** An outlier-detection event (proxy/pipeline/outlier-detection.ts): ejections and refused ejections are counted. */
  recordOutlierEvent(event: { readonly kind: 'ejected' | 'overflow' | 'unejected'; readonly destination: string; readonly reason?: string }): void;
}

export interface ProxyMetricsOptions {
  identity: WorkloadIdentity;
  /** A fresh Registry by default; pass one to share it. */
  registry?: Registry;
  /** process_cpu_seconds_total, process_resident_memory_bytes, nodejs_heap_*...; on by default. */
  defaultMetrics?: boolean;
  maxSeries?: number;
}

/**
 * A counter whose value is the sum of readings taken at scrape time (drop
 * counts owned by other objects). Counters cannot be set, so each scrape adds
 * the growth since the last one.
 */
function readingCounter(registry: Registry, name: string, help: string): (read: () => number) => void {
  const readers: Array<() => number> = [];
  let reported = 0;
  new Counter({
    name,
    help,
    registers: [registry],
    collect(this: Counter) {
      let total = 0;
      for (const read of readers) total += read();
      if (total > reported) {
        this.inc(total - reported);
        reported = total;
      }
    },
  });
  return (read) => {
    readers.push(read);
  };
}

class PromMetrics implements PromProxyMetrics {
  readonly registry: Registry;
  readonly identity: WorkloadIdentity;
  private readonly maxSeries: number;
  private readonly requests: RequestSeriesTable;
  private readonly tcpOpenedTotal: Counter<TcpLabelName>;
  private readonly tcpClosedTotal: Counter<TcpLabelName>;
  private readonly tcpReceivedTotal: Counter<TcpLabelName>;
  private readonly tcpSentTotal: Counter<TcpLabelName>;
  private readonly seriesOverflowTotal: Counter<'family'>;
  private readonly tcpChildren = new Map<string, TcpChildren>();
  // Traffic management. Label values are destination and RateLimit names from the configuration, so their number is bounded by it.
  private readonly retriesTotal: Counter<'destination'>;
  private readonly ejectionsTotal: Counter<'destination' | 'reason' | 'result'>;
  private readonly rateLimitedTotal: Counter<'limit'>;
  private readonly overflowTotal: Counter<'destination'>;
  private readonly mirrorsTotal: Counter<'destination' | 'result'>;
  private readonly addSpanDropReader: (read: () => number) => void;
  private readonly addAccessLogDropReader: (read: () => number) => void;
  private readonly addExportFailureReader: (read: () => number) => void;

  constructor(options: ProxyMetricsOptions) {
    const registry = options.registry ?? new Registry();
    this.registry = registry;
    this.identity = options.identity;
    this.maxSeries = options.maxSeries ?? DEFAULT_MAX_SERIES;
    const registers = [registry];
    this.requests = new RequestSeriesTable(ISTIO_DURATION_BUCKETS_MS, this.maxSeries, () => this.seriesOverflowTotal.inc({ family: 'request' }));
    registerRequestMetrics(registry, this.requests);
    this.tcpOpenedTotal = new Counter({ name: 'tracemesh_tcp_connections_opened_total', help: 'Opaque TCP (and TLS pass-through) connections opened', labelNames: TCP_LABELS, registers });
    this.tcpClosedTotal = new Counter({ name: 'tracemesh_tcp_connections_closed_total', help: 'Opaque TCP (and TLS pass-through) connections closed', labelNames: TCP_LABELS, registers });
    this.tcpReceivedTotal = new Counter({ name: 'tracemesh_tcp_received_bytes_total', help: 'Bytes received from the downstream peer on opaque TCP connections', labelNames: TCP_LABELS, registers });
    this.tcpSentTotal = new Counter({ name: 'tracemesh_tcp_sent_bytes_total', help: 'Bytes sent to the downstream peer on opaque TCP connections', labelNames: TCP_LABELS, registers });
    this.seriesOverflowTotal = new Counter({
      name: 'tracemesh_metric_series_overflow_total',
      help: 'Observations recorded under the "overflow" series because the label-set cap was reached',
      labelNames: ['family'],
      registers,
    });
    this.retriesTotal = new Counter({ name: 'tracemesh_retries_total', help: 'Retries of outbound requests (attempts after the first), per destination', labelNames: ['destination'], registers });
    this.ejectionsTotal = new Counter({
      name: 'tracemesh_outlier_ejections_total',
      help: 'Outlier detection: endpoints ejected (result="ejected") or left in because maxEjectionPercent was reached (result="overflow")',
      labelNames: ['destination', 'reason', 'result'],
      registers,
    });
    this.rateLimitedTotal = new Counter({ name: 'tracemesh_rate_limited_total', help: 'Inbound requests refused by a RateLimit (flag RL), per RateLimit', labelNames: ['limit'], registers });
    this.overflowTotal = new Counter({ name: 'tracemesh_overflow_total', help: 'Outbound requests refused by connection-pool limits (flag UO), per destination', labelNames: ['destination'], registers });
    this.mirrorsTotal = new Counter({ name: 'tracemesh_mirror_requests_total', help: 'Mirrored request copies, sent or dropped (too many in flight)', labelNames: ['destination', 'result'], registers });
    this.addSpanDropReader = readingCounter(
      registry,
      'tracemesh_spans_dropped_total',
      'Spans not delivered to the collector: queue full, export failed or timed out, shut down, or no collector configured',
    );
    this.addAccessLogDropReader = readingCounter(
      registry,
      'tracemesh_access_log_dropped_lines_total',
      'Access-log lines dropped because the log output was backed up or failed',
    );
    this.addExportFailureReader = readingCounter(registry, 'tracemesh_metrics_export_failures_total', 'OTLP metric exports to the collector that failed');
    // The event-loop lag histogram samples with a timer; prom-client's default of every 10 ms costs an idle
    // sidecar about 6 ms of CPU per second (6 µs per request at 1,000 req/s). Every 100 ms still shows stalls.
    if (options.defaultMetrics !== false) collectDefaultMetrics({ register: registry, eventLoopMonitoringPrecision: EVENT_LOOP_MONITORING_PRECISION_MS });
  }

  trackSpanDrops(sink: { readonly droppedSpans: number }): void {
    this.addSpanDropReader(() => sink.droppedSpans);
  }

  trackAccessLogDrops(log: { readonly droppedLines: number }): void {
    this.addAccessLogDropReader(() => log.droppedLines);
  }

  trackMetricExportFailures(bridge: { readonly failedExports: number }): void {
    this.addExportFailureReader(() => bridge.failedExports);
  }

  recordRequest(labels: RequestLabels, durationMs: number, requestBytes: number, responseBytes: number): void {
    this.requests.record(labels, durationMs, requestBytes, responseBytes);
  }

  recordRetry(destination: string): void {
    this.retriesTotal.inc({ destination });
  }

  recordMirror(destination: string, sent: boolean): void {
    this.mirrorsTotal.inc({ destination, result: sent ? 'sent' : 'dropped' });
  }

  recordRateLimited(limit: string): void {
    this.rateLimitedTotal.inc({ limit });
  }

  recordOverflow(destination: string): void {
    this.overflowTotal.inc({ destination });
  }

  recordOutlierEvent(event: { readonly kind: 'ejected' | 'overflow' | 'unejected'; readonly destination: string; readonly reason?: string }): void {
    if (event.kind === 'unejected') return;
    this.ejectionsTotal.inc({ destination: event.destination, reason: event.reason ?? '', result: event.kind });
  }

  tcpOpened(labels: TcpLabels): void {
    this.tcp(labels).opened.inc();
  }

  tcpClosed(labels: TcpLabels, bytesReceived: number, bytesSent: number, _durationMs: number): void {
    const children = this.tcp(labels);
    children.closed.inc();
    if (bytesReceived > 0) children.received.inc(bytesReceived);
    if (bytesSent > 0) children.sent.inc(bytesSent);
  }

  private tcp(labels: TcpLabels): TcpChildren {
    const key =
      labels.direction + KEY_SEPARATOR + labels.protocol + KEY_SEPARATOR + labels.sourceService + KEY_SEPARATOR +
      labels.destinationService + KEY_SEPARATOR + labels.destinationVersion;
    return this.tcpChildren.get(key) ?? this.newTcpChildren(key, labels);
  }

  private newTcpChildren(key: string, labels: TcpLabels): TcpChildren {
    const overflow = this.tcpChildren.size >= this.maxSeries;
    if (overflow) {
      this.seriesOverflowTotal.inc({ family: 'tcp' });
      const overflowKey = `${labels.direction}${KEY_SEPARATOR}${labels.protocol}${KEY_SEPARATOR}${OVERFLOW}`;
      const existing = this.tcpChildren.get(overflowKey);
      if (existing !== undefined) return existing;
      key = overflowKey;
    }
    const o = overflow ? OVERFLOW : undefined;
    const values: Record<TcpLabelName, string> = {
      direction: labels.direction,
      protocol: labels.protocol,
      source_service: o ?? labels.sourceService,
      destination_service: o ?? labels.destinationService,
      destination_version: o ?? labels.destinationVersion,
    };
    const children: TcpChildren = {
      opened: this.tcpOpenedTotal.labels(values),
      closed: this.tcpClosedTotal.labels(values),
      received: this.tcpReceivedTotal.labels(values),
      sent: this.tcpSentTotal.labels(values),
    };
    this.tcpChildren.set(key, children);
    return children;
  }
}

export function createProxyMetrics(options: ProxyMetricsOptions): PromProxyMetrics {
  return new PromMetrics(options);
}
