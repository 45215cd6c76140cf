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
import { createHttp1UpstreamPool, serveHttp1, type Http1Deps } from './http1/serve.js';
import { createHttp2Handler, createHttp2SessionPool } from './http2/serve.js';
import type { TrafficSide } from './inbound.js';
import type { ProxyLimits } from './limits.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import { detectProtocol } from './listeners/detect.js';
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
  const http1Pool = createHttp1UpstreamPool(limits);
  const http2Pool = createHttp2SessionPool(limits);
  const http2 = createHttp2Handler({ direction, telemetry, limits, pool: http2Pool });
  const http1: Http1Deps = { direction, telemetry, limits, pool: http1Pool, onConnect: tunnel };

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
      if (detection.protocol === 'http1') serveHttp1(conn, http1);
      else if (detection.protocol === 'h2c') http2.handle(conn);
      else forwardTcp(conn, cluster, tcp);
    });
  }

  return {
    handle(conn) {
      switch (conn.protocol) {
        case 'http1':
          serveHttp1(conn, http1);
          return;
        case 'h2c':
          http2.handle(conn);
          return;
        default:
          // Raw bytes sent to a forward proxy without CONNECT name no destination.
          forwardTcp(conn, undefined, tcp);
      }
    },
    poolStats: () => ({ http1: http1Pool.stats(), http2: http2Pool.stats() }),
    async close() {
      await http2.close();
      http1Pool.close();
      await http2Pool.close();
    },
  };
}
