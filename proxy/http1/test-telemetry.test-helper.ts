/**
 * Test plumbing: a Telemetry that keeps what the HTTP/1 path reports (span
 * records, metric calls, access-log entries) in arrays, so tests assert on
 * exactly what reached telemetry.
 */
import type { ProxySpanRecord, SpanSink } from '../telemetry/span-record.js';
import type { AccessLog, AccessLogEntry, ProxyMetrics, RequestLabels, TcpLabels, Telemetry, WorkloadIdentity } from '../telemetry/telemetry.js';

export interface RecordedRequest {
  labels: RequestLabels;
  durationMs: number;
  requestBytes: number;
  responseBytes: number;
}

export interface TestTelemetry {
  telemetry: Telemetry;
  spans: ProxySpanRecord[];
  requests: RecordedRequest[];
  accessLog: AccessLogEntry[];
}

class ArraySpanSink implements SpanSink {
  readonly droppedSpans = 0;
  constructor(private readonly spans: ProxySpanRecord[]) {}
  record(span: ProxySpanRecord): void {
    this.spans.push(span);
  }
  async forceFlush(): Promise<void> {}
  async shutdown(): Promise<void> {}
}

class ArrayMetrics implements ProxyMetrics {
  constructor(private readonly requests: RecordedRequest[]) {}
  recordRequest(labels: RequestLabels, durationMs: number, requestBytes: number, responseBytes: number): void {
    this.requests.push({ labels, durationMs, requestBytes, responseBytes });
  }
  tcpOpened(_labels: TcpLabels): void {}
  tcpClosed(_labels: TcpLabels, _bytesReceived: number, _bytesSent: number, _durationMs: number): void {}
}

class ArrayAccessLog implements AccessLog {
  constructor(private readonly entries: AccessLogEntry[]) {}
  write(entry: AccessLogEntry): void {
    this.entries.push(entry);
  }
  async close(): Promise<void> {}
}

export const TEST_IDENTITY: WorkloadIdentity = { service: 'productpage', namespace: 'default', version: 'v1' };

export function createTestTelemetry(identity: WorkloadIdentity = TEST_IDENTITY, tracing = true): TestTelemetry {
  const spans: ProxySpanRecord[] = [];
  const requests: RecordedRequest[] = [];
  const accessLog: AccessLogEntry[] = [];
  return {
    telemetry: { identity, tracing, spans: new ArraySpanSink(spans), metrics: new ArrayMetrics(requests), accessLog: new ArrayAccessLog(accessLog) },
    spans,
    requests,
    accessLog,
  };
}
