import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { WebSocket, WebSocketServer } from 'ws';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import {
  Cleanup,
  header,
  inboundDirection,
  outboundDirection,
  rawExchange,
  readResponses,
  responsesComplete,
  service,
  startProxy,
  startRawUpstream,
  startUpstream,
} from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

describe('Upgrade', () => {
  it('WebSocket through the proxy: messages both ways, then a clean close', async () => {
    const app = await startUpstream(cleanup, (_req, res) => res.end('not a websocket'));
    const wss = new WebSocketServer({ server: app.server });
    cleanup.add(() => new Promise<void>((resolve) => wss.close(() => resolve())));
    wss.on('connection', (ws, req) => {
      ws.send(`hello ${String(req.headers['x-forwarded-for'])}`);
      ws.on('message', (data, isBinary) => ws.send(isBinary ? data : `echo ${String(data)}`));
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });

    const ws = new WebSocket(`ws://127.0.0.1:${proxy.port}/chat`);
    cleanup.add(() => ws.terminate());
    const received: string[] = [];
    const gotAll = new Promise<void>((resolve, reject) => {
      ws.on('message', (data, isBinary) => {
        received.push(isBinary ? `binary ${(data as Buffer).length}` : String(data));
        if (received.length === 4) resolve();
      });
      ws.on('error', reject);
    });
    await new Promise<void>((resolve, reject) => {
      ws.on('open', () => resolve());
      ws.on('error', reject);
    });
    ws.send('one');
    ws.send('two');
    ws.send(Buffer.alloc(200_000, 7));
    await gotAll;
    expect(received).toEqual(['hello 127.0.0.1', 'echo one', 'echo two', 'binary 200000']);
    const closed = new Promise<number>((resolve) => ws.on('close', (code) => resolve(code)));
    ws.close(1000, 'bye');
    expect(await closed).toBe(1000);

    await expect.poll(() => proxy.tel.spans.length).toBe(1);
    const span = proxy.tel.spans[0];
    expect(span?.attributes['http.response.status_code']).toBe(101);
    expect(span?.status).toBe('unset');
    expect(span?.attributes['http.request.body.size']).toBeGreaterThan(200_000);
  });

  it('an upstream reset inside the pipe cuts the client connection; span says UC', async () => {
    const upstream = await startRawUpstream(cleanup, (socket: Socket) => {
      socket.once('data', () => {
        socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: custom\r\nConnection: Upgrade\r\n\r\nwelcome');
        socket.once('data', () => socket.resetAndDestroy());
      });
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const client = connect(proxy.port, '127.0.0.1');
    cleanup.add(() => {
      client.destroy();
    });
    client.on('error', () => {});
    let received = '';
    const closed = new Promise<void>((resolve) => client.on('close', () => resolve()));
    client.on('data', (chunk: Buffer) => {
      received += chunk.toString('latin1');
      if (received.endsWith('welcome')) client.write('boom');
    });
    client.write('GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: custom\r\n\r\n');
    await closed;
    expect(received).toMatch(/^HTTP\/1\.1 101 Switching Protocols\r\n/);
    expect(received.toLowerCase()).toContain('upgrade: custom');
    await expect.poll(() => proxy.tel.spans.length).toBe(1);
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('UC');
    expect(proxy.tel.spans[0]?.attributes['http.request.body.size']).toBe(4);
  });

  it('an upgrade the app declines is an ordinary response on a kept connection', async () => {
    const app = await startUpstream(cleanup, (_req, res) => res.end('plain'));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const request = 'GET / HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /2 HTTP/1.1\r\nHost: a\r\n\r\n';
    const result = await rawExchange(proxy.port, [request], responsesComplete(2));
    const responses = readResponses(result.text).responses;
    expect(responses.map((r) => [r.status, r.body])).toEqual([
      [200, 'plain'],
      [200, 'plain'],
    ]);
  });

  it('a 101 to a request that asked for no upgrade → 502 UPE', async () => {
    const upstream = await startRawUpstream(cleanup, (socket: Socket) => {
      socket.once('data', () => socket.write('HTTP/1.1 101 Switching Protocols\r\nUpgrade: evil\r\nConnection: upgrade\r\n\r\n'));
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const result = await rawExchange(proxy.port, ['GET / HTTP/1.1\r\nHost: a\r\n\r\n'], responsesComplete(1));
    const [res] = readResponses(result.text).responses;
    expect(res?.status).toBe(502);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('UPE');
  });
});

describe('CONNECT', () => {
  it('explicit outbound: answered 200 and handed to the listener tier with the bytes that followed', async () => {
    const handed: Array<{ target: { host: string; port: number }; rest: string; remoteAddress: string }> = [];
    const proxy = await startProxy(cleanup, {
      direction: outboundDirection([service('db', 5432, [{ port: 1 }])]),
      onConnect(socket, target, rest, remoteAddress) {
        handed.push({ target, rest: rest.toString(), remoteAddress });
        // The new owner speaks whatever the tunnel carries; here it echoes.
        socket.on('data', (chunk: Buffer) => socket.write(chunk));
        socket.write(`tunnel to ${target.host}:${target.port}\n`);
        socket.write(rest);
        socket.resume();
      },
    });
    const result = await rawExchange(proxy.port, ['CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\nearly bytes'], (t) => t.includes('early bytes'));
    expect(result.text).toBe('HTTP/1.1 200 Connection Established\r\n\r\ntunnel to db:5432\nearly bytes');
    expect(handed).toEqual([{ target: { host: 'db', port: 5432 }, rest: 'early bytes', remoteAddress: '127.0.0.1' }]);
    expect(proxy.tel.spans).toHaveLength(0); // the TCP tier reports tunnels
  });

  it('inbound: 405 and close', async () => {
    const proxy = await startProxy(cleanup, { direction: inboundDirection(1) });
    const result = await rawExchange(proxy.port, ['CONNECT db:5432 HTTP/1.1\r\nHost: db:5432\r\n\r\n']);
    expect(result.closed).toBe(true);
    const [res] = readResponses(result.text).responses;
    expect(res?.status).toBe(405);
    expect(proxy.tel.spans[0]?.attributes['http.request.method']).toBe('CONNECT');
  });

  it('explicit outbound: a target that names no service → 404 NR before any tunnel, and a span that says so', async () => {
    let handed = 0;
    const proxy = await startProxy(cleanup, { direction: outboundDirection([service('db', 5432, [{ port: 1 }])]), onConnect: () => handed++ });
    const result = await rawExchange(proxy.port, ['CONNECT cache:6379 HTTP/1.1\r\nHost: cache:6379\r\n\r\n']);
    const [res] = readResponses(result.text).responses;
    expect(res?.status).toBe(404);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('NR');
    expect(result.closed).toBe(true);
    expect(handed).toBe(0);
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('NR');
  });

  it('a CONNECT target without a port → 400', async () => {
    const proxy = await startProxy(cleanup, { direction: outboundDirection([]), onConnect: () => {} });
    const result = await rawExchange(proxy.port, ['CONNECT db HTTP/1.1\r\nHost: db\r\n\r\n']);
    expect(readResponses(result.text).responses[0]?.status).toBe(400);
  });
});
