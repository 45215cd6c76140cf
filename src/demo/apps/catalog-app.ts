/**
 * `catalog`: the demo's product service (HTTP). GET /products/:id asks
 * `reviews` (HTTP, through the explicit proxy in the demo, where the mesh
 * splits it over reviews v1/v2/v3) and answers the product with its reviews.
 * A failed reviews call fails the product too (502), so a broken reviews
 * version shows all the way up to the user. (The file is catalog-app.ts
 * because catalog.ts is the demo's shared product "database".)
 *
 * Run: node dist/src/demo/apps/catalog-app.js --port 9081 --reviews reviews:9080 \
 *        --collector http://127.0.0.1:4317 [--proxy http://127.0.0.1:15001]
 */
import { loadHttp } from '../instrument.js';
import type { DemoInstrumentation } from '../instrument.js';
import { DEFAULT_HOST } from './config.js';
import type { PeerAddress, ProxyAddress } from './config.js';
import { HttpJsonClient } from './http-json-client.js';
import { serveJsonApp } from './json-server.js';
import type { JsonReply } from './json-server.js';
import { isMainModule, runDemoApp } from './lifecycle.js';
import type { RunningApp } from './lifecycle.js';

export interface CatalogOptions {
  /** Listen port; 0 = any free port. */
  port: number;
  /** Listen address; default 127.0.0.1 (DEFAULT_HOST). */
  host?: string;
  reviews: PeerAddress;
  proxy?: ProxyAddress | undefined;
  instrumentation?: DemoInstrumentation;
}

/** The answer of GET /products/:id: the product and what reviews said (passed through). */
export interface ProductDetails {
  productId: string;
  title: string;
  reviews: unknown;
}

const PEER_TIMEOUT_MS = 5_000;

export function productTitle(productId: string): string {
  return `Demo product ${productId}`;
}

export async function start(options: CatalogOptions): Promise<RunningApp> {
  const http = loadHttp();
  const reviews = new HttpJsonClient(http, { peer: 'reviews', target: options.reviews, proxy: options.proxy, timeoutMs: PEER_TIMEOUT_MS });
  const handle = async (productId: string): Promise<JsonReply> => {
    const answer = await reviews.get(`/reviews/${productId}`);
    if (answer.status !== 200) {
      return { status: 502, body: { error: `reviews answered ${answer.status}`, upstream: answer.body ?? null } };
    }
    const details: ProductDetails = { productId, title: productTitle(productId), reviews: answer.body };
    return { status: 200, body: details };
  };
  return serveJsonApp(http, { host: options.host ?? DEFAULT_HOST, port: options.port }, { prefix: '/products', handle }, () => reviews.close(), options.instrumentation);
}

if (isMainModule(import.meta.url)) {
  await runDemoApp('catalog', (config, instrumentation) =>
    start({ host: config.host, port: config.port, reviews: config.reviews, proxy: config.proxy, instrumentation }),
  );
}
