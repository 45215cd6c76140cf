/**
 * Every demo app listens at the host it is given (`--host`), not at
 * 127.0.0.1 regardless: started at ::1, each one answers there (a listener
 * bound to 127.0.0.1 would refuse every connection to ::1).
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { start as startCatalog } from './catalog-app.js';
import { stockFor } from './catalog.js';
import { start as startInventory } from './inventory.js';
import type { RunningApp } from './lifecycle.js';
import { start as startRatings } from './ratings.js';
import { start as startReviews } from './reviews.js';
import { start as startWeb } from './web.js';

const HOST = '::1';
/** Peers nobody calls here: the apps connect to them lazily, per request. */
const UNUSED_PEER = { host: '127.0.0.1', port: 9 };
const CONNECT_MS = 5_000;

const running: RunningApp[] = [];
afterEach(async () => {
  for (const app of running.splice(0)) await app.stop();
});

async function started(app: Promise<RunningApp>): Promise<RunningApp> {
  const ready = await app;
  running.push(ready);
  return ready;
}

/** Resolves with the first line the server answers to `send` at [HOST]:port; rejects on refusal or after CONNECT_MS. */
function exchange(port: number, send: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ host: HOST, port });
    let received = '';
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`no answer from [${HOST}]:${port} within ${CONNECT_MS} ms`));
    }, CONNECT_MS);
    const finish = (err: Error | undefined): void => {
      clearTimeout(timer);
      socket.destroy();
      if (err === undefined) resolve(received.split('\n', 1)[0] ?? '');
      else reject(err);
    };
    socket.once('error', finish);
    socket.once('connect', () => socket.write(send));
    socket.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.includes('\n')) finish(undefined);
    });
    socket.once('end', () => finish(undefined));
  });
}

describe('--host', () => {
  it.each([
    ['web', () => startWeb({ host: HOST, port: 0, ratings: UNUSED_PEER, inventory: UNUSED_PEER })],
    ['catalog', () => startCatalog({ host: HOST, port: 0, reviews: UNUSED_PEER })],
    ['reviews', () => startReviews({ host: HOST, port: 0, version: 'v1', ratings: UNUSED_PEER })],
  ] as const)('%s serves HTTP at the given address', async (_name, start) => {
    const app = await started(start());
    const res = await fetch(`http://[${HOST}]:${app.port}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ status: 'ok' });
  });

  it('inventory answers lines at the given address', async () => {
    const app = await started(startInventory({ host: HOST, port: 0 }));
    expect(await exchange(app.port, 'STOCK 42\n')).toBe(`42 ${stockFor('42')}`);
  });

  it('ratings serves gRPC at the given address (an HTTP/2 server answers a preface with a SETTINGS frame)', async () => {
    const app = await started(startRatings({ host: HOST, port: 0 }));
    const preface = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';
    // The first frame's header: 3 length bytes, then type 0x04 (SETTINGS); no newline comes, so the socket end or timeout finishes.
    const socket = net.connect({ host: HOST, port: app.port });
    const frameType = await new Promise<number>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no HTTP/2 frame from ratings within ${CONNECT_MS} ms`)), CONNECT_MS);
      socket.once('error', (err) => {
        clearTimeout(timer);
        reject(err);
      });
      socket.once('connect', () => socket.write(preface));
      socket.once('data', (chunk: Buffer) => {
        clearTimeout(timer);
        resolve(chunk[3] ?? -1);
      });
    }).finally(() => socket.destroy());
    expect(frameType).toBe(0x04);
  });
});
