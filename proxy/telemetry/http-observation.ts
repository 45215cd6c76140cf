/**
 * One HTTP or gRPC exchange as both protocol paths see it, and the single
 * function that turns a finished exchange into the span, the metric labels
 * and the access-log line. HTTP/1 and HTTP/2 fill an HttpObservation (one
 * object per request, every field set in the constructor so V8 keeps one
 * shape) and call finishHttpObservation once; neither builds spans itself.
 */
import type { ResponseFlag } from '../errors-to-wire.js';
import { HttpSpanRecord } from './http-span.js';
import { newSpanId, newTraceId, type TraceContext } from './trace-context.js';
import type { ProxySpanKind } from './span-record.js';
import { nowMs } from './span-record.js';
import type { AccessLogEntry, Direction, MeshProtocol, RequestLabels, Telemetry } from './telemetry.js';

export class HttpObservation {
  // Trace identity: this proxy's span, and the context it continues.
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly sampled: boolean;
  readonly startTimeMs: number;
  endTimeMs = 0;

  // Request.
  method = '';
  scheme = 'http';
  /** Host and port as the client addressed them (authority / Host / absolute URI). */
  host = '';
  port = 0;
  path = '';
  query = '';
  userAgent = '';
  requestId = '';
  clientAddress = '';
  clientPort = 0;
  requestBytes = 0;
  /** gRPC: "package.Service" and "Method" from the path; '' otherwise. */
  rpcService = '';
  rpcMethod = '';

  // Who calls whom. For outbound the source is this workload; for inbound the
  // peer metadata headers name it.
  sourceService = '';
  sourceNamespace = '';
  sourceVersion = '';
  destinationService = '';
  destinationNamespace = '';
  destinationVersion = '';
  routeName = '';
  /** The endpoint chosen ("address:port"), '' when none was. */
  upstreamAddress = '';
  upstreamPort = 0;
  attempt = 1;
  // Traffic-management decisions (proxy/pipeline), for the span's tracemesh.* attributes.
  /** The route's destination subset, '' for the whole service. */
  subset = '';
  /** The destination a copy of this request was mirrored to, '' when none. */
  mirroredTo = '';
  /** An injected delay (fault), 0 when none. */
  faultDelayMs = 0;
  /** The RateLimit document that refused the request, '' when none did. */
  rateLimitName = '';
  /** This observation is a mirror's copy of a request (its answer was discarded). */
  mirror = false;
  /** The endpoint was picked in panic mode (Destination.lastPickPanicked). */
  lbPanic = false;
  /**
   * Outlier detection acted on this attempt's outcome: '' when it did not,
   * else the reason ("consecutive-5xx", "consecutive-gateway"), with
   * outlierEjected true when the endpoint was ejected and false when
   * maxEjectionPercent refused the ejection. See noteOutlierDecision.
   */
  outlierReason = '';
  outlierEjected = false;

  // Response.
  statusCode = 0;
  /** gRPC status from trailers (or a trailers-only response), -1 when not gRPC or unknown. */
  grpcStatus = -1;
  responseBytes = 0;
  flags: ResponseFlag[] = [];
  /** Why the exchange failed, for the span status message; '' when it did not. */
  errorMessage = '';

  constructor(
    readonly direction: Direction,
    readonly kind: ProxySpanKind,
    readonly protocol: MeshProtocol,
    incoming: TraceContext | undefined,
  ) {
    this.startTimeMs = nowMs();
    if (incoming === undefined) {
      this.traceId = newTraceId();
      this.parentSpanId = '';
      this.traceState = '';
      this.sampled = true;
    } else {
      this.traceId = incoming.traceId;
      this.parentSpanId = incoming.spanId;
      this.traceState = incoming.traceState;
      this.sampled = incoming.sampled;
    }
    this.spanId = newSpanId();
  }

  /** What outlier detection did with this attempt's outcome (Destination.recordOutcome's answer); undefined: nothing. */
  noteOutlierDecision(decision: { readonly ejected: boolean; readonly reason: string } | undefined): void {
    if (decision === undefined) return;
    this.outlierReason = decision.reason;
    this.outlierEjected = decision.ejected;
  }

  addFlag(flag: ResponseFlag, message: string): void {
    if (!this.flags.includes(flag)) this.flags.push(flag);
    if (this.errorMessage === '') this.errorMessage = message;
  }
}

