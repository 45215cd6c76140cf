/**
 * The inbound side, top to bottom: listener → protocol detection → the
 * protocol path → the local app. Every request that reaches the app through
 * here is served on the app's behalf: SERVER spans.
 *
 * Which app port: in explicit mode the one `--app-port`; under transparent
 * capture the port the caller connected to (the app listens where it always
 * did), each port with its own protocol paths and pools.
 */
import type { Cluster } from './clusters/types.js';
import type { HttpDirection, HttpRouteTarget } from './http-direction.js';
import type { ProxyLimits } from './limits.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import type { RateLimiter } from './pipeline/types.js';
import { createProtocolPaths } from './protocol-paths.js';
import { forwardTcp, type TcpForwardDeps } from './tcp/forward.js';
import type { Telemetry } from './telemetry/telemetry.js';

export interface InboundOptions {
  readonly telemetry: Telemetry;
  readonly limits: ProxyLimits;
  /** `--app-port`, 0 when not given (transparent capture only). */
  readonly appPort: number;
  /** The port of the app a connection is for; 0 = none (an uncaptured connection under transparent capture without --app-port). */
  readonly appPortOf: (conn: AcceptedConnection) => number;
  /** The local app on one port (127.0.0.1:port). */
  readonly appCluster: (port: number) => Cluster;
  /** The current configuration version's local rate limits, checked before the app; undefined: none. */
  readonly rateLimits?: () => RateLimiter;
}

export interface TrafficSide {
  handle(conn: AcceptedConnection): void;
  /** Upstream pool figures for the admin page. */
  poolStats(): unknown;
  close(): Promise<void>;
}

export function createInbound(options: InboundOptions): TrafficSide {
  const tcp: TcpForwardDeps = { direction: 'inbound', telemetry: options.telemetry, limits: options.limits };
  const byPort = new Map<number, TrafficSide>();
  function sideFor(port: number): TrafficSide {
    let side = byPort.get(port);
    if (side === undefined) {
      side = appSide(options, options.appCluster(port), tcp);
      byPort.set(port, side);
    }
    return side;
  }
  if (options.appPort !== 0) sideFor(options.appPort);
  return {
    handle(conn) {
      const port = options.appPortOf(conn);
      if (port === 0) forwardTcp(conn, undefined, tcp);
      else sideFor(port).handle(conn);
    },
    poolStats() {
      if (byPort.size === 1) return [...byPort.values()][0]?.poolStats();
      return Object.fromEntries([...byPort].map(([port, side]) => [String(port), side.poolStats()]));
    },
    async close() {
      await Promise.all([...byPort.values()].map((side) => side.close()));
    },
  };
}

function appSide(options: InboundOptions, app: Cluster, tcp: TcpForwardDeps): TrafficSide {
  const target: HttpRouteTarget = { cluster: app, routeName: '' };
  const direction: HttpDirection = { direction: 'inbound', spanKind: 'server', route: () => target, traffic: undefined, rateLimits: options.rateLimits };
  const paths = createProtocolPaths(direction, options.telemetry, options.limits);
  // TLS is passed through to the app as it is (mTLS termination is later work), like any opaque TCP.
  const toApp = (conn: AcceptedConnection): void => forwardTcp(conn, app, tcp);
  return {
    handle: (conn) => paths.dispatch(conn, toApp),
    poolStats: () => paths.poolStats(),
    close: () => paths.close(),
  };
}
