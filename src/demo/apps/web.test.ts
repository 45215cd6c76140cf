import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ratingFor, stockFor } from './catalog.js';
import { startConnectProxy } from './connect-proxy.test-helper.js';
import type { TestConnectProxy } from './connect-proxy.test-helper.js';
import { parseProxyUrl } from './config.js';
import { start as startInventory } from './inventory.js';
import type { RunningApp } from './lifecycle.js';
import { start as startRatings } from './ratings.js';
import { start as startWeb } from './web.js';
import type { ProductView } from './web.js';

let ratings: RunningApp;
let inventory: RunningApp;
let web: RunningApp;
const stops: Array<() => Promise<void>> = [];

beforeAll(async () => {
  ratings = await startRatings({ port: 0 });
  stops.push(() => ratings.stop());
  inventory = await startInventory({ port: 0 });
  stops.push(() => inventory.stop());
  web = await startWeb({
    port: 0,
    ratings: { host: '127.0.0.1', port: ratings.port },
    inventory: { host: '127.0.0.1', port: inventory.port },
  });
  stops.push(() => web.stop());
});

afterAll(async () => {
  for (const stop of stops.splice(0).reverse()) await stop();
});

function expectedView(productId: string): ProductView {
  const figures = ratingFor(productId);
  return { productId, rating: { stars: figures.stars, count: figures.count }, stock: stockFor(productId) };
}

async function get(port: number, path: string, init?: RequestInit): Promise<{ status: number; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: res.status, body: (await res.json()) as Record<string, unknown> };
}

async function send(port: number, path: string, init: RequestInit): Promise<{ status: number; allow: string | null; body: Record<string, unknown> }> {
  const res = await fetch(`http://127.0.0.1:${port}${path}`, init);
  return { status: res.status, allow: res.headers.get('allow'), body: (await res.json()) as Record<string, unknown> };
}

describe('web', () => {
  it('GET /product/:id combines the rating (gRPC) and the stock (TCP)', async () => {
    expect(await get(web.port, '/product/42')).toEqual({ status: 200, body: expectedView('42') });
    expect(await get(web.port, '/product/sku_7?ref=home')).toEqual({ status: 200, body: expectedView('sku_7') });
  });

  it('answers /healthz', async () => {
    expect(await get(web.port, '/healthz')).toEqual({ status: 200, body: { status: 'ok' } });
  });

  it('answers 404, 400 and 405 with a message', async () => {
    const missing = await get(web.port, '/nothing');
    expect(missing.status).toBe(404);
    expect(missing.body['error']).toContain('no route for /nothing');
    const badId = await get(web.port, '/product/a%20b');
    expect(badId.status).toBe(400);
    expect(badId.body['error']).toContain("product id 'a%20b'");
    const post = await send(web.port, '/product/42', { method: 'POST', body: 'x' });
    expect(post.status).toBe(405);
    expect(post.allow).toBe('GET, HEAD');
  });

  it('answers 502 naming each peer that failed', async () => {
    // Ports of apps that have stopped: nothing listens there any more.
    const goneRatings = await startRatings({ port: 0 });
    await goneRatings.stop();
    const goneInventory = await startInventory({ port: 0 });
    await goneInventory.stop();
    const lonely = await startWeb({
      port: 0,
      ratings: { host: '127.0.0.1', port: goneRatings.port },
      inventory: { host: '127.0.0.1', port: goneInventory.port },
    });
    stops.push(() => lonely.stop());
    const { status, body } = await get(lonely.port, '/product/42');
    expect(status).toBe(502);
    expect(body['error']).toContain(`ratings at 127.0.0.1:${goneRatings.port}`);
    expect(body['error']).toContain(`inventory at 127.0.0.1:${goneInventory.port}: connect ECONNREFUSED`);
  });
});

describe('web behind an explicit-mode proxy', () => {
  let proxy: TestConnectProxy;
  let proxied: RunningApp;

  beforeAll(async () => {
    // The names are not resolvable: the answer can only come through the proxy.
    proxy = await startConnectProxy(
      new Map([
        ['ratings:50051', ratings.port],
        ['inventory:7070', inventory.port],
      ]),
    );
    stops.push(() => proxy.close());
    proxied = await startWeb({
      port: 0,
      ratings: { host: 'ratings', port: 50051 },
      inventory: { host: 'inventory', port: 7070 },
      proxy: parseProxyUrl(proxy.url, 'test'),
    });
    stops.push(() => proxied.stop());
  });

  it('reaches ratings with grpc-js CONNECT and inventory with its own CONNECT tunnel', async () => {
    expect(await get(proxied.port, '/product/7')).toEqual({ status: 200, body: expectedView('7') });
    expect(await get(proxied.port, '/product/8')).toEqual({ status: 200, body: expectedView('8') });
    // gRPC keeps its one tunnel; inventory opens one per query.
    expect(proxy.targets.filter((t) => t === 'ratings:50051')).toHaveLength(1);
    expect(proxy.targets.filter((t) => t === 'inventory:7070')).toHaveLength(2);
    expect(proxy.targets).toHaveLength(3);
  });

  it('reports a refused CONNECT as a 502 naming the proxy', async () => {
    const refusing = await startConnectProxy(new Map());
    stops.push(() => refusing.close());
    const stranded = await startWeb({
      port: 0,
      ratings: { host: 'ratings', port: 50051 },
      inventory: { host: 'inventory', port: 7070 },
      proxy: parseProxyUrl(refusing.url, 'test'),
    });
    stops.push(() => stranded.stop());
    const { status, body } = await get(stranded.port, '/product/42');
    expect(status).toBe(502);
    expect(body['error']).toContain(`CONNECT inventory:7070 via ${refusing.url}: proxy refused: HTTP/1.1 502 Bad Gateway`);
    expect(body['error']).toContain('ratings at ratings:50051: UNAVAILABLE');
  });
});
