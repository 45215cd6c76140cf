/**
 * The HTTP/1.1 server the JSON demo services (web, catalog, reviews) share:
 * node:http from loadHttp() (so the HTTP instrumentation makes SERVER
 * spans), GET only, `/healthz`, one route of the form `/<prefix>/:id`,
 * bounded limits, and a stop() that closes every connection.
 */
import { trace } from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { errorMessage } from '../../lib/errors.js';
import type { DemoInstrumentation, loadHttp } from '../instrument.js';
import { ATTR_PRODUCT_ID, isProductId } from './catalog.js';
import type { ListenAddress } from './config.js';
import type { RunningApp } from './lifecycle.js';

type Http = ReturnType<typeof loadHttp>;

export interface JsonReply {
  readonly status: number;
  readonly body: object;
}

export interface JsonRoute {
  /** `/reviews`: requests to `/reviews/:id` go to `handle`. */
  readonly prefix: string;
  /** Answers for a valid product id; a throw becomes a 500 naming the error. */
  handle(productId: string): Promise<JsonReply>;
}

export interface JsonServer {
  readonly port: number;
  /** Closes the listener and every connection; safe twice. */
  close(): Promise<void>;
}

const SERVER_LIMITS = { maxHeaderSize: 16 * 1024, headersTimeout: 10_000, requestTimeout: 30_000, keepAliveTimeout: 5_000 } as const;
const MAX_CONNECTIONS = 1_024;

export function sendJson(res: ServerResponse, status: number, body: object): void {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.end(payload);
}

async function answer(route: JsonRoute, req: IncomingMessage, res: ServerResponse): Promise<void> {
  req.resume();
  const path = (req.url ?? '/').split('?', 1)[0] ?? '/';
  if (req.method !== 'GET' && req.method !== 'HEAD') {
    res.setHeader('allow', 'GET, HEAD');
    sendJson(res, 405, { error: `method ${req.method ?? ''} not allowed; use GET` });
    return;
  }
  if (path === '/healthz') {
    sendJson(res, 200, { status: 'ok' });
    return;
  }
  const template = `${route.prefix}/:id`;
  if (!path.startsWith(`${route.prefix}/`) || path.indexOf('/', route.prefix.length + 1) !== -1) {
    sendJson(res, 404, { error: `no route for ${path.slice(0, 200)}; try ${template} or /healthz` });
    return;
  }
  const span = trace.getActiveSpan();
  span?.setAttribute('http.route', template);
  span?.updateName(`${req.method} ${template}`);
  const productId = path.slice(route.prefix.length + 1);
  if (!isProductId(productId)) {
    sendJson(res, 400, { error: `product id '${productId.slice(0, 80)}' is not 1-64 letters, digits, _ or -` });
    return;
  }
  span?.setAttribute(ATTR_PRODUCT_ID, productId);
  const reply = await route.handle(productId);
  sendJson(res, reply.status, reply.body);
}

export async function startJsonServer(http: Http, listen: ListenAddress, route: JsonRoute): Promise<JsonServer> {
  const server = http.createServer(SERVER_LIMITS, (req, res) => {
    answer(route, req, res).catch((err: unknown) => {
      if (!res.headersSent) sendJson(res, 500, { error: errorMessage(err) });
      else res.destroy();
    });
  });
  server.maxConnections = MAX_CONNECTIONS;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(listen.port, listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address();
  let closed: Promise<void> | undefined;
  return {
    port: typeof address === 'object' && address !== null ? address.port : listen.port,
    close(): Promise<void> {
      closed ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closed;
    },
  };
}

/**
 * A JSON demo app: `route` served at `listen`. `closeClients` closes what the
 * app calls (its peer clients) when the server cannot start, or on stop()
 * once the server has closed; stop() then flushes and stops `instrumentation`.
 */
export async function serveJsonApp(
  http: Http,
  listen: ListenAddress,
  route: JsonRoute,
  closeClients: () => void,
  instrumentation: DemoInstrumentation | undefined,
): Promise<RunningApp> {
  let server: JsonServer;
  try {
    server = await startJsonServer(http, listen, route);
  } catch (err) {
    closeClients();
    throw err;
  }
  let stopped: Promise<void> | undefined;
  return {
    port: server.port,
    stop(): Promise<void> {
      stopped ??= (async () => {
        await server.close();
        closeClients();
        await instrumentation?.shutdown();
      })();
      return stopped;
    },
  };
}
