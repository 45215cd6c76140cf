import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Collector, collectorConfig } from '../../collector/collector.js';
import type { CollectorConfig } from '../../collector/collector.js';
import { DEFAULT_INGEST_OPTIONS } from '../../collector/pipeline/ingest.js';

export interface RunningCollector {
  collector: Collector;
  dir: string;
  grpcUrl: string;
  httpUrl: string;
  apiUrl: string;
  stop(): Promise<void>;
}

/** A collector on loopback, ephemeral ports, chDB and spool in a fresh temp dir, short flush interval. */
export async function startCollector(overrides: Partial<CollectorConfig> = {}): Promise<RunningCollector> {
  const dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-test-'));
  const collector = new Collector(
    collectorConfig({
      store: { kind: 'chdb', dataDir: path.join(dir, 'clickhouse') },
      spoolDir: path.join(dir, 'spool'),
      host: '127.0.0.1',
      otlpGrpcPort: 0,
      otlpHttpPort: 0,
      apiPort: 0,
      ingest: { ...DEFAULT_INGEST_OPTIONS, flushIntervalMs: 100 },
      ...overrides,
    }),
  );
  await collector.start();
  return {
    collector,
    dir,
    grpcUrl: `http://127.0.0.1:${collector.grpc.port}`,
    httpUrl: `http://127.0.0.1:${collector.http.port}`,
    apiUrl: `http://127.0.0.1:${collector.apiPort}`,
    async stop() {
      await collector.shutdown(2_000);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** Polls `probe` until it returns a value (not undefined) or the deadline passes. */
export async function eventually<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 20_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let lastError: unknown;
  for (;;) {
    try {
      const value = await probe();
      if (value !== undefined) return value;
    } catch (err) {
      lastError = err;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${lastError !== undefined ? `: ${String(lastError)}` : ''}`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

export async function getJson<T>(url: string): Promise<{ status: number; body: T }> {
  const res = await fetch(url);
  return { status: res.status, body: (await res.json()) as T };
}
