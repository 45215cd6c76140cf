/**
 * Opaque TCP (and TLS passed through): connect to an endpoint, replay the
 * bytes detection already read, pipe both ways with backpressure and
 * half-close, and report one span per connection with the bytes each way.
 *
 * Given a Destination (the service's whole-service destination of the
 * current TrafficConfig), a connection goes through its traffic policy: the
 * balancer picks among the usable endpoints (consistent hashing on the
 * source address works; header and cookie keys do not exist in TCP and fall
 * back to a random point), maxConnections refuses with UO, the policy's
 * connectTimeout replaces the proxy's, and the connect attempt's outcome
 * feeds outlier detection (as Envoy's TCP proxy: a failed or timed-out
 * connect is a connect failure, an established one a success; what happens
 * after is not an outlier signal). A bare Cluster (no traffic config, the
 * inbound app) is used as before: round robin, no limits.
 */
import type net from 'node:net';
import type { UpstreamConnector } from '../capture/transparent-connect.js';
import { upstreamConnector } from '../capture/transparent-connect.js';
import type { Cluster, ClusterEndpoint } from '../clusters/types.js';
import type { AttemptOutcome, Destination, OutlierDecision, RequestFacts } from '../pipeline/types.js';
import { upstreamSocketFlag, type ResponseFlag } from '../errors-to-wire.js';
import type { AcceptedConnection } from '../listeners/accepted.js';
import type { ProxyLimits } from '../limits.js';
import * as A from '../telemetry/attributes.js';
import { nowMs, type AttributeValue, type ProxySpanRecord } from '../telemetry/span-record.js';
import type { Direction, TcpLabels, Telemetry } from '../telemetry/telemetry.js';
import { newSpanId, newTraceId } from '../telemetry/trace-context.js';

export interface TcpForwardDeps {
  readonly direction: Direction;
  readonly telemetry: Telemetry;
  readonly limits: ProxyLimits;
  /**
   * How the upstream connection is made, given the downstream peer's address: under TPROXY the
   * inbound side's connector connects from it (the app sees the real client); absent: from the
   * proxy's own address, as net.connect does.
   */
  readonly connector?: UpstreamConnector | undefined;
}

const PROXY_OWN_ADDRESS = upstreamConnector('redirect');
const UPSTREAM_SOCKET = { allowHalfOpen: true, noDelay: true } as const;

/** One proxied TCP connection's bookkeeping, finished exactly once. */
class TcpSession {
  readonly startTimeMs = nowMs();
  readonly labels: TcpLabels;
  endpoint: ClusterEndpoint | undefined = undefined;
  upstream: net.Socket | undefined = undefined;
  connected = false;
  flag: ResponseFlag | undefined = undefined;
  errorMessage = '';
  finished = false;
  /** Set when a connection slot of the destination's limits is held (released once at finish). */
  holdsConnection = false;
  /** The endpoint was picked in panic mode (Destination.lastPickPanicked). */
  lbPanic = false;
  /** What outlier detection did with the connect attempt's outcome (an ejection, or one refused); undefined: nothing. */
  outlier: OutlierDecision | undefined = undefined;

  constructor(
    readonly conn: AcceptedConnection,
    readonly cluster: Cluster | undefined,
    readonly destination: Destination | undefined,
    readonly deps: TcpForwardDeps,
  ) {
    const identity = deps.telemetry.identity;
    this.labels = {
      direction: deps.direction,
      protocol: conn.protocol === 'tls' ? 'tls' : 'tcp',
      sourceService: deps.direction === 'outbound' ? identity.service : '',
      destinationService: cluster?.service ?? '',
      destinationVersion: '',
    };
  }

  /** The connect attempt's outcome to outlier detection; what it did goes on the span. */
  recordOutcome(endpoint: ClusterEndpoint, outcome: AttemptOutcome): void {
    const decision = this.destination?.recordOutcome(endpoint, outcome);
    if (decision !== undefined) this.outlier = decision;
  }

  fail(flag: ResponseFlag, message: string): void {
    if (this.flag === undefined) {
      this.flag = flag;
      this.errorMessage = message;
    }
  }

