import { describe, expect, it } from 'vitest';
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