function flagsText(flags: readonly ResponseFlag[]): string {
  return flags.length === 0 ? '-' : flags.join(',');
}

/**
 * Semantic conventions: a server span is an error for 5xx only, a client span
 * for 4xx and 5xx; gRPC decides by grpc-status (server: UNKNOWN, DEADLINE_EXCEEDED,
 * UNIMPLEMENTED, INTERNAL, UNAVAILABLE, DATA_LOSS; client: any non-OK). Any
 * response flag makes it an error.
 */
function isError(obs: HttpObservation): boolean {
  if (obs.flags.length > 0) return true;
  if (obs.grpcStatus >= 0) {
    if (obs.kind === 'client') return obs.grpcStatus !== 0;
    return obs.grpcStatus === 2 || obs.grpcStatus === 4 || obs.grpcStatus === 12 || obs.grpcStatus === 13 || obs.grpcStatus === 14 || obs.grpcStatus === 15;
  }
  if (obs.statusCode === 0) return true; // no response at all
  return obs.kind === 'client' ? obs.statusCode >= 400 : obs.statusCode >= 500;
}

/**
 * Ends the exchange: one span (when sampled), one metrics update, one
 * access-log line (when enabled). The observation must not change afterwards:
 * the span reads it (http-span.ts).
 */
export function finishHttpObservation(telemetry: Telemetry, obs: HttpObservation): void {
  obs.endTimeMs = nowMs();
  const flags = flagsText(obs.flags);
  const error = isError(obs);
  if (obs.sampled && telemetry.tracing) {
    telemetry.spans.record(new HttpSpanRecord(obs, flags, error));
  }
  const durationMs = obs.endTimeMs - obs.startTimeMs;
  const labels: RequestLabels = {
    direction: obs.direction,
    protocol: obs.protocol,
    sourceService: obs.sourceService,
    sourceNamespace: obs.sourceNamespace,
    sourceVersion: obs.sourceVersion,
    destinationService: obs.destinationService,
    destinationNamespace: obs.destinationNamespace,
    destinationVersion: obs.destinationVersion,
    responseCode: String(obs.statusCode),
    grpcStatus: obs.grpcStatus >= 0 ? String(obs.grpcStatus) : '',
    responseFlags: flags,
  };
  telemetry.metrics.recordRequest(labels, durationMs, obs.requestBytes, obs.responseBytes);
  const log = telemetry.accessLog;
  if (log !== undefined) {
    const entry: AccessLogEntry = {
      start_time: new Date(obs.startTimeMs).toISOString(),
      direction: obs.direction,
      protocol: obs.protocol,
      method: obs.method,
      authority: obs.port === 0 ? obs.host : `${obs.host}:${obs.port}`,
      path: obs.query === '' ? obs.path : `${obs.path}?${obs.query}`,
      response_code: obs.statusCode,
      grpc_status: labels.grpcStatus,
      response_flags: flags,
      bytes_received: obs.requestBytes,
      bytes_sent: obs.responseBytes,
      duration_ms: Math.round(durationMs * 1000) / 1000,
      upstream_host: obs.upstreamAddress === '' ? '' : `${obs.upstreamAddress}:${obs.upstreamPort}`,
      downstream_remote_address: `${obs.clientAddress}:${obs.clientPort}`,
      source_service: obs.sourceService,
      destination_service: obs.destinationService,
      request_id: obs.requestId,
      trace_id: obs.traceId,
      user_agent: obs.userAgent,
    };
    log.write(entry);
  }
}

/** Fills source/destination from this workload and the peer: the one rule for both directions. */
export function setPeers(
  obs: HttpObservation,
  self: { service: string; namespace: string; version: string },
  peer: { service: string; namespace: string; version: string },
): void {
  if (obs.direction === 'inbound') {
    obs.sourceService = peer.service;
    obs.sourceNamespace = peer.namespace;
    obs.sourceVersion = peer.version;
    obs.destinationService = self.service;
    obs.destinationNamespace = self.namespace;
    obs.destinationVersion = self.version;
  } else {
    obs.sourceService = self.service;
    obs.sourceNamespace = self.namespace;
    obs.sourceVersion = self.version;
    obs.destinationService = peer.service;
    obs.destinationNamespace = peer.namespace;
    obs.destinationVersion = peer.version;
  }
}
