/**
 * The live view's figures, read from the collector's query API once a
 * second. The aggregates are per minute, so:
 *
 * - rates (req/s) are the growth of counts since the run started, between
 *   reads RATE_WINDOW_MS apart (counts "since the run" come from a window
 *   reaching back to the minute the run started);
 * - error rates and p50/p99 are over the last one to two minutes (edges:
 *   `/api/v1/graph?since=1m`; services: the current minute of `/api/v1/red`).
 *
 * What a "service" row counts. A mesh service's requests are the calls into
 * it from the service graph (its sidecar's server span paired with the
 * caller's client span), because a mesh service's spans come from both its
 * sidecar and its app and counting server spans would count each request
 * twice. The reviews versions are app-only names (`reviews-v3`: the app's
 * service.name; its sidecar reports as `reviews`), so their rows are their
 * server spans from `/api/v1/red`. Latency quantiles are server spans'
 * everywhere (the same request seen twice does not move a quantile).
 */
import type { QueryApiClient } from '../cli/api-client.js';

export interface ServiceRow {
  readonly name: string;
  /** Requests per second over the last RATE_WINDOW_MS. */
  readonly ratePerSecond: number;
  /** Since the run started. */
  readonly requests: number;
  readonly errors: number;
  /** Share of failed requests in the recent window (0 to 1). */
  readonly errorRate: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface EdgeRow {
  readonly client: string;
  readonly server: string;
  readonly requests: number;
  readonly errors: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
}

export interface TraceRef {
  readonly traceId: string;
  readonly rootService: string;
  readonly rootName: string;
  readonly durationMs: number;
  readonly errorCount: number;
}

export interface LiveSnapshot {
  readonly services: ServiceRow[];
  /** The recent window's edges between different services. */
  readonly edges: EdgeRow[];
  readonly failedTraces: TraceRef[];
  readonly slowTraces: TraceRef[];
  /** Spans of every kind stored since the run started (from the aggregates). */
  readonly spansStored: number;
  /** Why the last read failed, if it did (the view shows the previous figures meanwhile). */
  readonly problem: string | undefined;
}

interface RedAnswer {
  series: Array<{ requests: number; errors: number; p50Ms: number; p99Ms: number }>;
}
interface GraphAnswer {
  edges: EdgeRow[];
}
interface TracesAnswer {
  traces: Array<{ traceId: string; rootService: string; rootName: string; durationNanos: string; errorCount: number }>;
}

const RATE_WINDOW_MS = 5_000;
/** A trace is "slow" past this (ratings' slowdown puts whole requests above it). */
export const SLOW_TRACE_MS = 250;
const LATEST_TRACES = 3;

export interface LiveStatsOptions {
  readonly api: QueryApiClient;
  /** Mesh services (counted from the graph) and app-only names (counted from their spans). */
  readonly meshServices: readonly string[];
  readonly appOnlyServices: readonly string[];
  /**
   * Mesh services counted by one operation of their app's server spans
   * instead of the graph: inventory, whose sidecar sees TCP connections while
   * its app answers STOCK queries (and carries the trace context in-band, so
   * the graph has an edge for each).
   */
  readonly countedByOperation: Readonly<Record<string, string>>;
  /** Every service.name to sum for spans stored. */
  readonly allServices: readonly string[];
  readonly startedAtMs: number;
  readonly now?: () => number;
}

function sinceRunStart(startedAtMs: number, nowMs: number): string {
  // Whole minutes reaching back past the minute the run started in (buckets are minute-aligned).
  return `${Math.ceil((nowMs - startedAtMs) / 60_000) + 1}m`;
}

/** Keeps (time, count) readings per key and answers the rate over the last RATE_WINDOW_MS. */
export class RateTracker {
  private readonly readings = new Map<string, Array<{ at: number; count: number }>>();

