/**
 * A Telemetry that keeps what the proxy reports in arrays, so tests can read
 * the spans, metric calls and access-log lines a real exchange produced.
 */
import type { ProxySpanRecord, SpanSink } from '../../proxy/telemetry/span-record.js';
import type { AccessLogEntry, RequestLabels, TcpLabels, Telemetry, WorkloadIdentity } from '../../proxy/telemetry/telemetry.js';

export interface RecordedRequest {
  labels: RequestLabels;
  durationMs: number;
  requestBytes: number;
  responseBytes: number;
}

export interface RecordingTelemetry extends Telemetry {
  readonly recordedSpans: ProxySpanRecord[];
  readonly requests: RecordedRequest[];
  readonly tcpOpened: TcpLabels[];
  readonly tcpClosed: Array<{ labels: TcpLabels; bytesReceived: number; bytesSent: number }>;
  readonly accessLines: AccessLogEntry[];
}

export function recordingTelemetry(
  identity: WorkloadIdentity = { service: 'test-svc', namespace: 'default', version: 'v1' },
  options: { accessLog?: boolean } = {},
): RecordingTelemetry {
  const recordedSpans: ProxySpanRecord[] = [];
  const requests: RecordedRequest[] = [];
  const tcpOpened: TcpLabels[] = [];
  const tcpClosed: RecordingTelemetry['tcpClosed'] = [];
  const accessLines: AccessLogEntry[] = [];
  const spans: SpanSink = {
    record: (span) => void recordedSpans.push(span),
    droppedSpans: 0,
    forceFlush: async () => {},
    shutdown: async () => {},
  };
  return {
    identity,
    tracing: true,
    spans,
    metrics: {
      recordRequest: (labels, durationMs, requestBytes, responseBytes) => void requests.push({ labels, durationMs, requestBytes, responseBytes }),
      tcpOpened: (labels) => void tcpOpened.push({ ...labels }),
      tcpClosed: (labels, bytesReceived, bytesSent) => void tcpClosed.push({ labels: { ...labels }, bytesReceived, bytesSent }),
    },
    accessLog: options.accessLog === true ? { write: (entry) => void accessLines.push(entry), close: async () => {} } : undefined,
    recordedSpans,
    requests,
    tcpOpened,
    tcpClosed,
    accessLines,
  };
}
