/**
 * The request metrics' figures, kept as plain numbers per label set, and the
 * prom-client metrics that read them at scrape time.
 *
 * Why not prom-client's labelled children on the request path: every
 * `child.inc()` / `child.observe()` re-validates the eleven labels and
 * rebuilds the label hash string (four times per request, one per family),
 * which showed as about 5 % of a traced request's CPU and most of its
 * garbage. Here a request finds its RequestSeries (the one the last request
 * used, compared field by field, or a Map lookup under a joined key) and adds
 * to five numbers and one bucket. The registry asks the metric objects below
 * for their values when /stats/prometheus is scraped or the OTLP bridge
 * exports; they answer in prom-client's own format, so the exposition and
 * the JSON snapshot are what prom-client's Counter and Histogram would give.
 */
import type { Registry } from 'prom-client';
import type { RequestLabels } from './telemetry.js';

export const REQUEST_LABELS = [
  'direction',
  'protocol',
  'source_service',
  'source_namespace',
  'source_version',
  'destination_service',
  'destination_namespace',
  'destination_version',
  'response_code',
  'grpc_status',
  'response_flags',
] as const;
export type RequestLabelName = (typeof REQUEST_LABELS)[number];

const OVERFLOW = 'overflow';
/** Cannot occur in a label value we set (header values have no control characters). */
const KEY_SEPARATOR = '\u0001';

function keyOf(l: RequestLabels): string {
  return (
    l.direction + KEY_SEPARATOR + l.protocol + KEY_SEPARATOR +
    l.sourceService + KEY_SEPARATOR + l.sourceNamespace + KEY_SEPARATOR + l.sourceVersion + KEY_SEPARATOR +
    l.destinationService + KEY_SEPARATOR + l.destinationNamespace + KEY_SEPARATOR + l.destinationVersion + KEY_SEPARATOR +
    l.responseCode + KEY_SEPARATOR + l.grpcStatus + KEY_SEPARATOR + l.responseFlags
  );
}

/** One label set's figures since the proxy started. */
export class RequestSeries {
  /** The label values as the exposition shows them. */
  readonly labels: Readonly<Record<RequestLabelName, string>>;
  /** The RequestLabels this series was made for (a copy: callers reuse theirs), compared on the hot path. */
  readonly match: RequestLabels;
  requests = 0;
  requestBytes = 0;
  responseBytes = 0;
  durationSumMs = 0;
  /** Requests per duration bucket (not cumulative); the last one is +Inf. */
  readonly durationBuckets: Float64Array;

  constructor(match: RequestLabels, overflow: boolean, bucketCount: number) {
    this.match = { ...match };
    const o = overflow ? OVERFLOW : undefined;
    this.labels = {
      direction: match.direction,
      protocol: match.protocol,
      source_service: o ?? match.sourceService,
      source_namespace: o ?? match.sourceNamespace,
      source_version: o ?? match.sourceVersion,
      destination_service: o ?? match.destinationService,
      destination_namespace: o ?? match.destinationNamespace,
      destination_version: o ?? match.destinationVersion,
      response_code: o ?? match.responseCode,
      grpc_status: o ?? match.grpcStatus,
      response_flags: o ?? match.responseFlags,
    };
    this.durationBuckets = new Float64Array(bucketCount + 1);
  }
}

function sameLabels(a: RequestLabels, b: RequestLabels): boolean {
  return (
    a.responseCode === b.responseCode &&
    a.destinationService === b.destinationService &&
    a.sourceService === b.sourceService &&
    a.direction === b.direction &&
    a.protocol === b.protocol &&
    a.responseFlags === b.responseFlags &&
    a.grpcStatus === b.grpcStatus &&
    a.destinationVersion === b.destinationVersion &&
    a.sourceVersion === b.sourceVersion &&
    a.destinationNamespace === b.destinationNamespace &&
    a.sourceNamespace === b.sourceNamespace
  );
}

/**
 * Every request series, at most `maxSeries` of them: peer metadata arrives in
 * request headers, so a misbehaving peer could otherwise mint a series per
 * request. Past the cap, new label sets share one series per direction and
 * protocol whose other labels read "overflow"; `onOverflow` is told each time.
 */
export class RequestSeriesTable {
  private readonly byKey = new Map<string, RequestSeries>();
  private last: RequestSeries | undefined = undefined;

  constructor(
    /** Upper bounds of the duration buckets (ms), ascending. */
    readonly bounds: readonly number[],
    private readonly maxSeries: number,
    private readonly onOverflow: () => void,
  ) {}

  get size(): number {
    return this.byKey.size;
  }

  values(): IterableIterator<RequestSeries> {
    return this.byKey.values();
  }