  finish(): void {
    if (this.finished) return;
    this.finished = true;
    const endTimeMs = nowMs();
    const downstream = this.conn.socket;
    const received = downstream.bytesRead;
    const sent = downstream.bytesWritten;
    const telemetry = this.deps.telemetry;
    if (this.endpoint !== undefined && this.cluster !== undefined) {
      this.cluster.onRequestEnd(this.endpoint, this.flag === undefined ? undefined : this.errorMessage);
    }
    if (this.holdsConnection) {
      this.holdsConnection = false;
      this.destination?.limits.connectionClosed();
    }
    telemetry.metrics.tcpClosed(this.labels, received, sent, endTimeMs - this.startTimeMs);
    if (telemetry.tracing) telemetry.spans.record(this.span(endTimeMs, received, sent));
    const log = telemetry.accessLog;
    if (log !== undefined) {
      log.write({
        start_time: new Date(this.startTimeMs).toISOString(),
        direction: this.deps.direction,
        protocol: this.labels.protocol,
        method: '',
        authority: this.conn.target === undefined ? this.conn.sni : `${this.conn.target.host}:${this.conn.target.port}`,
        path: '',
        response_code: 0,
        grpc_status: '',
        response_flags: this.flag ?? '-',
        bytes_received: received,
        bytes_sent: sent,
        duration_ms: Math.round((endTimeMs - this.startTimeMs) * 1000) / 1000,
        upstream_host: this.endpoint?.key ?? '',
        downstream_remote_address: `${this.conn.remoteAddress}:${this.conn.remotePort}`,
        source_service: this.labels.sourceService,
        destination_service: this.labels.destinationService,
        request_id: '',
        trace_id: '',
        user_agent: '',
      });
    }
  }

  private span(endTimeMs: number, received: number, sent: number): ProxySpanRecord {
    const identity = this.deps.telemetry.identity;
    const inbound = this.deps.direction === 'inbound';
    const destination = this.labels.destinationService;
    const attributes: Record<string, AttributeValue> = {
      [A.NETWORK_TRANSPORT]: 'tcp',
      [A.CLIENT_ADDRESS]: this.conn.remoteAddress,
      [A.CLIENT_PORT]: this.conn.remotePort,
      [A.MESH_DIRECTION]: this.deps.direction,
      [A.MESH_PROTOCOL]: this.labels.protocol,
      [A.MESH_SOURCE_SERVICE]: this.labels.sourceService,
      [A.MESH_SOURCE_NAMESPACE]: inbound ? '' : identity.namespace,
      [A.MESH_SOURCE_VERSION]: inbound ? '' : identity.version,
      [A.MESH_DESTINATION_SERVICE]: destination,
      [A.MESH_DESTINATION_NAMESPACE]: this.cluster?.namespace ?? '',
      [A.MESH_DESTINATION_VERSION]: this.labels.destinationVersion,
      [A.MESH_RESPONSE_FLAGS]: this.flag ?? '-',
      [A.MESH_BYTES_RECEIVED]: received,
      [A.MESH_BYTES_SENT]: sent,
    };
    if (this.conn.target !== undefined) {
      attributes[A.SERVER_ADDRESS] = this.conn.target.host;
      attributes[A.SERVER_PORT] = this.conn.target.port;
    }
    if (this.conn.sni !== '') attributes[A.TLS_SERVER_NAME] = this.conn.sni;
    if (this.endpoint !== undefined) {
      attributes[A.MESH_UPSTREAM_ADDRESS] = this.endpoint.key;
      attributes[A.NETWORK_PEER_ADDRESS] = this.endpoint.address;
      attributes[A.NETWORK_PEER_PORT] = this.endpoint.port;
    }
    if (!inbound && destination !== '') attributes[A.PEER_SERVICE] = destination;
    if (this.lbPanic) attributes[A.MESH_LB_PANIC] = true;
    if (this.outlier !== undefined) {
      attributes[this.outlier.ejected ? A.MESH_OUTLIER_EJECTED : A.MESH_OUTLIER_EJECTION_REFUSED] = true;
      attributes[A.MESH_OUTLIER_REASON] = this.outlier.reason;
    }
    if (this.flag !== undefined) attributes[A.ERROR_TYPE] = this.flag;
    return {
      traceId: newTraceId(),
      spanId: newSpanId(),
      parentSpanId: '',
      traceState: '',
      sampled: true,
      name: `${this.labels.protocol} ${destination === '' ? (this.endpoint?.key ?? 'unknown') : destination}`,
      kind: inbound ? 'server' : 'client',
      startTimeMs: this.startTimeMs,
      endTimeMs,
      status: this.flag === undefined ? 'unset' : 'error',
      statusMessage: this.errorMessage,
      attributes,
    };
  }
}

function isDestination(target: Cluster | Destination): target is Destination {
  return (target as Partial<Destination>).limits !== undefined;
}

/** What a TCP connection offers the balancer: its source address (and the target it was sent to). */
class TcpFacts implements RequestFacts {
  readonly method = '';
  readonly path = '';
  readonly query = '';
  readonly sourceService: string;
  readonly sourceNamespace: string;
  readonly host: string;
  readonly port: number;
  readonly sourceAddress: string;

  constructor(conn: AcceptedConnection, deps: TcpForwardDeps) {
    this.host = conn.target?.host.toLowerCase() ?? conn.sni;
    this.port = conn.target?.port ?? 0;
    this.sourceAddress = conn.remoteAddress;
    const identity = deps.telemetry.identity;
    this.sourceService = deps.direction === 'outbound' ? identity.service : '';
    this.sourceNamespace = deps.direction === 'outbound' ? identity.namespace : '';
  }

