import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { destinationPolicyYaml, serviceYaml, validMeshConfig } from '../../test/support/mesh-yaml.js';
import { waitUntil } from '../../test/support/wait-until.js';
import { startAdminServer } from '../admin/server.js';
import { closedPort } from '../http1/proxy-harness.test-helper.js';
import { destinationReadings } from '../pipeline/destination-readings.js';
import { createTrafficConfig } from '../pipeline/traffic-config.js';
import { TrafficState } from '../pipeline/traffic-state.js';
import type { TrafficConfig } from '../pipeline/types.js';
import { createProxyMetrics } from './prom-metrics.js';
import type { RequestLabels, TcpLabels } from './telemetry.js';

const identity = { service: 'productpage', namespace: 'bookinfo', version: 'v1' };

function requestLabels(overrides: Partial<RequestLabels> = {}): RequestLabels {
  return {
    direction: 'outbound',
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
    ...overrides,
  };
}

const REQUEST_SERIES =
  'direction="outbound",protocol="http1",source_service="productpage",source_namespace="bookinfo",source_version="v1",' +
  'destination_service="reviews",destination_namespace="bookinfo",destination_version="v2",response_code="200",grpc_status="",response_flags="-"';

describe('Prometheus proxy metrics', () => {
  it('records requests, duration, request and response bytes per label set', async () => {
    const metrics = createProxyMetrics({ identity, defaultMetrics: false });
    metrics.recordRequest(requestLabels(), 3.2, 100, 1024);
    metrics.recordRequest(requestLabels(), 40, 0, 2048);
    metrics.recordRequest(requestLabels({ responseCode: '503', responseFlags: 'UF' }), 0.2, 10, 0);
    const text = await metrics.registry.metrics();
    expect(text).toContain(`tracemesh_requests_total{${REQUEST_SERIES}} 2`);
    expect(text).toContain(`tracemesh_request_bytes_total{${REQUEST_SERIES}} 100`);
    expect(text).toContain(`tracemesh_response_bytes_total{${REQUEST_SERIES}} 3072`);
    expect(text).toContain(`tracemesh_request_duration_milliseconds_bucket{le="1",${REQUEST_SERIES}} 0`);
    expect(text).toContain(`tracemesh_request_duration_milliseconds_bucket{le="5",${REQUEST_SERIES}} 1`);
    expect(text).toContain(`tracemesh_request_duration_milliseconds_bucket{le="50",${REQUEST_SERIES}} 2`);
    expect(text).toContain(`tracemesh_request_duration_milliseconds_bucket{le="3600000",${REQUEST_SERIES}} 2`);
    expect(text).toContain(`tracemesh_request_duration_milliseconds_sum{${REQUEST_SERIES}} 43.2`);
    expect(text).toContain(`tracemesh_request_duration_milliseconds_count{${REQUEST_SERIES}} 2`);
    expect(text).toMatch(/tracemesh_requests_total\{[^}]*response_code="503",grpc_status="",response_flags="UF"\} 1/);
    expect(text).toContain('# TYPE tracemesh_request_duration_milliseconds histogram');
  });

  it('records gRPC status as its own label', async () => {
    const metrics = createProxyMetrics({ identity, defaultMetrics: false });
    metrics.recordRequest(requestLabels({ protocol: 'grpc', grpcStatus: '14' }), 1, 5, 0);
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/tracemesh_requests_total\{direction="outbound",protocol="grpc",[^}]*grpc_status="14"[^}]*\} 1/);
  });

  it('records TCP connections opened and closed, and bytes each way', async () => {
    const metrics = createProxyMetrics({ identity, defaultMetrics: false });
    const labels: TcpLabels = { direction: 'inbound', protocol: 'tcp', sourceService: 'ratings', destinationService: 'productpage', destinationVersion: 'v1' };
    metrics.tcpOpened(labels);
    metrics.tcpOpened(labels);
    metrics.tcpClosed(labels, 1500, 64, 12);
    const series = 'direction="inbound",protocol="tcp",source_service="ratings",destination_service="productpage",destination_version="v1"';
    const text = await metrics.registry.metrics();
    expect(text).toContain(`tracemesh_tcp_connections_opened_total{${series}} 2`);
    expect(text).toContain(`tracemesh_tcp_connections_closed_total{${series}} 1`);
    expect(text).toContain(`tracemesh_tcp_received_bytes_total{${series}} 1500`);
    expect(text).toContain(`tracemesh_tcp_sent_bytes_total{${series}} 64`);
  });

  it('reads dropped spans, dropped access-log lines and failed metric exports at scrape time', async () => {
    const metrics = createProxyMetrics({ identity, defaultMetrics: false });
    const sinkA = { droppedSpans: 3 };
    const sinkB = { droppedSpans: 4 };
    const log = { droppedLines: 0 };
    metrics.trackSpanDrops(sinkA);
    metrics.trackSpanDrops(sinkB);
    metrics.trackAccessLogDrops(log);
    metrics.trackMetricExportFailures({ failedExports: 2 });
    expect(await metrics.registry.metrics()).toContain('tracemesh_spans_dropped_total 7');
    sinkA.droppedSpans = 10;
    log.droppedLines = 5;
    const text = await metrics.registry.metrics();
    expect(text).toContain('tracemesh_spans_dropped_total 14');
    expect(text).toContain('tracemesh_access_log_dropped_lines_total 5');
    expect(text).toContain('tracemesh_metrics_export_failures_total 2');
    expect(text).toContain('# TYPE tracemesh_spans_dropped_total counter');
  });

  it('folds label sets past maxSeries into one overflow series and counts them', async () => {
    const metrics = createProxyMetrics({ identity, defaultMetrics: false, maxSeries: 3 });
    for (let i = 0; i < 10; i++) metrics.recordRequest(requestLabels({ sourceService: `peer-${i}` }), 1, 0, 0);
    const text = await metrics.registry.metrics();
    const requestLines = text.split('\n').filter((l) => l.startsWith('tracemesh_requests_total{'));
    expect(requestLines).toHaveLength(4);
    expect(text).toContain(
      'tracemesh_requests_total{direction="outbound",protocol="http1",source_service="overflow",source_namespace="overflow",source_version="overflow",' +
        'destination_service="overflow",destination_namespace="overflow",destination_version="overflow",response_code="overflow",grpc_status="overflow",response_flags="overflow"} 7',
    );
    expect(text).toContain('tracemesh_metric_series_overflow_total{family="request"} 7');
    // A label set seen before the cap still has its own series.
    metrics.recordRequest(requestLabels({ sourceService: 'peer-0' }), 1, 0, 0);
    expect(await metrics.registry.metrics()).toMatch(/tracemesh_requests_total\{[^}]*source_service="peer-0"[^}]*\} 2/);
  });

  it('exposes process CPU and memory', async () => {
    const metrics = createProxyMetrics({ identity });
    const text = await metrics.registry.metrics();
    expect(text).toMatch(/^process_cpu_seconds_total \d/m);
    expect(text).toMatch(/^process_resident_memory_bytes \d/m);
    expect(text).toMatch(/^nodejs_heap_size_used_bytes \d/m);
  });

  it('counts traffic-management decisions: retries, ejections, rate limits, overflows and mirrors', async () => {
    const metrics = createProxyMetrics({ identity, defaultMetrics: false });
    metrics.recordRetry('reviews.default:9080|v2');
    metrics.recordRetry('reviews.default:9080|v2');
    metrics.recordOutlierEvent({ kind: 'ejected', destination: 'reviews.default:9080', reason: 'consecutive-5xx' });
    metrics.recordOutlierEvent({ kind: 'overflow', destination: 'reviews.default:9080', reason: 'consecutive-5xx' });
    metrics.recordOutlierEvent({ kind: 'unejected', destination: 'reviews.default:9080' });
    metrics.recordRateLimited('reviews-api');
    metrics.recordOverflow('reviews.default:9080');
    metrics.recordMirror('reviews.default:9080|v3', true);
    metrics.recordMirror('reviews.default:9080|v3', false);
    const text = await metrics.registry.metrics();
    expect(text).toContain('tracemesh_retries_total{destination="reviews.default:9080|v2"} 2');
    expect(text).toContain('tracemesh_outlier_ejections_total{destination="reviews.default:9080",reason="consecutive-5xx",result="ejected"} 1');
    expect(text).toContain('tracemesh_outlier_ejections_total{destination="reviews.default:9080",reason="consecutive-5xx",result="overflow"} 1');
    expect(text).not.toContain('result="unejected"');
    expect(text).toContain('tracemesh_rate_limited_total{limit="reviews-api"} 1');
    expect(text).toContain('tracemesh_overflow_total{destination="reviews.default:9080"} 1');
    expect(text).toContain('tracemesh_mirror_requests_total{destination="reviews.default:9080|v3",result="sent"} 1');
    expect(text).toContain('tracemesh_mirror_requests_total{destination="reviews.default:9080|v3",result="dropped"} 1');
  });
});