  /** The figures to add a request to. */
  record(labels: RequestLabels, durationMs: number, requestBytes: number, responseBytes: number): void {
    let series = this.last;
    if (series === undefined || !sameLabels(series.match, labels)) {
      series = this.find(labels);
      this.last = series;
    }
    series.requests++;
    series.requestBytes += requestBytes;
    series.responseBytes += responseBytes;
    series.durationSumMs += durationMs;
    const bounds = this.bounds;
    let i = 0;
    while (i < bounds.length && durationMs > (bounds[i] as number)) i++;
    (series.durationBuckets[i] as number)++;
  }

  private find(labels: RequestLabels): RequestSeries {
    const key = keyOf(labels);
    const found = this.byKey.get(key);
    if (found !== undefined) return found;
    if (this.byKey.size < this.maxSeries) {
      const series = new RequestSeries(labels, false, this.bounds.length);
      this.byKey.set(key, series);
      return series;
    }
    this.onOverflow();
    const overflowKey = labels.direction + KEY_SEPARATOR + labels.protocol + KEY_SEPARATOR + OVERFLOW;
    let overflow = this.byKey.get(overflowKey);
    if (overflow === undefined) {
      overflow = new RequestSeries(labels, true, this.bounds.length);
      // The overflow series itself may pass the cap by one per direction and protocol: it is what the cap falls back to.
      this.byKey.set(overflowKey, overflow);
    }
    return overflow;
  }
}

/** One sample line, in prom-client's snapshot format. */
interface SeriesValue {
  value: number;
  labels: Record<string, string | number>;
  metricName?: string;
}

/** What prom-client's Registry reads from a metric (metrics() and getMetricsAsJSON()). */
interface SeriesSnapshot {
  name: string;
  help: string;
  type: 'counter' | 'histogram';
  values: SeriesValue[];
  aggregator: 'sum';
}

/** Registers a metric object that answers like prom-client's own; the registry's typings name only its own classes. */
function register(registry: Registry, metric: { name: string; get(): Promise<SeriesSnapshot> }): void {
  registry.registerMetric(metric as unknown as Parameters<Registry['registerMetric']>[0]);
}

type SeriesField = 'requests' | 'requestBytes' | 'responseBytes';

/** A counter family whose value per label set is one field of each series. */
class SeriesCounter {
  constructor(
    public name: string,
    readonly help: string,
    private readonly table: RequestSeriesTable,
    private readonly field: SeriesField,
  ) {}

  async get(): Promise<SeriesSnapshot> {
    const values: SeriesValue[] = [];
    for (const s of this.table.values()) values.push({ value: s[this.field], labels: { ...s.labels } });
    return { name: this.name, help: this.help, type: 'counter', values, aggregator: 'sum' };
  }

  reset(): void {}
}

/** The duration histogram: cumulative `_bucket` lines (le first, as prom-client writes them), `_sum`, `_count`. */
class SeriesHistogram {
  constructor(
    public name: string,
    readonly help: string,
    private readonly table: RequestSeriesTable,
  ) {}

  async get(): Promise<SeriesSnapshot> {
    const values: SeriesValue[] = [];
    const bounds = this.table.bounds;
    const bucketName = `${this.name}_bucket`;
    for (const s of this.table.values()) {
      let cumulative = 0;
      for (let i = 0; i < bounds.length; i++) {
        cumulative += s.durationBuckets[i] as number;
        values.push({ value: cumulative, labels: { le: bounds[i] as number, ...s.labels }, metricName: bucketName });
      }
      values.push({ value: s.requests, labels: { le: '+Inf', ...s.labels }, metricName: bucketName });
      values.push({ value: s.durationSumMs, labels: { ...s.labels }, metricName: `${this.name}_sum` });
      values.push({ value: s.requests, labels: { ...s.labels }, metricName: `${this.name}_count` });
    }
    return { name: this.name, help: this.help, type: 'histogram', values, aggregator: 'sum' };
  }

  reset(): void {}
}

/** The four request families, read from `table`, in `registry`. */
export function registerRequestMetrics(registry: Registry, table: RequestSeriesTable): void {
  register(registry, new SeriesCounter('tracemesh_requests_total', 'HTTP and gRPC requests the proxy handled', table, 'requests'));
  register(
    registry,
    new SeriesHistogram(
      'tracemesh_request_duration_milliseconds',
      'Request duration as the proxy saw it, from the first request byte to the end of the response',
      table,
    ),
  );
  register(registry, new SeriesCounter('tracemesh_request_bytes_total', 'Request body bytes', table, 'requestBytes'));
  register(registry, new SeriesCounter('tracemesh_response_bytes_total', 'Response body bytes', table, 'responseBytes'));
}
