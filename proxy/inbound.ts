/**
 * The inbound side, top to bottom: listener → protocol detection → the
 * protocol path → the local app. Every request that reaches the app through
 * here is served on the app's behalf: SERVER spans.
 */
import type { Cluster } from './clusters/types.js';
import type { HttpDirection, HttpRouteTarget } from './http-direction.js';
import type { ProxyLimits } from './limits.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import { createProtocolPaths } from './protocol-paths.js';
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
  const paths = createProtocolPaths(direction, options.telemetry, options.limits);
  const tcp: TcpForwardDeps = { direction: 'inbound', telemetry: options.telemetry, limits: options.limits };
  // TLS is passed through to the app as it is (mTLS termination is later work), like any opaque TCP.
  const toApp = (conn: AcceptedConnection): void => forwardTcp(conn, options.app, tcp);
  return {
    handle: (conn) => paths.dispatch(conn, toApp),
    poolStats: () => paths.poolStats(),
    close: () => paths.close(),
  };
}
