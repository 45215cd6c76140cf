/**
 * The admin HTTP server (port 15000, as Envoy's): /stats/prometheus,
 * /ready, /config_dump, /clusters, and / listing them. node:http is fine
 * here: it is not the data path. Read-only, GET (and HEAD) only, no
 * request bodies, bounded header size, header and request time, and
 * connection count.
 */
import { createServer } from 'node:http';
import type { IncomingMessage, Server, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import type { Registry } from 'prom-client';
import { TracemeshError, errorMessage } from '../../src/lib/errors.js';

export interface AdminLimits {
  /** Request head size, bytes. */
  readonly maxHeaderBytes: number;
  /** The request head must arrive within this (slowloris). */
  readonly headersTimeoutMs: number;
  /** The whole request must arrive within this. */
  readonly requestTimeoutMs: number;
  /** An idle keep-alive connection is closed after this. */
  readonly keepAliveTimeoutMs: number;
  readonly maxConnections: number;
}

export const DEFAULT_ADMIN_LIMITS: AdminLimits = {
  maxHeaderBytes: 16 * 1024,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  keepAliveTimeoutMs: 5_000,
  maxConnections: 64,
};

export interface AdminServerOptions {
  host: string;
  /** 0 for an ephemeral port. */
  port: number;
  registry: Registry;
  ready: () => boolean;
  configDump: () => unknown;
  clusters: () => unknown;
  limits?: Partial<AdminLimits>;
  /** Handler errors (a dump that throws). */
  log?: (message: string) => void;
}

export interface AdminServer {
  readonly port: number;
  /** Stops listening and closes open connections. Safe twice. */
  close(): Promise<void>;
}

interface Endpoint {
  readonly path: string;
  readonly description: string;
  readonly handle: (res: ServerResponse, head: boolean) => Promise<void> | void;
}

function send(res: ServerResponse, status: number, contentType: string, body: string, head: boolean, extra?: Record<string, string>): void {
  res.writeHead(status, {
    'content-type': contentType,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
    ...extra,
  });
  res.end(head ? undefined : body);
}

function sendJson(res: ServerResponse, status: number, value: unknown, head: boolean): void {
  send(res, status, 'application/json', JSON.stringify(value, null, 2) + '\n', head);
}

function endpoints(options: AdminServerOptions): Endpoint[] {
  const list: Endpoint[] = [
    {
      path: '/stats/prometheus',
      description: 'metrics in the Prometheus text exposition format',
      handle: async (res, head) => send(res, 200, options.registry.contentType, await options.registry.metrics(), head),
    },
    {
      path: '/ready',
      description: '200 LIVE when the proxy serves traffic, 503 otherwise',
      handle: (res, head) =>
        options.ready() ? send(res, 200, 'text/plain', 'LIVE\n', head) : send(res, 503, 'text/plain', 'NOT READY\n', head),
    },
    {
      path: '/config_dump',
      description: 'the configuration this proxy runs with (JSON)',
      handle: (res, head) => sendJson(res, 200, options.configDump(), head),
    },
    {
      path: '/clusters',
      description: 'clusters, their endpoints and their state (JSON)',
      handle: (res, head) => sendJson(res, 200, options.clusters(), head),
    },
  ];
  const index = ['tracemesh proxy admin', '', ...list.map((e) => `  ${e.path.padEnd(20)} ${e.description}`), ''].join('\n');
  list.push({ path: '/', description: 'this list', handle: (res, head) => send(res, 200, 'text/plain', index, head) });
  return list;
}

/** The path without query string or fragment. */
function pathOf(url: string | undefined): string {
  const u = url ?? '/';
  const q = u.search(/[?#]/);
  return q === -1 ? u : u.slice(0, q);
}

function hasBody(req: IncomingMessage): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function limitsOf(partial: Partial<AdminLimits> | undefined): AdminLimits {
  const l: AdminLimits = { ...DEFAULT_ADMIN_LIMITS, ...partial };
  for (const [name, value] of Object.entries(l)) {
    if (!Number.isInteger(value) || value < 1) {
      throw new TracemeshError('TM_ERR_CONFIG_INVALID', `admin server limit ${name} must be a positive integer, got ${String(value)}`);
    }
  }
  if (l.headersTimeoutMs > l.requestTimeoutMs) {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `admin server headersTimeoutMs (${l.headersTimeoutMs}) must not exceed requestTimeoutMs (${l.requestTimeoutMs})`);
  }
  return l;
}

export async function startAdminServer(options: AdminServerOptions): Promise<AdminServer> {
  const limits = limitsOf(options.limits);
  const log = options.log ?? ((message: string) => process.stderr.write(`tracemesh proxy admin: ${message}\n`));
  const byPath = new Map(endpoints(options).map((e) => [e.path, e]));

  const handle = async (req: IncomingMessage, res: ServerResponse): Promise<void> => {
    const endpoint = byPath.get(pathOf(req.url));
    if (endpoint === undefined) {
      send(res, 404, 'text/plain', `no admin endpoint ${pathOf(req.url)}; GET / lists them\n`, req.method === 'HEAD');
      return;
    }
    if (req.method !== 'GET' && req.method !== 'HEAD') {
      send(res, 405, 'text/plain', `${req.method ?? ''} not allowed on ${endpoint.path}; use GET\n`, false, { allow: 'GET, HEAD' });
      return;
    }
    if (hasBody(req)) {
      // Nothing here reads a body: refuse it and close rather than drain it.
      send(res, 413, 'text/plain', 'admin requests take no body\n', false, { connection: 'close' });
      return;
    }
    try {
      await endpoint.handle(res, req.method === 'HEAD');
    } catch (err) {
      log(`${endpoint.path}: ${errorMessage(err)}`);
      if (!res.headersSent) sendJson(res, 500, { error: `${endpoint.path} failed: ${errorMessage(err)}` }, req.method === 'HEAD');
      else res.destroy();
    }
  };

  const server: Server = createServer(
    {
      maxHeaderSize: limits.maxHeaderBytes,
      headersTimeout: limits.headersTimeoutMs,
      requestTimeout: limits.requestTimeoutMs,
      keepAliveTimeout: limits.keepAliveTimeoutMs,
      // Node checks the header and request timeouts on this tick (30 s by default, too coarse for a 10 s bound).
      connectionsCheckingInterval: Math.min(1000, limits.headersTimeoutMs),
    },
    (req, res) => {
      void handle(req, res);
    },
  );
  server.maxConnections = limits.maxConnections;
  server.on('clientError', (err: NodeJS.ErrnoException, socket: Socket) => {
    // Malformed or oversized heads, header timeouts: answer if we still can, then close.
    if (socket.writable && !socket.writableEnded) {
      const status = err.code === 'HPE_HEADER_OVERFLOW' ? '431 Request Header Fields Too Large' : err.code === 'ERR_HTTP_REQUEST_TIMEOUT' ? '408 Request Timeout' : '400 Bad Request';
      socket.end(`HTTP/1.1 ${status}\r\nconnection: close\r\ncontent-length: 0\r\n\r\n`);
    } else socket.destroy();
  });

  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new TracemeshError('TM_ERR_PROXY_LISTEN', `admin server cannot listen on ${options.host}:${options.port}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.off('error', onError);
      resolve();
    });
  });
  server.on('error', (err) => log(`server error: ${errorMessage(err)}`));

  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  let closing: Promise<void> | undefined;
  return {
    port,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
      return closing;
    },
  };
}
