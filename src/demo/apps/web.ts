/**
 * `web`: the demo's HTTP/1.1 front (node:http). GET /product/:id asks
 * `ratings` over gRPC and `inventory` over plain TCP, in parallel, and
 * answers JSON; GET /healthz answers {"status":"ok"}. With `--catalog`, the
 * product comes from `catalog` over HTTP instead (which asks reviews, which
 * asks ratings): the embedded demo's five-service chain. Server spans come from
 * the HTTP instrumentation, the gRPC client span from the gRPC one, the
 * inventory client span from inventory-client.ts.
 *
 * Run: node dist/src/demo/apps/web.js --port 9080 --ratings 127.0.0.1:50051 \
 *        --inventory 127.0.0.1:7070 --collector http://127.0.0.1:4317 [--proxy http://127.0.0.1:15001]
 */
import { trace } from '@opentelemetry/api';
import type { IncomingMessage, ServerResponse } from 'node:http';
import type { Socket } from 'node:net';
import { TracemeshError, errorMessage } from '../../lib/errors.js';
import { loadGrpc, loadHttp } from '../instrument.js';
import type { DemoInstrumentation } from '../instrument.js';
import { ATTR_PRODUCT_ID, isProductId } from './catalog.js';
import type { PeerAddress, ProxyAddress } from './config.js';
import { HttpJsonClient } from './http-json-client.js';
import { InventoryClient } from './inventory-client.js';
import { isMainModule, runDemoApp } from './lifecycle.js';
import type { RunningApp } from './lifecycle.js';
import { RatingsClient } from './ratings-client.js';

export interface WebOptions {
  /** Listen port on 127.0.0.1; 0 = any free port. */
  port: number;
  /** Where ratings (gRPC) and inventory (TCP) listen, as this app names them. */
  ratings: PeerAddress;
  inventory: PeerAddress;
  /** Ask catalog (HTTP) for the product instead of ratings. */
  catalog?: PeerAddress | undefined;
  /** Explicit-mode proxy for every call; omit to connect directly. */
  proxy?: ProxyAddress | undefined;
  /** Flushed and stopped by stop(); omit when running in-process without tracing. */
  instrumentation?: DemoInstrumentation;
}

/** The answer of GET /product/:id. */
export interface ProductView {
  productId: string;
  rating: { stars: number; count: number };
  stock: number;
}

/** The answer of GET /product/:id with --catalog: the product view plus what catalog and reviews added. */
export interface CatalogProductView extends ProductView {
  title: string;
  reviewsVersion: string;
}

/** Where the product's rating (and, through catalog, its title and reviews) comes from. */
interface ProductSource {
  product(productId: string): Promise<{ rating: { stars: number; count: number }; extra: object }>;
  close(): void;
}

class RatingsSource implements ProductSource {
  constructor(private readonly ratings: RatingsClient) {}

  async product(productId: string): Promise<{ rating: { stars: number; count: number }; extra: object }> {
    const rating = await this.ratings.getRating(productId);
    return { rating: { stars: rating.stars, count: rating.count }, extra: {} };
  }

  close(): void {
    this.ratings.close();
  }
}

function field(value: unknown, key: string): unknown {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>)[key] : undefined;
}

class CatalogSource implements ProductSource {
  constructor(private readonly catalog: HttpJsonClient) {}

  async product(productId: string): Promise<{ rating: { stars: number; count: number }; extra: object }> {
    const answer = await this.catalog.get(`/products/${productId}`);
    const reviews = field(answer.body, 'reviews');
    const rating = field(reviews, 'rating');
    const stars = field(rating, 'stars');
    const count = field(rating, 'count');
    if (answer.status !== 200 || typeof stars !== 'number' || typeof count !== 'number') {
      const detail = field(answer.body, 'error');
      throw new TracemeshError('TM_ERR_UPSTREAM', `catalog answered ${answer.status}${typeof detail === 'string' ? `: ${detail}` : ''}`);
    }
    return { rating: { stars, count }, extra: { title: field(answer.body, 'title'), reviewsVersion: field(reviews, 'version') } };
  }

  close(): void {
    this.catalog.close();
  }
}

