import type { Client, ServiceError } from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../lib/errors.js';
import { loadGrpc } from '../instrument.js';
import { ratingFor } from './catalog.js';
import type { RunningApp } from './lifecycle.js';
import { start } from './ratings.js';
import { RatingsClient, ratingsChannel } from './ratings-client.js';
import { GET_RATING_PATH, MAX_WATCH_UPDATES, WATCH_RATINGS_PATH, decodeRating } from './ratings-service.js';

const grpc = loadGrpc();
let ratings: RunningApp;
let client: RatingsClient;
let raw: Client;

beforeAll(async () => {
  ratings = await start({ port: 0 });
  client = new RatingsClient(grpc, { target: { host: '127.0.0.1', port: ratings.port }, proxy: undefined, deadlineMs: 5_000 });
  raw = new grpc.Client(`127.0.0.1:${ratings.port}`, grpc.credentials.createInsecure());
});

afterAll(async () => {
  client?.close();
  raw?.close();
  await ratings?.stop();
});

/** A unary GetRating call with a hand-made request body, for inputs the typed client cannot send. */
function rawGetRating(body: string): Promise<ServiceError | undefined> {
  return new Promise((resolve) => {
    raw.makeUnaryRequest(
      GET_RATING_PATH,
      (text: string) => Buffer.from(text),
      decodeRating,
      body,
      { deadline: Date.now() + 5_000 },
      (err) => resolve(err ?? undefined),
    );
  });
}

function rawWatch(body: string): Promise<ServiceError | undefined> {
  return new Promise((resolve) => {
    const call = raw.makeServerStreamRequest(WATCH_RATINGS_PATH, (text: string) => Buffer.from(text), decodeRating, body, {
      deadline: Date.now() + 5_000,
    });
    call.on('data', () => undefined);
    call.on('error', (err: ServiceError) => resolve(err));
    call.on('end', () => resolve(undefined));
  });
}

describe('ratings gRPC service', () => {
  it('GetRating answers the product rating', async () => {
    const figures = ratingFor('42');
    expect(await client.getRating('42')).toEqual({ productId: '42', stars: figures.stars, count: figures.count });
  });

  it('WatchRatings streams the asked number of updates and ends', async () => {
    const figures = ratingFor('sku-9');
    const updates = await client.watchRatings('sku-9', 4);
    expect(updates.map((u) => u.count)).toEqual([0, 1, 2, 3].map((i) => figures.count + i));
    expect(new Set(updates.map((u) => u.productId))).toEqual(new Set(['sku-9']));
  });

  it('answers INVALID_ARGUMENT naming the field for bad requests', async () => {
    const cases: Array<[string, string]> = [
      ['{"productId":"bad id!"}', 'productId: expected a string'],
      ['{}', 'productId: expected a string'],
      ['not json', 'message is not JSON'],
      ['[1,2]', 'message is not a JSON object'],
    ];
    for (const [body, details] of cases) {
      const err = await rawGetRating(body);
      expect(err?.code, body).toBe(grpc.status.INVALID_ARGUMENT);
      expect(err?.details, body).toContain(details);
    }
    const watch = await rawWatch(JSON.stringify({ productId: '42', updates: MAX_WATCH_UPDATES + 1 }));
    expect(watch?.code).toBe(grpc.status.INVALID_ARGUMENT);
    expect(watch?.details).toContain(`updates: expected a whole number from 1 to ${MAX_WATCH_UPDATES}`);
  });

  it('refuses messages over the size limit', async () => {
    const err = await rawGetRating(JSON.stringify({ productId: 'x'.repeat(10_000) }));
    expect(err?.code).toBe(grpc.status.RESOURCE_EXHAUSTED);
  });

  it('the client reports an unreachable server as TM_ERR_UPSTREAM with the address and status', async () => {
    const stopped = await start({ port: 0 });
    await stopped.stop();
    const lost = new RatingsClient(grpc, { target: { host: '127.0.0.1', port: stopped.port }, proxy: undefined, deadlineMs: 2_000 });
    try {
      const err = await lost.getRating('42').then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTracemeshError(err, 'TM_ERR_UPSTREAM'), String(err)).toBe(true);
      expect(String((err as Error).message)).toMatch(new RegExp(`^ratings at 127\\.0\\.0\\.1:${stopped.port}: (UNAVAILABLE|DEADLINE_EXCEEDED)`));
    } finally {
      lost.close();
    }
  });
});

describe('ratingsChannel', () => {
  it('dials the target directly, ignoring proxy env vars', () => {
    expect(ratingsChannel({ target: { host: '127.0.0.1', port: 50051 }, proxy: undefined })).toEqual({
      address: 'dns:127.0.0.1:50051',
      channelOptions: expect.objectContaining({ 'grpc.enable_http_proxy': 0 }),
    });
  });

  it('through a proxy, dials the proxy and CONNECTs to the service name', () => {
    const { address, channelOptions } = ratingsChannel({
      target: { host: 'ratings', port: 50051 },
      proxy: { host: '127.0.0.1', port: 15001, url: 'http://127.0.0.1:15001' },
    });
    expect(address).toBe('dns:127.0.0.1:15001');
    expect(channelOptions).toMatchObject({
      'grpc.enable_http_proxy': 0,
      'grpc.http_connect_target': 'dns:ratings:50051',
      'grpc.default_authority': 'ratings:50051',
    });
  });
});