  record(key: string, at: number, count: number): number {
    let list = this.readings.get(key);
    if (list === undefined) {
      list = [];
      this.readings.set(key, list);
    }
    list.push({ at, count });
    while (list.length > 2 && (list[1] as { at: number }).at <= at - RATE_WINDOW_MS) list.shift();
    const first = list[0] as { at: number; count: number };
    const seconds = (at - first.at) / 1000;
    return seconds <= 0 ? 0 : Math.max(0, count - first.count) / seconds;
  }
}

function traceRefs(answer: TracesAnswer): TraceRef[] {
  return answer.traces.map((t) => ({
    traceId: t.traceId,
    rootService: t.rootService,
    rootName: t.rootName,
    durationMs: Number(t.durationNanos) / 1e6,
    errorCount: t.errorCount,
  }));
}

function sum<T>(items: readonly T[], value: (item: T) => number): number {
  let total = 0;
  for (const item of items) total += value(item);
  return total;
}

export class LiveStats {
  private readonly options: LiveStatsOptions;
  private readonly rates = new RateTracker();
  private readonly now: () => number;
  private last: LiveSnapshot = { services: [], edges: [], failedTraces: [], slowTraces: [], spansStored: 0, problem: undefined };

  constructor(options: LiveStatsOptions) {
    this.options = options;
    this.now = options.now ?? Date.now;
  }

  get latest(): LiveSnapshot {
    return this.last;
  }

  /** Reads everything once; on failure keeps the previous figures and records the problem. */
  async refresh(): Promise<LiveSnapshot> {
    try {
      this.last = await this.read();
    } catch (err) {
      this.last = { ...this.last, problem: err instanceof Error ? err.message : String(err) };
    }
    return this.last;
  }

  private async read(): Promise<LiveSnapshot> {
    const { api, meshServices, appOnlyServices, allServices, startedAtMs } = this.options;
    const nowMs = this.now();
    const since = sinceRunStart(startedAtMs, nowMs);
    const red = (service: string, kind: string, operation?: string): Promise<RedAnswer> =>
      api.get<RedAnswer>('/api/v1/red', { service, since, step: '60s', kind, operation });
    const [runGraph, recentGraph, failed, slow, serverRed, allRed] = await Promise.all([
      api.get<GraphAnswer>('/api/v1/graph', { since }),
      api.get<GraphAnswer>('/api/v1/graph', { since: '1m' }),
      api.get<TracesAnswer>('/api/v1/traces', { status: 'error', since: '2m', limit: String(LATEST_TRACES) }),
      api.get<TracesAnswer>('/api/v1/traces', { minDuration: `${SLOW_TRACE_MS}ms`, since: '2m', limit: String(LATEST_TRACES) }),
      Promise.all([...meshServices, ...appOnlyServices].map((service) => red(service, 'server', this.options.countedByOperation[service]))),
      Promise.all(allServices.map((service) => red(service, 'all'))),
    ]);
    const crossing = (edge: EdgeRow): boolean => edge.client !== edge.server;
    const services: ServiceRow[] = [];
    [...meshServices, ...appOnlyServices].forEach((name, i) => {
      const series = (serverRed[i] as RedAnswer).series;
      const current = [...series].reverse().find((point) => point.requests > 0);
      let requests: number;
      let errors: number;
      let errorRate: number;
      if (meshServices.includes(name) && this.options.countedByOperation[name] === undefined) {
        const into = runGraph.edges.filter((e) => e.server === name && crossing(e));
        const recent = recentGraph.edges.filter((e) => e.server === name && crossing(e));
        requests = sum(into, (e) => e.requests);
        errors = sum(into, (e) => e.errors);
        const recentRequests = sum(recent, (e) => e.requests);
        errorRate = recentRequests === 0 ? 0 : sum(recent, (e) => e.errors) / recentRequests;
      } else {
        requests = sum(series, (p) => p.requests);
        errors = sum(series, (p) => p.errors);
        errorRate = current === undefined ? 0 : current.errors / current.requests;
      }
      services.push({
        name,
        ratePerSecond: this.rates.record(name, nowMs, requests),
        requests,
        errors,
        errorRate,
        p50Ms: current?.p50Ms ?? 0,
        p99Ms: current?.p99Ms ?? 0,
      });
    });
    return {
      services,
      edges: recentGraph.edges.filter(crossing),
      failedTraces: traceRefs(failed),
      slowTraces: traceRefs(slow),
      spansStored: sum(allRed, (answer) => sum(answer.series, (p) => p.requests)),
      problem: undefined,
    };
  }
}
