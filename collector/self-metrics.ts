import { Gauge, Registry, collectDefaultMetrics } from 'prom-client';
import type { FastifyInstance } from 'fastify';
import type { IngestPipeline } from './pipeline/ingest.js';
import type { SpoolLoader } from './pipeline/loader.js';
import type { ServiceGraph } from './pipeline/service-graph.js';
import type { Spool } from './pipeline/spool.js';
import type { ReceiverStats } from './receivers/export.js';

export interface SelfMetricsSources {
  receivers: ReadonlyArray<{ transport: 'grpc' | 'http'; stats: ReceiverStats }>;
  httpInflightBodyBytes: () => number;
  pipeline: IngestPipeline;
  spool: Spool;
  loader: SpoolLoader;
  graph: ServiceGraph;
}

/**
 * The collector's own figures in Prometheus form, read from the stats objects
 * the parts already keep (no counting twice on the hot path). Monotonic totals
 * are exposed as gauges of the running count: prom-client counters cannot be
 * set, and Prometheus' rate() works the same on either.
 */
export function selfMetricsRegistry(sources: SelfMetricsSources): Registry {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'tracemesh_collector_' });
  const gauge = (name: string, help: string, labelNames: string[], read: (g: Gauge) => void): void => {
    new Gauge({ name, help, labelNames, registers: [registry], collect() { read(this); } });
  };
  gauge('tracemesh_collector_export_requests_total', 'OTLP export requests received', ['transport'], (g) => {
    for (const r of sources.receivers) g.set({ transport: r.transport }, r.stats.requests);
  });
  gauge('tracemesh_collector_items_accepted_total', 'spans and data points accepted', ['transport'], (g) => {
    for (const r of sources.receivers) g.set({ transport: r.transport }, r.stats.itemsAccepted);
  });
  gauge('tracemesh_collector_items_rejected_total', 'spans and data points rejected as invalid or expired (partial success)', ['transport'], (g) => {
    for (const r of sources.receivers) g.set({ transport: r.transport }, r.stats.itemsRejected);
  });
  gauge('tracemesh_collector_requests_invalid_total', 'export requests refused as malformed', ['transport'], (g) => {
    for (const r of sources.receivers) g.set({ transport: r.transport }, r.stats.requestsInvalid);
  });
  gauge('tracemesh_collector_requests_refused_total', 'export requests refused as retryable (spool or memory full)', ['transport'], (g) => {
    for (const r of sources.receivers) g.set({ transport: r.transport }, r.stats.requestsRefused);
  });
  gauge('tracemesh_collector_http_inflight_body_bytes', 'OTLP/HTTP request bodies held in memory', [], (g) => g.set(sources.httpInflightBodyBytes()));
  gauge('tracemesh_collector_buffered_bytes', 'rows held in memory before they reach the spool', [], (g) => g.set(sources.pipeline.bufferedBytes));
  gauge('tracemesh_collector_spool_bytes', 'bytes of sealed segments waiting for the store', [], (g) => g.set(sources.spool.bytes));
  gauge('tracemesh_collector_spool_files', 'sealed segment files waiting for the store', [], (g) => g.set(sources.spool.fileCount));
  gauge('tracemesh_collector_store_healthy', '1 while inserts into the store succeed', [], (g) => g.set(sources.loader.healthy ? 1 : 0));
  gauge('tracemesh_collector_store_loaded_bytes_total', 'segment bytes loaded into the store', [], (g) => g.set(sources.loader.stats.loadedBytes));
  gauge('tracemesh_collector_store_failed_inserts_total', 'failed insert attempts (each is retried)', [], (g) => g.set(sources.loader.stats.failedAttempts));
  gauge('tracemesh_collector_store_quarantined_files_total', 'segment files the store refused as bad data', [], (g) => g.set(sources.loader.stats.quarantinedFiles));
  gauge('tracemesh_collector_service_graph_pending', 'call halves waiting for their other half', [], (g) => g.set(sources.graph.pending));
  gauge('tracemesh_collector_service_graph_calls_total', 'calls counted on the service graph', ['kind'], (g) => {
    const s = sources.graph.stats;
    g.set({ kind: 'paired' }, s.paired);
    g.set({ kind: 'entry' }, s.entry);
    g.set({ kind: 'virtual' }, s.virtual);
    g.set({ kind: 'unpaired' }, s.unpaired);
  });
  return registry;
}

/** `GET /metrics` on the query API's port. */
export function serveSelfMetrics(app: FastifyInstance, registry: Registry): void {
  app.get('/metrics', async (_request, reply) => {
    const text = await registry.metrics();
    return reply.type(registry.contentType).send(text);
  });
}
