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
import { TracemeshError, errorMessage } from '../../lib/errors.js';
import { loadGrpc, loadHttp } from '../instrument.js';
import type { DemoInstrumentation } from '../instrument.js';
import { DEFAULT_HOST } from './config.js';
import type { PeerAddress, ProxyAddress } from './config.js';
import { HttpJsonClient } from './http-json-client.js';
import { serveJsonApp, type JsonReply, type JsonRoute } from './json-server.js';
import { InventoryClient } from './inventory-client.js';
import { isMainModule, runDemoApp } from './lifecycle.js';
import type { RunningApp } from './lifecycle.js';
import { RatingsClient } from './ratings-client.js';

export interface WebOptions {
  /** Listen port; 0 = any free port. */
  port: number;
  /** Listen address; default 127.0.0.1 (DEFAULT_HOST). */
  host?: string;
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

/** GET /product/:id: the product from `source` and its stock from `inventory`, asked in parallel. */
class ProductRoute implements JsonRoute {
  readonly prefix = '/product';

  constructor(
    private readonly source: ProductSource,
    private readonly inventory: InventoryClient,
  ) {}

  async handle(productId: string): Promise<JsonReply> {
    const [rating, stock] = await Promise.allSettled([this.source.product(productId), this.inventory.stock(productId)]);
    if (rating.status === 'rejected' || stock.status === 'rejected') {
      const errors: string[] = [];
      if (rating.status === 'rejected') errors.push(errorMessage(rating.reason));
      if (stock.status === 'rejected') errors.push(errorMessage(stock.reason));
      return { status: 502, body: { error: errors.join('; ') } };
    }
    const view: ProductView = { productId, rating: rating.value.rating, stock: stock.value };
    return { status: 200, body: { ...view, ...rating.value.extra } };
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
  return serveJsonApp(http, { host: options.host ?? DEFAULT_HOST, port: options.port }, new ProductRoute(source, inventory), () => source.close(), options.instrumentation);
}

if (isMainModule(import.meta.url)) {
  await runDemoApp('web', (config, instrumentation) =>
    start({ host: config.host, port: config.port, ratings: config.ratings, inventory: config.inventory, catalog: config.catalog, proxy: config.proxy, instrumentation }),
  );
}