describe('destination gauges and the panic counter through /stats/prometheus', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const clean of cleanups.splice(0).reverse()) await clean();
  });

  const DESTINATION = 'reviews.default:9080';
  const POLICY =
    '  healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 1 }\n' +
    '  outlierDetection: { consecutive5xx: 1, interval: 10s, baseEjectionTime: 30s, maxEjectionPercent: 100 }\n' +
    '  subsets: []';

  /** One endpoint answering its checks, three on closed ports (their checks fail: connection refused). */
  async function endpointPorts(): Promise<number[]> {
    const server = http.createServer((_req, res) => res.end('ok'));
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    return [(server.address() as AddressInfo).port, await closedPort(), await closedPort(), await closedPort()];
  }

  it('reads ejected and failing endpoints at scrape time, and counts panic picks across configuration versions', async () => {
    const ports = await endpointPorts();
    const yaml = `${serviceYaml('reviews', { name: 'http', port: 9080, protocol: 'http' }, ports)}\n---\n${destinationPolicyYaml('reviews', POLICY)}\n`;
    const config = validMeshConfig(yaml, 'prom-metrics.test.yaml');
    const clock = { now: 1_000_000 };
    const state = new TrafficState();
    const build = (version: string): TrafficConfig => {
      const traffic = createTrafficConfig(config, version, state, { now: () => clock.now, random: () => 0.5 });
      cleanups.push(() => traffic.close());
      return traffic;
    };
    let traffic = build('v1');
    const metrics = createProxyMetrics({ identity, defaultMetrics: false });
    metrics.trackDestinations(() => destinationReadings(traffic.destinations));
    const admin = await startAdminServer({
      host: '127.0.0.1',
      port: 0,
      registry: metrics.registry,
      ready: () => true,
      configDump: () => ({}),
      clusters: () => ({}),
      log: () => {},
    });
    cleanups.push(() => admin.close());
    const scrape = async (): Promise<string> => (await fetch(`http://127.0.0.1:${admin.port}/stats/prometheus`)).text();
    const series = (name: string): RegExp => new RegExp(`^${name}\\{destination="${DESTINATION.replace(/[.|]/g, '\\$&')}"\\} (\\d+)$`, 'm');
    const value = (text: string, name: string): number => Number(series(name).exec(text)?.[1] ?? Number.NaN);

    const before = await scrape();
    expect(value(before, 'tracemesh_outlier_ejections_active')).toBe(0);
    expect(value(before, 'tracemesh_lb_panic_picks_total')).toBe(0);
    expect(before).toContain('# TYPE tracemesh_outlier_ejections_active gauge');
    expect(before).toContain('# TYPE tracemesh_health_check_failing_endpoints gauge');
    expect(before).toContain('# TYPE tracemesh_lb_panic_picks_total counter');

    const destination = traffic.destinations.find((d) => d.name === DESTINATION)!;
    await waitUntil('three endpoints failing their checks', () => destination.status?.().endpoints.filter((e) => !e.healthy).length === 3);
    // The healthy one fails once: consecutive5xx 1 ejects it. Now nothing is usable: panic.
    expect(destination.recordOutcome(destination.endpoints[0]!, '5xx')).toEqual({ ejected: true, reason: 'consecutive-5xx' });
    for (let i = 0; i < 5; i++) destination.pick(undefined, undefined);
    expect(destination.lastPickPanicked).toBe(true);
    const during = await scrape();
    expect(value(during, 'tracemesh_outlier_ejections_active')).toBe(1);
    expect(value(during, 'tracemesh_health_check_failing_endpoints')).toBe(3);
    expect(value(during, 'tracemesh_lb_panic_picks_total')).toBe(5);
    // The OTLP bridge reads the same registry snapshot: the gauges are in it.
    const snapshot = await metrics.registry.getMetricsAsJSON();
    expect(snapshot.find((m) => m.name === 'tracemesh_outlier_ejections_active')).toMatchObject({ type: 'gauge', values: [{ value: 1, labels: { destination: DESTINATION } }] });

    // A new configuration version: the counter goes on from the shared state, it does not restart.
    const next = build('v2');
    const previous = traffic;
    traffic = next;
    previous.close();
    const again = traffic.destinations.find((d) => d.name === DESTINATION)!;
    // The ejection's time passes: nothing on the request path lowers the gauge, the scrape reads it.
    clock.now += 30_001;
    for (let i = 0; i < 2; i++) again.pick(undefined, undefined);
    const after = await scrape();
    expect(value(after, 'tracemesh_outlier_ejections_active')).toBe(0);
    expect(value(after, 'tracemesh_health_check_failing_endpoints')).toBe(3);
    expect(value(after, 'tracemesh_lb_panic_picks_total')).toBe(7);
  });
});
