import { createServer } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { eventually, startCollector } from '../../test/support/collector-harness.js';
import type { RunningCollector } from '../../test/support/collector-harness.js';
import { startOtlpMetricsBridge } from './otlp-metrics-bridge.js';
import { createProxyMetrics } from './prom-metrics.js';
import type { RequestLabels } from './telemetry.js';

let running: RunningCollector;

beforeAll(async () => {
  running = await startCollector();
});

afterAll(async () => {
  await running?.stop();
});

const labels: RequestLabels = {
  direction: 'inbound',
  protocol: 'http1',
  sourceService: 'productpage',
  sourceNamespace: 'bookinfo',
  sourceVersion: 'v1',
  destinationService: 'reviews',
  destinationNamespace: 'bookinfo',
  destinationVersion: 'v2',
  responseCode: '200',
  grpcStatus: '',
  responseFlags: '-',
};

const ATTRIBUTES = {
  direction: 'inbound',
  protocol: 'http1',
  source_service: 'productpage',
  source_namespace: 'bookinfo',
  source_version: 'v1',
  destination_service: 'reviews',
  destination_namespace: 'bookinfo',
  destination_version: 'v2',
  response_code: '200',
  grpc_status: '',
  response_flags: '-',
};

describe('OTLP metrics bridge', () => {
  it('lands the Prometheus figures in otel_metrics_sum, otel_metrics_histogram and otel_metrics_gauge', async () => {
    const identity = { service: 'reviews-metrics', namespace: 'bookinfo', version: 'v2' };
    const metrics = createProxyMetrics({ identity });
    metrics.recordRequest(labels, 3, 100, 2048);
    metrics.recordRequest(labels, 30, 0, 1024);
    const startTimeMs = Date.now() - 5000;
    const bridge = startOtlpMetricsBridge({ registry: metrics.registry, identity, collectorUrl: running.grpcUrl, intervalMs: 600_000, startTimeMs });
    await bridge.exportNow();
    expect(bridge.failedExports).toBe(0);
    expect(bridge.exports).toBe(1);
    const store = running.collector.store;

    const sums = await eventually(async () => {
      const rows = await store.query<{ MetricName: string; Value: number; IsMonotonic: boolean; AggregationTemporality: number; Attributes: Record<string, string>; StartMs: string }>(
        `SELECT MetricName, Value, IsMonotonic, AggregationTemporality, Attributes, toString(toUnixTimestamp64Milli(StartTimeUnix)) AS StartMs
         FROM otel_metrics_sum WHERE ServiceName = 'reviews-metrics' AND MetricName IN ('tracemesh_requests_total', 'tracemesh_request_bytes_total', 'tracemesh_response_bytes_total')
         ORDER BY MetricName`,
      );
      return rows.length === 3 ? rows : undefined;
    }, 'tracemesh sums');
    expect(sums).toEqual([
      { MetricName: 'tracemesh_request_bytes_total', Value: 100, IsMonotonic: true, AggregationTemporality: 2, Attributes: ATTRIBUTES, StartMs: String(startTimeMs) },
      { MetricName: 'tracemesh_requests_total', Value: 2, IsMonotonic: true, AggregationTemporality: 2, Attributes: ATTRIBUTES, StartMs: String(startTimeMs) },
      { MetricName: 'tracemesh_response_bytes_total', Value: 3072, IsMonotonic: true, AggregationTemporality: 2, Attributes: ATTRIBUTES, StartMs: String(startTimeMs) },
    ]);

    // Each table's rows load from their own segment file: poll each table, not just the first.
    const histograms = await eventually(async () => {
      const rows = await store.query<{ MetricUnit: string; Count: string; Sum: number; BucketCounts: string[]; ExplicitBounds: number[]; Attributes: Record<string, string> }>(
        `SELECT MetricUnit, Count, Sum, BucketCounts, ExplicitBounds, Attributes FROM otel_metrics_histogram
         WHERE ServiceName = 'reviews-metrics' AND MetricName = 'tracemesh_request_duration_milliseconds'`,
      );
      return rows.length > 0 ? rows : undefined;
    }, 'the histogram row');
    expect(histograms).toHaveLength(1);
    const h = histograms[0]!;
    expect(h).toMatchObject({ MetricUnit: 'ms', Count: '2', Sum: 33, Attributes: ATTRIBUTES });
    expect(h.ExplicitBounds.slice(0, 6)).toEqual([0.5, 1, 5, 10, 25, 50]);
    expect(h.BucketCounts.map(Number)).toEqual([0, 0, 1, 0, 0, 1, ...new Array<number>(h.ExplicitBounds.length - 5).fill(0)]);

    const gauges = await eventually(async () => {
      const rows = await store.query<{ MetricName: string; Value: number }>(
        `SELECT MetricName, Value FROM otel_metrics_gauge WHERE ServiceName = 'reviews-metrics' AND MetricName = 'process_resident_memory_bytes'`,
      );
      return rows.length > 0 ? rows : undefined;
    }, 'the gauge row');
    expect(gauges).toHaveLength(1);
    expect(gauges[0]!.Value).toBeGreaterThan(1024 * 1024);
    const resources = await store.query<{ ResourceAttributes: Record<string, string> }>(
      `SELECT ResourceAttributes FROM otel_metrics_sum WHERE ServiceName = 'reviews-metrics' AND MetricName = 'tracemesh_requests_total'`,
    );
    expect(resources[0]!.ResourceAttributes).toMatchObject({
      'service.name': 'reviews-metrics',
      'service.namespace': 'bookinfo',
      'service.version': 'v2',
      'tracemesh.component': 'proxy',
      'process.pid': String(process.pid),
    });
    await bridge.stop();
    await bridge.stop();
    // stop() sent one last snapshot.
    expect(bridge.exports).toBe(2);
  });

  it('counts failed exports when the collector is down, never throws, and stops twice', async () => {
    const server = createServer();
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const address = server.address();
    await new Promise<void>((resolve) => server.close(() => resolve()));
    if (typeof address !== 'object' || address === null) throw new Error('no port');
    const identity = { service: 'nowhere', namespace: 'default', version: 'v1' };
    const metrics = createProxyMetrics({ identity, defaultMetrics: false });
    metrics.recordRequest(labels, 1, 0, 0);
    const messages: string[] = [];
    const bridge = startOtlpMetricsBridge({
      registry: metrics.registry,
      identity,
      collectorUrl: `http://127.0.0.1:${address.port}`,
      intervalMs: 600_000,
      exportTimeoutMs: 2000,
      log: (m) => messages.push(m),
    });
    metrics.trackMetricExportFailures(bridge);
    await bridge.exportNow();
    await bridge.exportNow();
    expect(bridge.failedExports).toBe(2);
    expect(bridge.exports).toBe(0);
    expect(messages).toHaveLength(1);
    expect(messages[0]).toMatch(/metric export failed/);
    expect(await metrics.registry.metrics()).toContain('tracemesh_metrics_export_failures_total 2');
    await Promise.all([bridge.stop(), bridge.stop()]);
    expect(bridge.failedExports).toBe(3);
  });

  it('rejects bad options with errors naming them', () => {
    const registry = createProxyMetrics({ identity: { service: 'a', namespace: 'b', version: 'c' }, defaultMetrics: false }).registry;
    const identity = { service: 'a', namespace: 'b', version: 'c' };
    const cases: Array<[Parameters<typeof startOtlpMetricsBridge>[0], RegExp]> = [
      [{ registry, identity, collectorUrl: 'http://127.0.0.1:4317', intervalMs: 0 }, /intervalMs/],
      [{ registry, identity, collectorUrl: 'http://127.0.0.1:4317', exportTimeoutMs: 1.5 }, /exportTimeoutMs/],
      [{ registry, identity, collectorUrl: 'grpc://127.0.0.1:4317' }, /grpc:\/\/127\.0\.0\.1:4317/],
    ];
    for (const [options, message] of cases) {
      let caught: unknown;
      try {
        startOtlpMetricsBridge(options);
      } catch (err) {
        caught = err;
      }
      expect(isTracemeshError(caught, 'TM_ERR_CONFIG_INVALID')).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
  });
});
