import path from 'node:path';
import type { FastifyInstance } from 'fastify';
import { backoffMs, sleep } from '../src/lib/backoff.js';
import { errorMessage, isTracemeshError } from '../src/lib/errors.js';
import { createQueryApi } from './api/server.js';
import { DEFAULT_DATA_DIR } from './defaults.js';
import { DEFAULT_INGEST_OPTIONS, IngestPipeline } from './pipeline/ingest.js';
import type { IngestOptions } from './pipeline/ingest.js';
import { DEFAULT_LOADER_OPTIONS, SpoolLoader } from './pipeline/loader.js';
import { DEFAULT_SERVICE_GRAPH_OPTIONS, ServiceGraph } from './pipeline/service-graph.js';
import type { ServiceGraphOptions } from './pipeline/service-graph.js';
import { Spool } from './pipeline/spool.js';
import { OtlpGrpcReceiver } from './receivers/otlp-grpc.js';
import { OtlpHttpReceiver } from './receivers/otlp-http.js';
import { selfMetricsRegistry, serveSelfMetrics } from './self-metrics.js';
import { applyRetention, migrate } from './storage/migrations.js';
import { openStore } from './storage/store.js';
import type { Store, StoreTarget } from './storage/store.js';

export interface CollectorConfig {
  store: StoreTarget;
  spoolDir: string;
  host: string;
  otlpGrpcPort: number;
  otlpHttpPort: number;
  apiPort: number;
  retentionSeconds: number;
  /** How long start-up waits for an unreachable store (a ClickHouse server still starting) before giving up. */
  storeWaitMs: number;
  /** OTLP/HTTP: a request must arrive completely within this (408 otherwise). */
  httpRequestTimeoutMs: number;
  ingest: IngestOptions;
  serviceGraph: ServiceGraphOptions;
  log: (message: string) => void;
}

export { DEFAULT_DATA_DIR };

/** Defaults as `tracemesh collector` documents them; `overrides` win. */
export function collectorConfig(overrides: Partial<CollectorConfig> = {}): CollectorConfig {
  const store = overrides.store ?? { kind: 'chdb', dataDir: path.join(DEFAULT_DATA_DIR, 'clickhouse') };
  return {
    store,
    spoolDir: overrides.spoolDir ?? path.join(DEFAULT_DATA_DIR, 'spool'),
    host: '0.0.0.0',
    otlpGrpcPort: 4317,
    otlpHttpPort: 4318,
    apiPort: 16686,
    retentionSeconds: 7 * 86_400,
    storeWaitMs: 60_000,
    httpRequestTimeoutMs: 30_000,
    ingest: DEFAULT_INGEST_OPTIONS,
    serviceGraph: DEFAULT_SERVICE_GRAPH_OPTIONS,
    log: () => {},
    ...overrides,
  };
}

/**
 * The tracing backend in one process: OTLP receivers → ingest pipeline →
 * spool → store, and the query API on the same store. Start order is
 * store, schema, pipeline, receivers, API; shutdown is the reverse, so nothing
 * acknowledged is left in memory. `shutdown` is safe twice and without `start`.
 */
export class Collector {
  readonly config: CollectorConfig;
  readonly store: Store;
  readonly spool: Spool;
  readonly loader: SpoolLoader;
  readonly graph: ServiceGraph;
  readonly pipeline: IngestPipeline;
  readonly grpc: OtlpGrpcReceiver;
  readonly http: OtlpHttpReceiver;
  readonly api: FastifyInstance;
  #ready = false;
  #started = false;
  #stopped = false;

  constructor(config: CollectorConfig) {
    this.config = config;
    this.store = openStore(config.store);
    this.spool = new Spool(config.spoolDir);
    this.loader = new SpoolLoader(this.spool, this.store, { ...DEFAULT_LOADER_OPTIONS, log: config.log });
    this.graph = new ServiceGraph(config.serviceGraph);
    this.pipeline = new IngestPipeline(this.spool, this.loader, this.graph, {
      ...config.ingest,
      retentionSeconds: config.retentionSeconds,
      log: config.log,
    });
    this.grpc = new OtlpGrpcReceiver(this.pipeline, { host: config.host, port: config.otlpGrpcPort, log: config.log });
    this.http = new OtlpHttpReceiver(this.pipeline, { host: config.host, port: config.otlpHttpPort, log: config.log, requestTimeoutMs: config.httpRequestTimeoutMs });
    this.api = createQueryApi({ store: this.store, isReady: () => this.#ready });
    serveSelfMetrics(
      this.api,
      selfMetricsRegistry({
        receivers: [
          { transport: 'grpc', stats: this.grpc.stats },
          { transport: 'http', stats: this.http.stats },
        ],
        httpInflightBodyBytes: () => this.http.inflightBodyBytes,
        pipeline: this.pipeline,
        spool: this.spool,
        loader: this.loader,
        graph: this.graph,
      }),
    );
  }

  get ready(): boolean {
    return this.#ready;
  }

  get apiPort(): number {
    const address = this.api.server.address();
    return typeof address === 'object' && address !== null ? address.port : 0;
  }

  async start(): Promise<void> {
    this.#started = true;
    await this.#migrateOnceReachable();
    await applyRetention(this.store, this.config.retentionSeconds);
    this.spool.open();
    this.pipeline.start();
    await this.grpc.start();
    await this.http.start();
    await this.api.listen({ host: this.config.host, port: this.config.apiPort });
    this.#ready = true;
  }

  /**
   * Migrates, waiting for the store while it cannot be reached (in a compose
   * stack the collector may start before ClickHouse). A failing migration
   * statement is not waited for: that is a real error.
   */
  async #migrateOnceReachable(): Promise<void> {
    const deadline = Date.now() + this.config.storeWaitMs;
    for (let attempt = 0; ; attempt++) {
      try {
        await migrate(this.store);
        return;
      } catch (err) {
        if (!isTracemeshError(err, 'TM_ERR_STORE_QUERY') || Date.now() >= deadline) throw err;
        const delay = Math.min(backoffMs(attempt), Math.max(0, deadline - Date.now()));
        this.config.log(`store not reachable yet, retrying in ${delay} ms: ${errorMessage(err)}`);
        // Nothing listens yet: this wait is what keeps the process running.
        await sleep(delay, { holdProcess: true });
      }
    }
  }

  async shutdown(drainMs = 10_000): Promise<void> {
    if (this.#stopped) return;
    this.#stopped = true;
    this.#ready = false;
    if (this.#started) {
      await Promise.all([this.grpc.shutdown(5_000), this.http.shutdown(5_000)]);
      await this.pipeline.shutdown(drainMs).catch((err: unknown) => this.config.log(`pipeline shutdown: ${errorMessage(err)}`));
      await this.api.close();
    }
    await this.store.close();
  }
}
