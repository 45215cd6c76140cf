/**
 * The inbound side, top to bottom: listener → protocol detection → the
 * protocol path → the local app. Every request that reaches the app through
 * here is served on the app's behalf: SERVER spans.
 */
import type { Cluster } from './clusters/types.js';
import type { HttpDirection, HttpRouteTarget } from './http-direction.js';
import { createHttp1UpstreamPool, serveHttp1, type Http1Deps } from './http1/serve.js';
import { createHttp2Handler, createHttp2SessionPool } from './http2/serve.js';
import type { ProxyLimits } from './limits.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import { forwardTcp, type TcpForwardDeps } from './tcp/forward.js';
import type { Telemetry } from './telemetry/telemetry.js';

export interface InboundOptions {
  readonly telemetry: Telemetry;
  readonly limits: ProxyLimits;
  /** The local app (127.0.0.1:appPort). */
  readonly app: Cluster;
}

export interface TrafficSide {
  handle(conn: AcceptedConnection): void;
  /** Upstream pool figures for the admin page. */
  poolStats(): unknown;
  close(): Promise<void>;
}

export function createInbound(options: InboundOptions): TrafficSide {
  const target: HttpRouteTarget = { cluster: options.app, routeName: '' };
  const direction: HttpDirection = { direction: 'inbound', spanKind: 'server', route: () => target };
  const http1Pool = createHttp1UpstreamPool(options.limits);
  const http1: Http1Deps = { direction, telemetry: options.telemetry, limits: options.limits, pool: http1Pool };
  const http2Pool = createHttp2SessionPool(options.limits);
  const http2 = createHttp2Handler({ direction, telemetry: options.telemetry, limits: options.limits, pool: http2Pool });
  const tcp: TcpForwardDeps = { direction: 'inbound', telemetry: options.telemetry, limits: options.limits };
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
          // TLS is passed through to the app as it is (mTLS termination is later work).
          forwardTcp(conn, options.app, tcp);
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
