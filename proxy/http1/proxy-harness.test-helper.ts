/**
 * Test plumbing for the HTTP/1 path: an in-process proxy listener that hands
 * connections to serveHttp1 the way the listener tier does (first bytes read
 * by "detection", socket paused), inbound/outbound directions over real
 * clusters, a node:http upstream, a raw socket client, and a small response
 * reader that does not share code with the proxy's own parser.
 */
import { createServer as createHttpServer, type IncomingMessage, type Server as HttpServer, type ServerResponse } from 'node:http';
import { connect, createServer, type Server, type Socket } from 'node:net';
import type { UpstreamConnector } from '../capture/transparent-connect.js';
import { appCluster, createStaticRegistry } from '../clusters/static-registry.js';
import type { HttpDirection, HttpRouteTarget } from '../http-direction.js';
import { DEFAULT_LIMITS, type ProxyLimits } from '../limits.js';
import type { WorkloadIdentity } from '../telemetry/telemetry.js';
import type { ServiceSpec } from '../../src/config/types.js';
import { MirrorSender } from './mirror.js';
import { createHttp1UpstreamPool, serveHttp1, type Http1Deps, type Http1UpstreamPool } from './serve.js';
import { createTestTelemetry, TEST_IDENTITY, type TestTelemetry } from './test-telemetry.test-helper.js';

/** Closes everything a test started, last first. */
export class Cleanup {
  private readonly steps: Array<() => Promise<void> | void> = [];
  add(step: () => Promise<void> | void): void {
    this.steps.push(step);
  }
  async run(): Promise<void> {
    while (this.steps.length > 0) await (this.steps.pop() as () => Promise<void> | void)();
  }
}

export function inboundDirection(appPort: number, identity: WorkloadIdentity = TEST_IDENTITY): HttpDirection {
  const target: HttpRouteTarget = { cluster: appCluster(identity.service, identity.namespace, identity.version, appPort), routeName: '' };
  return { direction: 'inbound', spanKind: 'server', route: () => target, traffic: undefined, rateLimits: undefined };
}

export function outboundDirection(services: ServiceSpec[]): HttpDirection {
  const registry = createStaticRegistry(services, 'test');
  return {
    direction: 'outbound',
    spanKind: 'client',
    route(host, port) {
      const cluster = registry.resolve(host, port);
      return cluster === undefined ? undefined : { cluster, routeName: '' };
    },
    traffic: undefined,
    rateLimits: undefined,
  };
}

/** A Service document with one http port and the given endpoints. */
export function service(name: string, port: number, endpoints: Array<{ port: number; version?: string }>): ServiceSpec {
  return {
    name,
    namespace: 'default',
    ports: [{ name: 'http', port, protocol: 'http' }],
    vips: [],
    endpoints: endpoints.map((e) => ({ address: '127.0.0.1', port: e.port, labels: e.version === undefined ? ({} as Record<string, string>) : { version: e.version } })),
  };
}

export interface TestProxy {
  port: number;
  pool: Http1UpstreamPool;
  tel: TestTelemetry;
  limits: ProxyLimits;
  close(): Promise<void>;
}

export interface ProxyOptions {
  direction: HttpDirection;
  limits?: Partial<ProxyLimits>;
  onConnect?: Http1Deps['onConnect'];
  identity?: WorkloadIdentity;
  /** Hand the socket over before any byte arrives (default: after the first read, as detection does). */
  immediate?: boolean;
  /** The AcceptedConnection's target (CONNECT target / original destination). */
  target?: { host: string; port: number };
  /** Telemetry.tracing (default true). */
  tracing?: boolean;
  /** How the pool opens upstream connections (default: net.connect from the proxy's own address). */
  connector?: UpstreamConnector;
  /** Http1Deps.random (retry backoff jitter). */
  random?: () => number;
}