/** Each peer call (and each phase of the inventory call) gives up after this. */
const PEER_TIMEOUT_MS = 2_000;
/** catalog waits on reviews, which waits on ratings: a longer budget than one hop. */
const CATALOG_TIMEOUT_MS = 6_000;
const SERVER_LIMITS = {
  maxHeaderSize: 16 * 1024,
  /** Slowloris: the whole request head within this. */
  headersTimeout: 10_000,
  requestTimeout: 30_000,
  keepAliveTimeout: 5_000,
} as const;
const MAX_CONNECTIONS = 1_024;
const PRODUCT_ROUTE = '/product/:id';
const PRODUCT_PATH = /^\/product\/([^/]*)$/;

function sendJson(res: ServerResponse, status: number, body: object): void {
  const payload = JSON.stringify(body);
  res.statusCode = status;
  res.setHeader('content-type', 'application/json');
  res.setHeader('content-length', Buffer.byteLength(payload));
  res.end(payload);
}

/** Handles one request; every path answers, and nothing here throws into node:http. */
class WebHandler {
  private readonly source: ProductSource;
  private readonly inventory: InventoryClient;

  constructor(source: ProductSource, inventory: InventoryClient) {
    this.source = source;
    this.inventory = inventory;
  }

  async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      await this.route(req, res);
    } catch (err) {
      if (!res.headersSent) sendJson(res, 500, { error: errorMessage(err) });
      else res.destroy();
    }
  }

  private async route(req: IncomingMessage, res: ServerResponse): Promise<void> {
    // No route reads a body: drain it so the connection can be kept alive (time is bounded by requestTimeout).
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
    const match = PRODUCT_PATH.exec(path);
    if (match === null) {
      sendJson(res, 404, { error: `no route for ${path.slice(0, 200)}; try ${PRODUCT_ROUTE} or /healthz` });
      return;
    }
    const span = trace.getActiveSpan();
    span?.setAttribute('http.route', PRODUCT_ROUTE);
    span?.updateName(`${req.method} ${PRODUCT_ROUTE}`);
    const productId = match[1] ?? '';
    if (!isProductId(productId)) {
      sendJson(res, 400, { error: `product id '${productId.slice(0, 80)}' is not 1-64 letters, digits, _ or -` });
      return;
    }
    span?.setAttribute(ATTR_PRODUCT_ID, productId);
    const [rating, stock] = await Promise.allSettled([this.source.product(productId), this.inventory.stock(productId)]);
    if (rating.status === 'rejected' || stock.status === 'rejected') {
      const errors: string[] = [];
      if (rating.status === 'rejected') errors.push(errorMessage(rating.reason));
      if (stock.status === 'rejected') errors.push(errorMessage(stock.reason));
      sendJson(res, 502, { error: errors.join('; ') });
      return;
    }
    const view: ProductView = { productId, rating: rating.value.rating, stock: stock.value };
    sendJson(res, 200, { ...view, ...rating.value.extra });
  }
}

export async function start(options: WebOptions): Promise<RunningApp> {
  const http = loadHttp();
  const source: ProductSource =
    options.catalog === undefined
      ? new RatingsSource(new RatingsClient(loadGrpc(), { target: options.ratings, proxy: options.proxy, deadlineMs: PEER_TIMEOUT_MS }))
      : new CatalogSource(new HttpJsonClient(http, { peer: 'catalog', target: options.catalog, proxy: options.proxy, timeoutMs: CATALOG_TIMEOUT_MS }));
  const inventory = new InventoryClient(
    { target: options.inventory, proxy: options.proxy, timeoutMs: PEER_TIMEOUT_MS },
    trace.getTracer('tracemesh-demo-web'),
  );
  const handler = new WebHandler(source, inventory);
  const server = http.createServer(SERVER_LIMITS, (req, res) => void handler.handle(req, res));
  server.maxConnections = MAX_CONNECTIONS;
  const sockets = new Set<Socket>();
  server.on('connection', (socket: Socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(options.port, '127.0.0.1', () => {
        server.off('error', reject);
        resolve();
      });
    });
  } catch (err) {
    source.close();
    throw err;
  }
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  let stopped: Promise<void> | undefined;
  return {
    port,
    stop(): Promise<void> {
      stopped ??= (async () => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const socket of sockets) socket.destroy();
        await closed;
        source.close();
        await options.instrumentation?.shutdown();
      })();
      return stopped;
    },
  };
}

if (isMainModule(import.meta.url)) {
  await runDemoApp('web', (config, instrumentation) =>
    start({ port: config.port, ratings: config.ratings, inventory: config.inventory, catalog: config.catalog, proxy: config.proxy, instrumentation }),
  );
}
