/**
 * The outbound side, top to bottom. Explicit mode: listener → protocol
 * detection → HTTP forward proxy (absolute-form requests, or Host routing) or
 * CONNECT tunnel (detected again inside: HTTP/1, h2c/gRPC, or TCP) → the
 * service's cluster → an endpoint (normally a peer proxy's inbound listener).
 * Transparent capture: listener → original destination → passthrough or
 * refusal for unknown ones, else detection → the same protocol paths.
 * Every attempt made from here is a call on the app's behalf: CLIENT spans.
 */
import type { Socket } from 'node:net';
import { OriginalDestinations, type OutboundPolicy } from './capture/original-destinations.js';
import type { ClusterRegistry } from './clusters/types.js';
import type { HttpDirection } from './http-direction.js';
import type { TrafficSide } from './inbound.js';
import type { ProxyLimits } from './limits.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import { detectProtocol } from './listeners/detect.js';
import type { ConnectionTarget } from './listeners/listener.js';
import type { TrafficConfig } from './pipeline/types.js';
import { createProtocolPaths } from './protocol-paths.js';
import { forwardTcp, type TcpForwardDeps } from './tcp/forward.js';
import type { Telemetry } from './telemetry/telemetry.js';

export interface OutboundOptions {
  readonly telemetry: Telemetry;
  readonly limits: ProxyLimits;
  /** The current registry; a getter because the control plane swaps it whole. */
  readonly registry: () => ClusterRegistry;
  /** Transparent capture only: what happens to destinations no service claims. */
  readonly outboundPolicy: OutboundPolicy;
  /** The current configuration version's traffic management (routes, destinations, limits); undefined: none (round robin). */
  readonly traffic?: () => TrafficConfig;
}

export interface OutboundSide extends TrafficSide {
  /** Transparent capture: connections to this original destination are piped as TCP without protocol detection. */
  opaque(target: ConnectionTarget | undefined): boolean;
}

export function createOutbound(options: OutboundOptions): OutboundSide {
  const { telemetry, limits } = options;
  const destinations = new OriginalDestinations(options.registry, options.outboundPolicy);
  const direction: HttpDirection = {
    direction: 'outbound',
    spanKind: 'client',
    route(host, port) {
      // A name or VIP first; under transparent capture HTTP routing falls back to the original destination's address.
      const cluster = options.registry().resolve(host, port) ?? destinations.service(host, port);
      return cluster === undefined ? undefined : { cluster, routeName: '' };
    },
    traffic: options.traffic,
    rateLimits: undefined,
  };
  const tcp: TcpForwardDeps = { direction: 'outbound', telemetry, limits };
  const paths = createProtocolPaths(direction, telemetry, limits, { onConnect: tunnel });
  // Raw bytes sent to a forward proxy without CONNECT name no destination.
  const nowhere = (conn: AcceptedConnection): void => forwardTcp(conn, undefined, tcp);

  /**
   * A CONNECT was accepted: what flows inside is detected like a fresh
   * connection. A service port declared `tcp` is always piped as TCP; for the
   * others, HTTP inside the tunnel is routed by its own authority (clients
   * send the CONNECT target there) and anything else is piped to the target.
   */
  function tunnel(socket: Socket, target: { host: string; port: number }, rest: Buffer, remoteAddress: string, remotePort: number): void {
    const cluster = options.registry().resolve(target.host, target.port);
    const base = { socket, sni: '', target, remoteAddress, remotePort };
    if (cluster === undefined || cluster.port.protocol === 'tcp') {
      forwardTcp({ ...base, head: rest, protocol: 'tcp' }, cluster, tcp);
      return;
    }
    if (rest.length > 0) socket.unshift(rest);
    detectProtocol(socket, limits.detectTimeoutMs, (detection) => {
      if (detection === undefined) {
        socket.destroy();
        return;
      }
      const conn: AcceptedConnection = { ...base, head: detection.head, protocol: detection.protocol, sni: detection.sni };
      paths.dispatch(conn, (opaque) => forwardTcp(opaque, cluster, tcp));
    });
  }

  /**
   * A connection captured on its way to `conn.target`: a known service's
   * port gets its protocol handling (HTTP routed by its authority, gRPC,
   * TCP); anything else passes through as TCP or is refused (registry-only).
   */
  function captured(conn: AcceptedConnection): void {
    const target = conn.target;
    const cluster = target === undefined ? undefined : destinations.decide(target.host, target.port);
    if (cluster === undefined || cluster.port.protocol === 'tcp') {
      forwardTcp(conn, cluster, tcp);
      return;
    }
    paths.dispatch(conn, (opaqueConn) => forwardTcp(opaqueConn, cluster, tcp));
  }

  return {
    // Only transparent capture knows an original destination at accept; explicit connections have no target.
    handle: (conn) => (conn.target === undefined ? paths.dispatch(conn, nowhere) : captured(conn)),
    opaque(target) {
      if (target === undefined) return true;
      const cluster = destinations.decide(target.host, target.port);
      return cluster === undefined || cluster.port.protocol === 'tcp';
    },
    poolStats: () => paths.poolStats(),
    close: () => paths.close(),
  };
}
