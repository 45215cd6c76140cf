import net from 'node:net';
import type { Server, Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../lib/errors.js';
import { startConnectProxy } from './connect-proxy.test-helper.js';
import type { TestConnectProxy } from './connect-proxy.test-helper.js';
import { MAX_CONNECT_RESPONSE_BYTES, connectViaProxy } from './connect-via-proxy.js';

const cleanups: Array<() => Promise<void> | void> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A TCP server that runs `onSocket` for each connection; closed after the test. */
async function startServer(onSocket: (socket: Socket) => void): Promise<number> {
  const sockets = new Set<Socket>();
  const server: Server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => sockets.delete(socket));
    onSocket(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(async () => {
    const closed = new Promise<void>((resolve) => server.close(() => resolve()));
    for (const socket of sockets) socket.destroy();
    await closed;
  });
  const address = server.address();
  return typeof address === 'object' && address !== null ? address.port : 0;
}

async function startProxy(routes: Map<string, number>): Promise<TestConnectProxy> {
  const proxy = await startConnectProxy(routes);
  cleanups.push(() => proxy.close());
  return proxy;
}

/** Reads from `socket` until `expected` bytes have arrived; fails after 5 s instead of hanging the test. */
function readBytes(socket: Socket, expected: number): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    const timer = setTimeout(() => reject(new Error(`only '${text}' arrived within 5 s`)), 5_000);
    socket.on('data', (chunk: Buffer) => {
      text += chunk.toString('utf8');
      if (text.length < expected) return;
      clearTimeout(timer);
      resolve(text);
    });
    socket.once('error', reject);
    socket.once('close', () => {
      clearTimeout(timer);
      reject(new Error(`closed after '${text}'`));
    });
  });
}

async function expectUpstreamError(promise: Promise<Socket>, fragment: string): Promise<void> {
  const err = await promise.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(isTracemeshError(err, 'TM_ERR_UPSTREAM'), String(err)).toBe(true);
  expect(String((err as Error).message)).toContain(fragment);
}

describe('connectViaProxy', () => {
  it('opens a tunnel with CONNECT host:port and carries bytes both ways', async () => {
    const echoPort = await startServer((socket) => socket.pipe(socket));
    const proxy = await startProxy(new Map([['inventory:7070', echoPort]]));
    const socket = await connectViaProxy(proxy.url, 'inventory', 7070);
    cleanups.push(() => void socket.destroy());
    const echoed = readBytes(socket, 'hello tunnel\n'.length);
    socket.write('hello tunnel\n');
    expect(await echoed).toBe('hello tunnel\n');
    expect(proxy.targets).toEqual(['inventory:7070']);
  });

  it('hands back bytes the proxy sent right behind its answer', async () => {
    // A server-first upstream whose greeting arrives in the same packet as the 200.
    const port = await startServer((socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 200 Connection Established\r\nx-a: b\r\n\r\nGREETING\n'));
    });
    const socket = await connectViaProxy(`http://127.0.0.1:${port}`, 'inventory', 7070);
    cleanups.push(() => void socket.destroy());
    expect(await readBytes(socket, 'GREETING\n'.length)).toBe('GREETING\n');
  });

  it('sends the CONNECT request line and Host header for the target', async () => {
    let seen = '';
    const port = await startServer((socket) => {
      socket.on('data', (chunk: Buffer) => {
        seen += chunk.toString('latin1');
        if (seen.includes('\r\n\r\n')) socket.write('HTTP/1.0 200 OK\r\n\r\n');
      });
    });
    const socket = await connectViaProxy(new URL(`http://127.0.0.1:${port}`), 'ratings', 50051);
    socket.destroy();
    expect(seen).toBe('CONNECT ratings:50051 HTTP/1.1\r\nHost: ratings:50051\r\n\r\n');
  });

  it('rejects with TM_ERR_UPSTREAM and the status line when the proxy refuses', async () => {
    const proxy = await startProxy(new Map());
    await expectUpstreamError(connectViaProxy(proxy.url, 'nowhere', 1), 'proxy refused: HTTP/1.1 502 Bad Gateway');
  });

  it('rejects an answer that is not HTTP', async () => {
    const port = await startServer((socket) => socket.end('SSH-2.0-OpenSSH\r\n\r\n'));
    await expectUpstreamError(connectViaProxy(`http://127.0.0.1:${port}`, 'inventory', 7070), 'answer is not HTTP');
  });

  it('rejects an answer head larger than the limit instead of buffering it', async () => {
    const port = await startServer((socket) => {
      socket.write('HTTP/1.1 200 OK\r\n');
      socket.write(`x-big: ${'a'.repeat(MAX_CONNECT_RESPONSE_BYTES)}\r\n`);
    });
    await expectUpstreamError(connectViaProxy(`http://127.0.0.1:${port}`, 'inventory', 7070), 'answer head longer than');
  });

  it('rejects when the proxy closes before answering', async () => {
    const port = await startServer((socket) => socket.end());
    await expectUpstreamError(connectViaProxy(`http://127.0.0.1:${port}`, 'inventory', 7070), 'closed the connection before answering');
  });

  it('rejects when the proxy never answers, after the timeout', async () => {
    const port = await startServer(() => undefined);
    await expectUpstreamError(connectViaProxy(`http://127.0.0.1:${port}`, 'inventory', 7070, { timeoutMs: 100 }), 'no answer within 100 ms');
  });

  it('rejects when nothing listens at the proxy address', async () => {
    const port = await startServer(() => undefined);
    await cleanups.pop()?.(); // close it again: the port is now (almost certainly) refused
    await expectUpstreamError(connectViaProxy(`http://127.0.0.1:${port}`, 'inventory', 7070), 'ECONNREFUSED');
  });

  it('rejects bad proxy URLs and targets without connecting', async () => {
    for (const [proxyUrl, host, port] of [
      ['socks5://127.0.0.1:1080', 'inventory', 7070],
      ['http://user:pw@127.0.0.1:15001', 'inventory', 7070],
      ['not a url', 'inventory', 7070],
      ['http://127.0.0.1:15001', 'inventory\r\nX-Injected: 1', 7070],
      ['http://127.0.0.1:15001', 'inventory', 0],
    ] as const) {
      const err = await connectViaProxy(proxyUrl, host, port).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(isTracemeshError(err, 'TM_ERR_CLI_BAD_VALUE'), `${proxyUrl} ${host}:${port}: ${String(err)}`).toBe(true);
    }
  });
});
