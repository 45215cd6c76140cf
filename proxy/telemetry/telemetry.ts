/**
 * The telemetry a protocol path talks to: one object per proxy, built once in
 * proxy.ts and handed to every listener. Interfaces only; the implementations
 * are span-sink-*.ts, prom-metrics.ts and access-log.ts beside this file.
 */
import type { ResponseFlag } from '../errors-to-wire.js';
import type { SpanSink } from './span-record.js';

/** Who this proxy fronts. */
export interface WorkloadIdentity {
  readonly service: string;
  readonly namespace: string;
  readonly version: string;
}

export type Direction = 'inbound' | 'outbound';
/** The protocol label on metrics, spans (`tracemesh.protocol`) and the access log. */
export type MeshProtocol = 'http1' | 'http2' | 'grpc' | 'tcp' | 'tls';

/** Labels of one finished HTTP/gRPC request. Empty string when unknown, never undefined. */
export interface RequestLabels {
  direction: Direction;
  protocol: MeshProtocol;
  sourceService: string;
  sourceNamespace: string;
  sourceVersion: string;
  destinationService: string;
  destinationNamespace: string;
  destinationVersion: string;
  /** HTTP status as a string ("200"); for gRPC the HTTP status, with grpcStatus below. */
  responseCode: string;
  /** gRPC status as a string, '' for plain HTTP. */
  grpcStatus: string;
  /** Comma-joined response flags, '-' when none (Envoy's convention). */
  responseFlags: string;
}

export interface TcpLabels {
  direction: Direction;
  protocol: MeshProtocol; // tcp or tls
  sourceService: string;
  destinationService: string;
  destinationVersion: string;
}

export interface ProxyMetrics {
  recordRequest(labels: RequestLabels, durationMs: number, requestBytes: number, responseBytes: number): void;
  // Traffic management (optional: test doubles need not count them).
  /** A retry of a request to `destination` ("reviews.default:9080|v2") started. */
  recordRetry?(destination: string): void;
  /** A mirror copy to `destination` was sent, or dropped (too many in flight). */
  recordMirror?(destination: string, sent: boolean): void;
  /** An inbound request was refused by the RateLimit `limit`. */
  recordRateLimited?(limit: string): void;
  /** An outbound request was refused by `destination`'s connection-pool limits (flag UO). */
  recordOverflow?(destination: string): void;
  tcpOpened(labels: TcpLabels): void;
  tcpClosed(labels: TcpLabels, bytesReceived: number, bytesSent: number, durationMs: number): void;
}

/** One JSON access-log line; field names follow Envoy's default JSON format where one exists. */
export interface AccessLogEntry {
  start_time: string; // ISO 8601
  direction: Direction;
  protocol: MeshProtocol;
  method: string; // '' for TCP
  authority: string;
  path: string;
  response_code: number; // 0 for TCP
  grpc_status: string;
  response_flags: string; // '-' when none
  bytes_received: number;
  bytes_sent: number;
  duration_ms: number;
  upstream_host: string; // address:port, '' when none was chosen
  downstream_remote_address: string;
  source_service: string;
  destination_service: string;
  request_id: string;
  trace_id: string;
  user_agent: string;
}

export interface AccessLog {
  write(entry: AccessLogEntry): void;
  close(): Promise<void>;
}

export interface Telemetry {
  readonly identity: WorkloadIdentity;
  /** False with `--collector none`: no span is built at all (the benchmark's "tracing off"). */
  readonly tracing: boolean;
  readonly spans: SpanSink;
  readonly metrics: ProxyMetrics;
  /** Undefined when access logging is off (the default): callers skip building entries. */
  readonly accessLog: AccessLog | undefined;
}

export function joinFlags(flags: readonly ResponseFlag[]): string {
  return flags.length === 0 ? '-' : flags.join(',');
}
