/**
 * The span of one finished HTTP or gRPC exchange, as a ProxySpanRecord made
 * straight from its HttpObservation.
 *
 * Why a class and not an object literal with an attributes map: the map is
 * some 25 keys built per request, and a sink that encodes (the lean one)
 * only walks it once to turn it into bytes. This record instead writes its
 * attributes one by one to the encoder (writeAttributes), from the
 * observation's fields, and builds the map only when someone reads
 * `attributes` (the SDK sink at export time, tests). One function decides
 * which attributes a span has, for both ways.
 *
 * The record reads the observation when its attributes are asked for, so
 * the protocol paths must not change an observation after
 * finishHttpObservation (they drop it there).
 */
import * as A from './attributes.js';
import type { HttpObservation } from './http-observation.js';
import type { AttributeValue, ProxySpanKind, ProxySpanRecord, ProxySpanStatus, SpanAttributeWriter } from './span-record.js';

/** Collects attributes into a plain object: `attributes` for readers that want the map. */
class AttributeMap implements SpanAttributeWriter {
  readonly values: Record<string, AttributeValue> = {};

  string(key: string, value: string): void {
    this.values[key] = value;
  }

  int(key: string, value: number): void {
    this.values[key] = value;
  }

  bool(key: string, value: boolean): void {
    this.values[key] = value;
  }
}

function spanName(obs: HttpObservation): string {
  if (obs.rpcService !== '') return `${obs.rpcService}/${obs.rpcMethod}`;
  if (obs.routeName !== '') return `${obs.method} ${obs.routeName}`;
  return obs.method === '' ? 'HTTP' : obs.method;
}

export class HttpSpanRecord implements ProxySpanRecord {
  readonly traceId: string;
  readonly spanId: string;
  readonly parentSpanId: string;
  readonly traceState: string;
  readonly sampled = true;
  readonly name: string;
  readonly kind: ProxySpanKind;
  readonly startTimeMs: number;
  readonly endTimeMs: number;
  readonly status: ProxySpanStatus;
  readonly statusMessage: string;
  private readonly obs: HttpObservation;
  /** Comma-joined response flags, '-' when none. */
  private readonly flags: string;
  private built: Record<string, AttributeValue> | undefined = undefined;

  constructor(obs: HttpObservation, flags: string, error: boolean) {
    this.traceId = obs.traceId;
    this.spanId = obs.spanId;
    this.parentSpanId = obs.parentSpanId;
    this.traceState = obs.traceState;
    this.name = spanName(obs);
    this.kind = obs.kind;
    this.startTimeMs = obs.startTimeMs;
    this.endTimeMs = obs.endTimeMs;
    this.status = error ? 'error' : 'unset';
    this.statusMessage = error ? obs.errorMessage : '';
    this.obs = obs;
    this.flags = flags;
  }

  /** Built on first read, then kept. */
  get attributes(): Record<string, AttributeValue> {
    if (this.built === undefined) {
      const map = new AttributeMap();
      this.writeAttributes(map);
      this.built = map.values;
    }
    return this.built;
  }

  /** OpenTelemetry HTTP/RPC semantic conventions, then the mesh's own attributes. */
  writeAttributes(w: SpanAttributeWriter): void {
    const obs = this.obs;
    w.string(A.HTTP_REQUEST_METHOD, obs.method);
    w.string(A.URL_PATH, obs.path);
    w.string(A.URL_SCHEME, obs.scheme);
    w.string(A.SERVER_ADDRESS, obs.host);
    w.int(A.SERVER_PORT, obs.port);
    w.string(A.CLIENT_ADDRESS, obs.clientAddress);
    w.int(A.CLIENT_PORT, obs.clientPort);
    w.string(A.NETWORK_PROTOCOL_NAME, 'http');
    w.string(A.NETWORK_PROTOCOL_VERSION, obs.protocol === 'http1' ? '1.1' : '2');
    w.int(A.HTTP_REQUEST_BODY_SIZE, obs.requestBytes);
    w.int(A.HTTP_RESPONSE_BODY_SIZE, obs.responseBytes);
    w.string(A.MESH_DIRECTION, obs.direction);
    w.string(A.MESH_PROTOCOL, obs.protocol);
    w.string(A.MESH_SOURCE_SERVICE, obs.sourceService);
    w.string(A.MESH_SOURCE_NAMESPACE, obs.sourceNamespace);
    w.string(A.MESH_SOURCE_VERSION, obs.sourceVersion);
    w.string(A.MESH_DESTINATION_SERVICE, obs.destinationService);
    w.string(A.MESH_DESTINATION_NAMESPACE, obs.destinationNamespace);
    w.string(A.MESH_DESTINATION_VERSION, obs.destinationVersion);
    w.string(A.MESH_RESPONSE_FLAGS, this.flags);
    w.int(A.MESH_ATTEMPT, obs.attempt);
    if (obs.statusCode !== 0) w.int(A.HTTP_RESPONSE_STATUS_CODE, obs.statusCode);
    if (obs.query !== '') w.string(A.URL_QUERY, obs.query);
    if (obs.userAgent !== '') w.string(A.USER_AGENT_ORIGINAL, obs.userAgent);
    if (obs.requestId !== '') w.string(A.MESH_REQUEST_ID, obs.requestId);
    if (obs.routeName !== '') w.string(A.MESH_ROUTE, obs.routeName);
    if (obs.subset !== '') w.string(A.MESH_SUBSET, obs.subset);
    if (obs.mirroredTo !== '') w.string(A.MESH_MIRRORED_TO, obs.mirroredTo);
    if (obs.mirror) w.string(A.MESH_MIRROR, 'true');
    if (obs.faultDelayMs > 0) w.int(A.MESH_FAULT_DELAY_MS, obs.faultDelayMs);
    if (obs.rateLimitName !== '') w.string(A.MESH_RATE_LIMIT, obs.rateLimitName);
    if (obs.lbPanic) w.bool(A.MESH_LB_PANIC, true);
    if (obs.outlierReason !== '') {
      w.bool(obs.outlierEjected ? A.MESH_OUTLIER_EJECTED : A.MESH_OUTLIER_EJECTION_REFUSED, true);
      w.string(A.MESH_OUTLIER_REASON, obs.outlierReason);
    }
    if (obs.upstreamAddress !== '') {
      w.string(A.MESH_UPSTREAM_ADDRESS, `${obs.upstreamAddress}:${obs.upstreamPort}`);
      if (obs.kind === 'client') {
        w.string(A.NETWORK_PEER_ADDRESS, obs.upstreamAddress);
        w.int(A.NETWORK_PEER_PORT, obs.upstreamPort);
      }
    }
    if (obs.kind === 'client' && obs.destinationService !== '') w.string(A.PEER_SERVICE, obs.destinationService);
    if (obs.rpcService !== '') {
      w.string(A.RPC_SYSTEM, 'grpc');
      w.string(A.RPC_SERVICE, obs.rpcService);
      w.string(A.RPC_METHOD, obs.rpcMethod);
      if (obs.grpcStatus >= 0) w.int(A.RPC_GRPC_STATUS_CODE, obs.grpcStatus);
    }
    if (obs.flags.length > 0) w.string(A.ERROR_TYPE, obs.flags[0] as string);
    else if (obs.statusCode >= 500 || (obs.kind === 'client' && obs.statusCode >= 400)) w.string(A.ERROR_TYPE, String(obs.statusCode));
  }
}
