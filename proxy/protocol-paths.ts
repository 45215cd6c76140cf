/**
 * The protocol paths one side of the proxy owns (HTTP/1 with its upstream
 * pool, HTTP/2 with its session pool) and the one dispatch from a detected
 * connection to them. What is neither HTTP/1 nor h2c is the side's to decide
 * (`opaque`): the app, a CONNECT target, or nowhere.
 */
import type { Socket } from 'node:net';
import type { UpstreamConnector } from './capture/transparent-connect.js';
import type { HttpDirection } from './http-direction.js';
import { MirrorSender } from './http1/mirror.js';
import { createHttp1UpstreamPool, serveHttp1, type Http1Deps } from './http1/serve.js';
import { createHttp2Handler, createHttp2SessionPool } from './http2/serve.js';
import type { ProxyLimits } from './limits.js';
import type { AcceptedConnection } from './listeners/accepted.js';
import type { Telemetry } from './telemetry/telemetry.js';

export type ConnectHandler = (socket: Socket, target: { host: string; port: number }, rest: Buffer, remoteAddress: string, remotePort: number) => void;

export interface ProtocolPathOptions {
  /** Outbound: CONNECT tunnels are handed here. */
  readonly onConnect?: ConnectHandler;
  /** How the pools connect upstream (from the client's address under TPROXY); absent: net.connect. */
  readonly connector?: UpstreamConnector;
}

export interface ProtocolPaths {
  dispatch(conn: AcceptedConnection, opaque: (conn: AcceptedConnection) => void): void;
  /** Upstream pool figures for the admin page. */
  poolStats(): unknown;
  close(): Promise<void>;
}

export function createProtocolPaths(direction: HttpDirection, telemetry: Telemetry, limits: ProxyLimits, options: ProtocolPathOptions = {}): ProtocolPaths {
  const { onConnect, connector } = options;
  const http1Pool = createHttp1UpstreamPool(limits, connector);
  // A mirror copy gets the proxy's request timeout (15 s by default) to answer; none configured: that default.
  const mirrors = new MirrorSender(telemetry, limits.requestTimeoutMs > 0 ? limits.requestTimeoutMs : 15_000);
  const http1: Http1Deps = { direction, telemetry, limits, pool: http1Pool, onConnect, mirrors };
  const http2Pool = createHttp2SessionPool(limits, connector);
  const http2 = createHttp2Handler({ direction, telemetry, limits, pool: http2Pool });
  return {
    dispatch(conn, opaque) {
      if (conn.protocol === 'http1') serveHttp1(conn, http1);
      else if (conn.protocol === 'h2c') http2.handle(conn);
      else opaque(conn);
    },
    poolStats: () => ({ http1: http1Pool.stats(), http2: http2Pool.stats() }),
    async close() {
      await http2.close();
      mirrors.close();
      http1Pool.close();
      await http2Pool.close();
    },
  };
}
