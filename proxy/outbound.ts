/**
 * The outbound side in explicit mode, top to bottom: listener → protocol
 * detection → HTTP forward proxy (absolute-form requests, or Host routing) or
 * CONNECT tunnel (detected again inside: HTTP/1, h2c/gRPC, or TCP) → the
 * service's cluster → an endpoint (normally a peer proxy's inbound listener).
 * Every attempt made from here is a call on the app's behalf: CLIENT spans.
 */
import type { Socket } from 'node:net';
import type { ClusterRegistry } from './clusters/types.js';
import type { HttpDirection } from './http-direction.js';
import type { TrafficSide } from './inbound.js';
import type { ProxyLimits } from './limits.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import { detectProtocol } from './listeners/detect.js';
import { createProtocolPaths } from './protocol-paths.js';
import { forwardTcp, type TcpForwardDeps } from './tcp/forward.js';
import type { Telemetry } from './telemetry/telemetry.js';

export interface OutboundOptions {
  readonly telemetry: Telemetry;
  readonly limits: ProxyLimits;
  /** The current registry; a getter because the control plane swaps it whole. */
  readonly registry: () => ClusterRegistry;
}

export function createOutbound(options: OutboundOptions): TrafficSide {
  const { telemetry, limits } = options;
  const direction: HttpDirection = {
    direction: 'outbound',
    spanKind: 'client',
    route(host, port) {
      const cluster = options.registry().resolve(host, port);
      return cluster === undefined ? undefined : { cluster, routeName: '' };
    },
  };
  const tcp: TcpForwardDeps = { direction: 'outbound', telemetry, limits };
  const paths = createProtocolPaths(direction, telemetry, limits, tunnel);
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

  return {
    handle: (conn) => paths.dispatch(conn, nowhere),
    poolStats: () => paths.poolStats(),
    close: () => paths.close(),
  };
}
