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
import { Counter, Gauge, Registry, collectDefaultMetrics } from 'prom-client';
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

/**
 * One destination's load-balancing state as the scrape reads it (proxy/pipeline's
 * Destination.status(), see destination-readings.ts there).
 */
export interface DestinationReading {
  /** "reviews.default:9080" or "reviews.default:9080|v2". */
  readonly name: string;
  /** Endpoints ejected by outlier detection now. */
  readonly ejectedEndpoints: number;
  /** Endpoints failing the destination's active health check now. */
  readonly failingHealthChecks: number;
  /** Picks made in panic mode under this name so far (grows, or restarts from 0 when the name was forgotten). */
  readonly panicPicks: number;
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
  /**
   * Reads the destinations at every scrape (and OTLP export, which reads the
   * same registry): tracemesh_outlier_ejections_active and
   * tracemesh_health_check_failing_endpoints per destination, and the growth
   * of tracemesh_lb_panic_picks_total. `read` gives the current
   * configuration's destinations; several sources add up by name.
   */
  trackDestinations(read: () => Iterable<DestinationReading>): void;
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
  private readonly destinationReaders: Array<() => Iterable<DestinationReading>> = [];

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
    registerDestinationMetrics(registry, this.destinationReaders);
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

  trackDestinations(read: () => Iterable<DestinationReading>): void {
    this.destinationReaders.push(read);
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

/** Every reading of every source, summed by destination name (one scrape's snapshot). */
function readDestinations(readers: ReadonlyArray<() => Iterable<DestinationReading>>): Map<string, { ejected: number; failing: number; panicPicks: number }> {
  const byName = new Map<string, { ejected: number; failing: number; panicPicks: number }>();
  for (const read of readers) {
    for (const r of read()) {
      const sum = byName.get(r.name);
      if (sum === undefined) byName.set(r.name, { ejected: r.ejectedEndpoints, failing: r.failingHealthChecks, panicPicks: r.panicPicks });
      else {
        sum.ejected += r.ejectedEndpoints;
        sum.failing += r.failingHealthChecks;
        sum.panicPicks += r.panicPicks;
      }
    }
  }
  return byName;
}

/**
 * The destination gauges and the panic counter, all read at scrape time:
 * nothing on the request path keeps them. A gauge is reset before it is set,
 * so a destination a new configuration dropped leaves no stale series.
 * The counter adds each destination's growth since the last scrape; a
 * reading below the last (the name was forgotten and came back) starts a
 * new baseline instead of going down.
 */
function registerDestinationMetrics(registry: Registry, readers: ReadonlyArray<() => Iterable<DestinationReading>>): void {
  const registers = [registry];
  new Gauge({
    name: 'tracemesh_outlier_ejections_active',
    help: 'Endpoints ejected by outlier detection now, per destination (Envoy outlier_detection.ejections_active)',
    labelNames: ['destination'],
    registers,
    collect(this: Gauge<'destination'>) {
      this.reset();
      for (const [destination, sum] of readDestinations(readers)) this.set({ destination }, sum.ejected);
    },
  });
  new Gauge({
    name: 'tracemesh_health_check_failing_endpoints',
    help: 'Endpoints failing the active health check now, per destination',
    labelNames: ['destination'],
    registers,
    collect(this: Gauge<'destination'>) {
      this.reset();
      for (const [destination, sum] of readDestinations(readers)) this.set({ destination }, sum.failing);
    },
  });
  const reported = new Map<string, number>();
  new Counter({
    name: 'tracemesh_lb_panic_picks_total',
    help: 'Endpoints picked in panic mode (too few usable endpoints, so all were balanced over), per destination (Envoy lb_healthy_panic)',
    labelNames: ['destination'],
    registers,
    collect(this: Counter<'destination'>) {
      const seen = new Set<string>();
      for (const [destination, sum] of readDestinations(readers)) {
        seen.add(destination);
        const before = reported.get(destination) ?? 0;
        // Growth only; 0 the first time, so every destination has its series from the start.
        this.inc({ destination }, sum.panicPicks > before ? sum.panicPicks - before : 0);
        reported.set(destination, sum.panicPicks);
      }
      // A destination that left the configuration restarts from 0 if it returns (its TrafficState entry is gone).
      for (const destination of reported.keys()) if (!seen.has(destination)) reported.delete(destination);
    },
  });
}

export function createProxyMetrics(options: ProxyMetricsOptions): PromProxyMetrics {
  return new PromMetrics(options);
}