  header(): string | undefined {
    return undefined;
  }
}

/**
 * Forwards a detected connection to one endpoint of `target` (a Destination
 * with its traffic policy, or a bare Cluster). `target` undefined means the
 * destination is unknown: the connection is refused with an NR span
 * (explicit mode has nowhere to send bytes that came without CONNECT).
 */
export function forwardTcp(conn: AcceptedConnection, target: Cluster | Destination | undefined, deps: TcpForwardDeps): void {
  const destination = target !== undefined && isDestination(target) ? target : undefined;
  const cluster = destination !== undefined ? destination.cluster : (target as Cluster | undefined);
  const session = new TcpSession(conn, cluster, destination, deps);
  const downstream = conn.socket;
  deps.telemetry.metrics.tcpOpened(session.labels);
  if (cluster === undefined) {
    session.fail('NR', 'no route for this connection');
    downstream.destroy();
    session.finish();
    return;
  }
  const endpoint = destination !== undefined ? destination.pick(new TcpFacts(conn, deps), undefined) : cluster.pick();
  if (endpoint === undefined) {
    session.fail('UH', `no ${destination === undefined ? '' : 'usable '}endpoint for ${destination?.name ?? cluster.name}`);
    downstream.destroy();
    session.finish();
    return;
  }
  if (destination !== undefined) {
    if (!destination.limits.tryOpenConnection()) {
      session.fail('UO', `${destination.name}: maxConnections reached`);
      downstream.destroy();
      session.finish();
      return;
    }
    session.holdsConnection = true;
  }
  session.endpoint = endpoint;
  session.lbPanic = destination !== undefined && destination.lastPickPanicked === true;
  session.labels.destinationVersion = endpoint.version;
  cluster.onRequestStart(endpoint);
  const connectTimeoutMs = destination?.limits.connectTimeoutMs ?? deps.limits.connectTimeoutMs;

  let upstream: net.Socket;
  try {
    upstream = (deps.connector ?? PROXY_OWN_ADDRESS).connect({ host: endpoint.address, port: endpoint.port }, conn.remoteAddress, UPSTREAM_SOCKET);
  } catch (err) {
    // Arguments the connector cannot use (it checks them before any socket exists): refused like a failed connect.
    session.fail('UF', `connect to ${endpoint.key}: ${(err as Error).message}`);
    session.recordOutcome(endpoint, 'connect-failure');
    downstream.destroy();
    session.finish();
    return;
  }
  session.upstream = upstream;
  let closed = 0;
  const onClose = (): void => {
    if (++closed === 2) session.finish();
  };
  upstream.once('close', onClose);
  downstream.once('close', onClose);
  upstream.once('close', () => clearTimeout(connectTimer));

  const connectTimer = setTimeout(() => {
    session.fail('UF', `connect to ${endpoint.key} timed out after ${connectTimeoutMs} ms`);
    session.recordOutcome(endpoint, 'connect-failure');
    upstream.destroy();
    downstream.destroy();
  }, connectTimeoutMs);

  upstream.on('error', (err: NodeJS.ErrnoException) => {
    if (!session.connected && session.flag === undefined) {
      clearTimeout(connectTimer);
      session.recordOutcome(endpoint, 'connect-failure');
    }
    session.fail(upstreamSocketFlag(err, session.connected), `${err.code ?? 'error'} ${endpoint.key}: ${err.message}`);
    downstream.destroy();
  });
  downstream.on('error', (err: NodeJS.ErrnoException) => {
    session.fail('DC', `downstream ${err.code ?? 'error'}: ${err.message}`);
    upstream.destroy();
  });
  upstream.once('connect', () => {
    clearTimeout(connectTimer);
    session.connected = true;
    session.recordOutcome(endpoint, 'success');
    if (conn.head.length > 0) upstream.write(conn.head);
    // pipe() gives backpressure both ways and forwards a half-close as end().
    downstream.pipe(upstream);
    upstream.pipe(downstream);
    downstream.resume();
    const idle = deps.limits.idleTimeoutMs;
    if (idle > 0) {
      const onIdle = (): void => {
        session.fail('SI', `no bytes either way for ${idle} ms`);
        upstream.destroy();
        downstream.destroy();
      };
      upstream.setTimeout(idle, onIdle);
      downstream.setTimeout(idle, onIdle);
    }
  });
  // Once both directions have ended cleanly the sockets close by themselves;
  // if one side closes fully, the other must not linger.
  upstream.once('close', () => {
    if (!downstream.destroyed && !downstream.writableEnded) downstream.end();
  });
  downstream.once('close', () => {
    if (!upstream.destroyed) upstream.destroy();
  });
}
