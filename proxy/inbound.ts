/**
 * The inbound side, top to bottom: listener → protocol detection → the
 * protocol path → the local app. Every request that reaches the app through
 * here is served on the app's behalf: SERVER spans.
 *
 * Which app: in explicit mode the one on 127.0.0.1:`--app-port`; under
 * REDIRECT capture 127.0.0.1 at the port the caller connected to (the app
 * listens where it always did); under TPROXY the captured destination itself
 * (the pod's own address at that port), reached from the client's own
 * address through the connector, so the app sees the real client as its
 * peer. Each app target has its own protocol paths and pools.
 */
import type { UpstreamConnector } from './capture/transparent-connect.js';
import type { Cluster } from './clusters/types.js';
import type { HttpDirection, HttpRouteTarget } from './http-direction.js';
import type { ProxyLimits } from './limits.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import type { RateLimiter } from './pipeline/types.js';
import { createProtocolPaths } from './protocol-paths.js';
import { forwardTcp, type TcpForwardDeps } from './tcp/forward.js';
import type { Telemetry } from './telemetry/telemetry.js';

/** Where the app listens for one connection: an address of this pod (127.0.0.1 unless TPROXY) and a port. */
export interface AppTarget {
  readonly host: string;
  readonly port: number;
}

export const LOCAL_APP_HOST = '127.0.0.1';

/**
 * How many distinct app targets one inbound side serves. A pod has a few
 * addresses and ports; TPROXY hands the listener whatever destination a
 * packet names, so this bound keeps a stray or hostile sender from growing
 * the map (and its pools) without end. Past it, a new target is refused (NR).
 */
export const MAX_APP_TARGETS = 256;

export interface InboundOptions {
  readonly telemetry: Telemetry;
  readonly limits: ProxyLimits;
  /** `--app-port`, 0 when not given (transparent capture only). */
  readonly appPort: number;
  /** The app a connection is for; undefined = none (an uncaptured connection under transparent capture without --app-port). */
  readonly appTargetOf: (conn: AcceptedConnection) => AppTarget | undefined;
  /** The local app at one address and port, as a one-endpoint cluster. */
  readonly appCluster: (host: string, port: number) => Cluster;
  /** The current configuration version's local rate limits, checked before the app; undefined: none. */
  readonly rateLimits?: () => RateLimiter;
  /** How connections to the app are made: from the client's address under TPROXY; absent: from the proxy's own. */
  readonly connector?: UpstreamConnector;
  /** Bound on distinct app targets (tests lower it); default MAX_APP_TARGETS. */
  readonly maxAppTargets?: number;
}

export interface TrafficSide {
  handle(conn: AcceptedConnection): void;
  /** Upstream pool figures for the admin page. */
  poolStats(): unknown;
  close(): Promise<void>;
}

/** The map key of an app target: `host:port`, IPv6 bracketed, as endpoint keys are written. */
function targetKey(target: AppTarget): string {
  return target.host.includes(':') ? `[${target.host}]:${target.port}` : `${target.host}:${target.port}`;
}

export function createInbound(options: InboundOptions): TrafficSide {
  const tcp: TcpForwardDeps = { direction: 'inbound', telemetry: options.telemetry, limits: options.limits, connector: options.connector };
  const maxTargets = options.maxAppTargets ?? MAX_APP_TARGETS;
  const byTarget = new Map<string, TrafficSide>();
  function sideFor(target: AppTarget): TrafficSide | undefined {
    const key = targetKey(target);
    let side = byTarget.get(key);
    if (side === undefined) {
      if (byTarget.size >= maxTargets) return undefined;
      side = appSide(options, options.appCluster(target.host, target.port), tcp);
      byTarget.set(key, side);
    }
    return side;
  }
  if (options.appPort !== 0) sideFor({ host: LOCAL_APP_HOST, port: options.appPort });
  return {
    handle(conn) {
      const target = options.appTargetOf(conn);
      const side = target === undefined ? undefined : sideFor(target);
      if (side === undefined) forwardTcp(conn, undefined, tcp);
      else side.handle(conn);
    },
    poolStats() {
      if (byTarget.size === 1) return [...byTarget.values()][0]?.poolStats();
      return Object.fromEntries([...byTarget].map(([key, side]) => [key, side.poolStats()]));
    },
    async close() {
      await Promise.all([...byTarget.values()].map((side) => side.close()));
    },
  };
}

function appSide(options: InboundOptions, app: Cluster, tcp: TcpForwardDeps): TrafficSide {
  const target: HttpRouteTarget = { cluster: app, routeName: '' };
  const direction: HttpDirection = { direction: 'inbound', spanKind: 'server', route: () => target, traffic: undefined, rateLimits: options.rateLimits };
  const paths = createProtocolPaths(direction, options.telemetry, options.limits, { connector: options.connector });
  // TLS is passed through to the app as it is (mTLS termination is later work), like any opaque TCP.
  const toApp = (conn: AcceptedConnection): void => forwardTcp(conn, app, tcp);
  return {
    handle: (conn) => paths.dispatch(conn, toApp),
    poolStats: () => paths.poolStats(),
    close: () => paths.close(),
  };
}
