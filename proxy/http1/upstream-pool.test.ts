import { spawn } from 'node:child_process';
import type { ServerResponse } from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import { Cleanup, header, inboundDirection, rawExchange, readResponses, responsesComplete, startProxy, startRawUpstream, startUpstream, type TestProxy } from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function status(proxy: TestProxy, request: string) {
  const result = await rawExchange(proxy.port, [request], responsesComplete(1));
  return readResponses(result.text).responses[0];
}

/**
 * An upstream that answers the first request on each connection with
 * keep-alive, and closes the connection without answering when a second
 * request arrives on it: the keep-alive race, made certain.
 */
async function oneShotUpstream(close: (socket: Socket) => void) {
  return startRawUpstream(cleanup, (socket) => {
    let requests = 0;
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      const end = seen.indexOf('\r\n\r\n');
      if (end < 0) return;
      const head = seen.slice(0, end);
      const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? '0');
      if (seen.length < end + 4 + length) return;
      seen = '';
      requests++;
      if (requests === 1) socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      else close(socket);
    });
  });
}

describe('upstream keep-alive pool', () => {
  it('retries an idempotent request once on a fresh connection when the reused one was closed', async () => {
    const upstream = await oneShotUpstream((socket) => socket.destroy());
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    expect((await status(proxy, 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    expect((await status(proxy, 'GET /2 HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    expect(upstream.connections()).toBe(2);
    expect(proxy.tel.spans.map((s) => s.status)).toEqual(['unset', 'unset']);
  });

  it('retries a bodyless POST, but not a POST whose body already went out', async () => {
    const upstream = await oneShotUpstream((socket) => socket.end());
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    expect((await status(proxy, 'GET /1 HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    expect((await status(proxy, 'POST /2 HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    const failed = await status(proxy, 'POST /3 HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\n\r\nbody');
    expect(failed?.status).toBe(502);
    expect(header(failed, RESPONSE_FLAGS_HEADER)).toBe('UC');
    expect(upstream.connections()).toBe(2);
  });

  it('keeps at most maxIdleUpstreamPerEndpoint idle connections, reusing the last released first', async () => {
    const waiting: Array<{ res: ServerResponse; port: number }> = [];
    let arrived: () => void = () => {};
    const app = await startUpstream(cleanup, (req, res) => {
      const entry = { res, port: req.socket.remotePort as number };
      if (req.url === '/hold') {
        waiting.push(entry);
        if (waiting.length === 3) arrived();
      } else {
        res.end(String(entry.port));
      }
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port), limits: { maxIdleUpstreamPerEndpoint: 2 } });
    const allArrived = new Promise<void>((resolve) => (arrived = resolve));
    const held = [1, 2, 3].map(() => status(proxy, 'GET /hold HTTP/1.1\r\nHost: a\r\n\r\n'));
    await allArrived;
    expect(proxy.pool.stats()).toMatchObject({ open: 3, inUse: 3, idle: 0 });
    // Release in order 0, 1, 2: the pool keeps the first two (the third finds it full), the second on top.
    for (const w of waiting) {
      w.res.end('held');
      await expect.poll(() => proxy.pool.stats().inUse).toBe(2 - waiting.indexOf(w));
    }
    await Promise.all(held);
    await expect.poll(() => proxy.pool.stats().open).toBe(2);
    expect(proxy.pool.stats()).toMatchObject({ idle: 2, inUse: 0, endpoints: [{ endpoint: `127.0.0.1:${app.port}`, open: 2, idle: 2, inUse: 0 }] });
    const reusedPort = (await status(proxy, 'GET /which HTTP/1.1\r\nHost: a\r\n\r\n'))?.body;
    expect(reusedPort).toBe(String(waiting[1]?.port));
  });

  it('closes idle connections after upstreamIdleTimeoutMs', async () => {
    const app = await startUpstream(cleanup, (_req, res) => res.end('ok'));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port), limits: { upstreamIdleTimeoutMs: 100 } });
    expect((await status(proxy, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    expect(proxy.pool.stats().idle).toBe(1);
    await expect.poll(() => proxy.pool.stats().open, { timeout: 5000 }).toBe(0);
  });

  it('does not keep a connection the server will close within its advertised Keep-Alive timeout', async () => {
    const app = await startUpstream(cleanup, (_req, res) => res.end('ok'));
    app.server.keepAliveTimeout = 1000; // node:http then sends "Keep-Alive: timeout=1"
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    for (let i = 0; i < 3; i++) expect((await status(proxy, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    expect(app.connections()).toBe(3);
    expect(proxy.pool.stats().idle).toBe(0);
  });

  it('does not reuse a connection the response asked to close', async () => {
    const upstream = await startRawUpstream(cleanup, (socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok'));
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    expect((await status(proxy, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    expect((await status(proxy, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    expect(upstream.connections()).toBe(2);
  });

  it('a connect that does not complete within connectTimeoutMs → 503 UF', async () => {
    // A listener whose process never accepts: once its backlog is full, SYNs go unanswered.
    const script =
      "const s=require('net').createServer();s.listen({port:0,host:'127.0.0.1',backlog:1},()=>{process.stdout.write(String(s.address().port)+'\\n',()=>Atomics.wait(new Int32Array(new SharedArrayBuffer(4)),0,0,30000))})";
    const child = spawn(process.execPath, ['-e', script], { stdio: ['ignore', 'pipe', 'inherit'] });
    cleanup.add(() => {
      child.kill();
    });
    const port = await new Promise<number>((resolve) => child.stdout.once('data', (d: Buffer) => resolve(Number(d.toString().trim()))));
    const fillers = [0, 1].map(() => connect(port, '127.0.0.1'));
    cleanup.add(() => {
      for (const f of fillers) f.destroy();
    });
    await Promise.all(fillers.map((f) => new Promise((resolve) => f.once('connect', resolve))));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port), limits: { connectTimeoutMs: 200 } });
    const res = await status(proxy, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n');
    expect(res?.status).toBe(503);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('UF');
    expect(res?.body).toContain('timed out after 200 ms');
    expect(proxy.pool.stats().open).toBe(0);
  });

  it('close() drops idle connections and is safe twice', async () => {
    const app = await startUpstream(cleanup, (_req, res) => res.end('ok'));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    expect((await status(proxy, 'GET / HTTP/1.1\r\nHost: a\r\n\r\n'))?.status).toBe(200);
    proxy.pool.close();
    proxy.pool.close();
    await expect.poll(() => proxy.pool.stats().open).toBe(0);
  });
});

describe('downstream going away', () => {
  it('mid-upload: the upstream request is aborted and the span says DC', async () => {
    let upstreamClosed = false;
    let requestArrived: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (requestArrived = resolve));
    const app = await startUpstream(cleanup, (req) => {
      req.socket.on('close', () => (upstreamClosed = true));
      req.once('data', () => requestArrived());
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const client = connect(proxy.port, '127.0.0.1');
    client.on('error', () => {});
    cleanup.add(() => {
      client.destroy();
    });
    client.write('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1000\r\n\r\npartial');
    await arrived;
    client.end();
    await expect.poll(() => proxy.tel.spans.length).toBe(1);
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('DC');
    expect(proxy.tel.spans[0]?.attributes['http.response.status_code']).toBe(499);
    expect(proxy.tel.spans[0]?.attributes['http.request.body.size']).toBe(7);
    await expect.poll(() => upstreamClosed).toBe(true);
  });

  it('while waiting for the response: the upstream request is aborted, DC', async () => {
    let upstreamClosed = false;
    let requestArrived: () => void = () => {};
    const arrived = new Promise<void>((resolve) => (requestArrived = resolve));
    const app = await startUpstream(cleanup, (req) => {
      req.socket.on('close', () => (upstreamClosed = true));
      requestArrived();
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const exchange = rawExchange(proxy.port, ['GET /slow HTTP/1.1\r\nHost: a\r\n\r\n'], () => false, { timeoutMs: 2000 }).catch(() => undefined);
    await arrived;
    // Drop the client: its connection closes without an answer.
    await proxy.close();
    await exchange;
    await expect.poll(() => proxy.tel.spans.length).toBe(1);
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('DC');
    await expect.poll(() => upstreamClosed).toBe(true);
  });

  it('a client that half-closes after its request still gets the response', async () => {
    const app = await startUpstream(cleanup, (_req, res) => setTimeout(() => res.end('late'), 20));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const result = await rawExchange(proxy.port, ['GET / HTTP/1.1\r\nHost: a\r\n\r\n'], () => false, { endAfterWrite: true });
    expect(result.closed).toBe(true);
    const [res] = readResponses(result.text).responses;
    expect(res?.body).toBe('late');
    expect(header(res, 'connection')).toBe('close');
  });
});
