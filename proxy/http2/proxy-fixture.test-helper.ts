/**
 * A proxy direction for tests: a plain net.Server on 127.0.0.1:0 that detects
 * nothing and hands every connection to the HTTP/2 handler as h2c, with
 * recording telemetry and its own session pool.
 */
import net from 'node:net';
import type { UpstreamConnector } from '../capture/transparent-connect.js';
import type { ServiceSpec } from '../../src/config/types.js';
import { appCluster, createStaticRegistry } from '../clusters/static-registry.js';
import type { HttpDirection } from '../http-direction.js';
import { DEFAULT_LIMITS, type ProxyLimits } from '../limits.js';
import type { AcceptedConnection } from '../listeners/accepted.js';
import { createHttp2Handler, createHttp2SessionPool, type Http2Handler, type Http2SessionPool } from './serve.js';
import { spanRecorder } from './telemetry.test-helper.js';
import type { RecordingTelemetry } from '../../test/support/recording-telemetry.js';
import type { ProxySpanRecord } from '../telemetry/span-record.js';
import type { WorkloadIdentity } from '../telemetry/telemetry.js';

export function outboundDirection(services: ServiceSpec[]): HttpDirection {
  const registry = createStaticRegistry(services, 'test');
  return {
    direction: 'outbound',
    spanKind: 'client',
    route: (host, port) => {
      const cluster = registry.resolve(host, port);
      return cluster && { cluster, routeName: '' };
    },
    traffic: undefined,
    rateLimits: undefined,
  };
}

export function inboundDirection(identity: WorkloadIdentity, appPort: number): HttpDirection {
  const cluster = appCluster(identity.service, identity.namespace, identity.version, appPort);
  return { direction: 'inbound', spanKind: 'server', route: () => ({ cluster, routeName: '' }), traffic: undefined, rateLimits: undefined };
}

/** A Service document with one port and static endpoints on 127.0.0.1. */
export function service(name: string, port: number, endpointPorts: number[], protocol: 'grpc' | 'http2' = 'grpc'): ServiceSpec {
  return {
    name,
    namespace: 'default',
    ports: [{ name: protocol, port, protocol }],
    vips: [],
    endpoints: endpointPorts.map((p) => ({ address: '127.0.0.1', port: p, labels: { version: 'v2' } })),
  };
}

export interface RunningProxy {
  readonly port: number;
  readonly telemetry: RecordingTelemetry;
  /** Every span recorded so far. */
  readonly spans: ProxySpanRecord[];
  /** The `count` spans recorded after the first `from` (waits for them). */
  spansAfter(from: number, count: number): Promise<ProxySpanRecord[]>;
  readonly handler: Http2Handler;
  readonly pool: Http2SessionPool;
  close(): Promise<void>;
}

export function acceptedH2c(socket: net.Socket, head: Buffer = Buffer.alloc(0)): AcceptedConnection {
  return {
    socket,
    head,
    protocol: 'h2c',
    sni: '',
    target: undefined,
    remoteAddress: socket.remoteAddress ?? '',
    remotePort: socket.remotePort ?? 0,
  };
}

export interface ProxyOptions {
  direction: HttpDirection;
  limits?: Partial<ProxyLimits>;
  identity?: WorkloadIdentity;
  /** Replaces the default hand-off (all bytes left on the socket), e.g. to read part of the preface first. */
  accept?: (socket: net.Socket, handler: Http2Handler) => void;
  /** How the session pool connects upstream (default: from the proxy's own address). */
  connector?: UpstreamConnector;
}

export async function startProxy(options: ProxyOptions): Promise<RunningProxy> {
  const limits: ProxyLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const recorder = spanRecorder(options.identity);
  const pool = createHttp2SessionPool(limits, options.connector);
  const handler = createHttp2Handler({ direction: options.direction, telemetry: recorder.telemetry, limits, pool });
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    if (options.accept !== undefined) options.accept(socket, handler);
    else handler.handle(acceptedH2c(socket));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  return {
    port,
    telemetry: recorder.telemetry,
    spans: recorder.telemetry.recordedSpans,
    spansAfter: recorder.spansAfter,
    handler,
    pool,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      await handler.close(1_000);
      await pool.close(1_000);
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}

/** A port nothing listens on (bound, then released). */
export async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