export async function startProxy(cleanup: Cleanup, options: ProxyOptions): Promise<TestProxy> {
  const limits: ProxyLimits = { ...DEFAULT_LIMITS, ...options.limits };
  const tel = createTestTelemetry(options.identity, options.tracing ?? true);
  const pool = createHttp1UpstreamPool(limits, options.connector);
  const mirrors = new MirrorSender(tel.telemetry, limits.requestTimeoutMs > 0 ? limits.requestTimeoutMs : 15_000);
  const deps: Http1Deps = { direction: options.direction, telemetry: tel.telemetry, limits, pool, mirrors };
  if (options.onConnect !== undefined) deps.onConnect = options.onConnect;
  if (options.random !== undefined) deps.random = options.random;
  const sockets = new Set<Socket>();
  const server: Server = createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    const handOver = (head: Buffer): void => {
      socket.pause();
      serveHttp1({ socket, head, protocol: 'http1', sni: '', target: options.target, remoteAddress: socket.remoteAddress ?? '', remotePort: socket.remotePort ?? 0 }, deps);
    };
    if (options.immediate === true) {
      handOver(Buffer.alloc(0));
      return;
    }
    socket.once('data', (chunk: Buffer) => {
      handOver(chunk);
    });
    socket.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const proxy: TestProxy = {
    port,
    pool,
    tel,
    limits,
    async close() {
      for (const s of sockets) s.destroy();
      mirrors.close();
      pool.close();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  cleanup.add(() => proxy.close());
  return proxy;
}

export interface TestUpstream {
  server: HttpServer;
  port: number;
  /** TCP connections accepted so far. */
  connections(): number;
  close(): Promise<void>;
}

export async function startUpstream(cleanup: Cleanup, handler: (req: IncomingMessage, res: ServerResponse) => void): Promise<TestUpstream> {
  const server = createHttpServer(handler);
  let connections = 0;
  server.on('connection', () => connections++);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  const upstream: TestUpstream = {
    server,
    port,
    connections: () => connections,
    async close() {
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
  cleanup.add(() => upstream.close());
  return upstream;
}

/** A raw TCP server for upstreams that misbehave on purpose. */
export async function startRawUpstream(cleanup: Cleanup, onSocket: (socket: Socket) => void): Promise<{ port: number; connections(): number }> {
  const sockets = new Set<Socket>();
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(async () => {
    for (const s of sockets) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as { port: number }).port, connections: () => connections };
}

/** A port with nothing listening on it (bound, then closed). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as { port: number }).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}

export interface RawResult {
  data: Buffer;
  text: string;
  /** The proxy closed the connection (FIN or reset). */
  closed: boolean;
}

/**
 * Sends `parts` (each written as its own write) on a fresh connection and
 * collects the answer until `done(text)` holds or the connection closes.
 */
export function rawExchange(
  port: number,
  parts: Array<string | Buffer>,
  done: (text: string) => boolean = () => false,
  options: { timeoutMs?: number; endAfterWrite?: boolean } = {},
): Promise<RawResult> {
  const timeoutMs = options.timeoutMs ?? 10_000;
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    const chunks: Buffer[] = [];
    let settled = false;
    const finish = (closed: boolean): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      const data = Buffer.concat(chunks);
      socket.destroy();
      resolve({ data, text: data.toString('latin1'), closed });
    };
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new Error(`raw exchange timed out; received so far: ${JSON.stringify(Buffer.concat(chunks).toString('latin1').slice(0, 500))}`));
    }, timeoutMs);
    socket.on('connect', () => {
      for (const part of parts) socket.write(part);
      if (options.endAfterWrite === true) socket.end();
    });
    socket.on('data', (chunk: Buffer) => {
      chunks.push(chunk);
      if (done(Buffer.concat(chunks).toString('latin1'))) finish(false);
    });
    socket.on('error', () => finish(true));
    socket.on('close', () => finish(true));
  });
}

export interface RawResponse {
  status: number;
  headers: Map<string, string[]>;
  body: string;
}

/**
 * Splits raw response bytes into responses (Content-Length, chunked, or to
 * the end). Returns the complete ones; `rest` is what is left over.
 */
export function readResponses(text: string, headRequests = 0): { responses: RawResponse[]; rest: string } {
  const responses: RawResponse[] = [];
  let pos = 0;
  let heads = headRequests;
  while (pos < text.length) {
    const headEnd = text.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) break;
    const lines = text.slice(pos, headEnd).split('\r\n');
    const status = Number((lines[0] ?? '').split(' ')[1]);
    const headers = new Map<string, string[]>();
    for (const line of lines.slice(1)) {
      const colon = line.indexOf(':');
      const name = line.slice(0, colon).toLowerCase();
      headers.set(name, [...(headers.get(name) ?? []), line.slice(colon + 1).trim()]);
    }
    let bodyStart = headEnd + 4;
    let body = '';
    if (status < 200 || status === 204 || status === 304 || heads > 0) {
      if (status >= 200 && heads > 0) heads--;
    } else if ((headers.get('transfer-encoding') ?? []).join(',').toLowerCase().includes('chunked')) {
      let p = bodyStart;
      let complete = false;
      for (;;) {
        const lineEnd = text.indexOf('\r\n', p);
        if (lineEnd < 0) break;
        const size = parseInt(text.slice(p, lineEnd), 16);
        if (size === 0) {
          const end = text.indexOf('\r\n\r\n', lineEnd);
          if (end < 0) break;
          p = end + 4;
          complete = true;
          break;
        }
        if (lineEnd + 2 + size + 2 > text.length) break;
        body += text.slice(lineEnd + 2, lineEnd + 2 + size);
        p = lineEnd + 2 + size + 2;
      }
      if (!complete) break;
      bodyStart = p;
    } else if (headers.has('content-length')) {
      const length = Number((headers.get('content-length') ?? ['0'])[0]);
      if (bodyStart + length > text.length) break;
      body = text.slice(bodyStart, bodyStart + length);
      bodyStart += length;
    } else {
      body = text.slice(bodyStart);
      bodyStart = text.length;
    }
    responses.push({ status, headers, body });
    pos = bodyStart;
  }
  return { responses, rest: text.slice(pos) };
}

/** `done` predicate for rawExchange: n complete final responses. */
export function responsesComplete(n: number): (text: string) => boolean {
  return (text) => readResponses(text).responses.filter((r) => r.status >= 200).length >= n;
}

export function header(response: RawResponse | undefined, name: string): string | undefined {
  return response?.headers.get(name)?.[0];
}
