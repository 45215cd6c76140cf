import { request as httpRequest, Agent } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cleanup,
  header,
  inboundDirection,
  rawExchange,
  readResponses,
  responsesComplete,
  startProxy,
  startUpstream,
} from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface Echo {
  method: string;
  url: string;
  headers: Record<string, string | string[] | undefined>;
  rawHeaders: string[];
  body: string;
  httpVersion: string;
}

/** An upstream that answers with what it received, as JSON. */
async function echoUpstream() {
  return startUpstream(cleanup, (req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => {
      const echo: Echo = { method: req.method ?? '', url: req.url ?? '', headers: req.headers, rawHeaders: req.rawHeaders, body: Buffer.concat(chunks).toString(), httpVersion: req.httpVersion };
      const body = JSON.stringify(echo);
      res.writeHead(200, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) });
      res.end(body);
    });
  });
}

function get(port: number, path: string, headers: Record<string, string> = {}, agent?: Agent): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: string }> {
  return new Promise((resolve, reject) => {
    const req = httpRequest({ host: '127.0.0.1', port, path, headers, agent: agent ?? false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
      res.on('error', reject);
    });
    req.on('error', reject);
    req.end();
  });
}

describe('HTTP/1 forwarding', () => {
  it('forwards a GET to the app and the response back', async () => {
    const app = await echoUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const res = await get(proxy.port, '/hello?x=1', { 'user-agent': 'test-agent' });
    expect(res.status).toBe(200);
    const echo = JSON.parse(res.body) as Echo;
    expect(echo.method).toBe('GET');
    expect(echo.url).toBe('/hello?x=1');
    expect(echo.headers['user-agent']).toBe('test-agent');
    expect(proxy.tel.spans).toHaveLength(1);
    expect(proxy.tel.requests[0]?.labels.responseCode).toBe('200');
  });

  it('reuses one upstream connection for sequential keep-alive requests', async () => {
    const app = await echoUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const agent = new Agent({ keepAlive: true, maxSockets: 1 });
    cleanup.add(() => agent.destroy());
    for (let i = 0; i < 20; i++) {
      const res = await get(proxy.port, `/r${i}`, {}, agent);
      expect(res.status).toBe(200);
      expect((JSON.parse(res.body) as Echo).url).toBe(`/r${i}`);
    }
    expect(app.connections()).toBe(1);
    expect(proxy.pool.stats()).toMatchObject({ open: 1, idle: 1, inUse: 0 });
  });

  it('reuses idle upstream connections across downstream connections', async () => {
    const app = await echoUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    for (let i = 0; i < 5; i++) expect((await get(proxy.port, '/')).status).toBe(200);
    expect(app.connections()).toBe(1);
  });

  it('answers pipelined requests in order', async () => {
    const app = await echoUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const requests = ['/a', '/b', '/c', '/d'].map((p) => `GET ${p} HTTP/1.1\r\nHost: app\r\n\r\n`).join('');
    const result = await rawExchange(proxy.port, [requests], responsesComplete(4));
    const { responses } = readResponses(result.text);
    expect(responses.map((r) => (JSON.parse(r.body) as Echo).url)).toEqual(['/a', '/b', '/c', '/d']);
  });

  it('answers pipelined requests that arrive byte by byte', async () => {
    const app = await echoUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const requests = 'GET /a HTTP/1.1\r\nHost: app\r\n\r\nPOST /b HTTP/1.1\r\nHost: app\r\nContent-Length: 5\r\n\r\nhello';
    const parts = [...requests].map((c) => Buffer.from(c, 'latin1'));
    const result = await rawExchange(proxy.port, parts, responsesComplete(2));
    const echoes = readResponses(result.text).responses.map((r) => JSON.parse(r.body) as Echo);
    expect(echoes.map((e) => [e.method, e.url, e.body])).toEqual([
      ['GET', '/a', ''],
      ['POST', '/b', 'hello'],
    ]);
  });

  it('answers many pipelined requests with bodies, more than the proxy holds at once, in order', async () => {
    const app = await echoUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const body = 'b'.repeat(10_000);
    const requests = Array.from({ length: 30 }, (_, i) => `POST /p${i} HTTP/1.1\r\nHost: app\r\nContent-Length: ${body.length}\r\n\r\n${body}`).join('');
    const result = await rawExchange(proxy.port, [requests], responsesComplete(30));
    const echoes = readResponses(result.text).responses.map((r) => JSON.parse(r.body) as Echo);
    expect(echoes.map((e) => e.url)).toEqual(Array.from({ length: 30 }, (_, i) => `/p${i}`));
    expect(echoes.every((e) => e.body === body)).toBe(true);
    expect(app.connections()).toBe(1);
  });

  it('forwards a chunked request body raw and a chunked response', async () => {
    const app = await startUpstream(cleanup, (req, res) => {
      const chunks: Buffer[] = [];
      req.on('data', (c: Buffer) => chunks.push(c));
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'text/plain', 'x-te': String(req.headers['transfer-encoding']), 'x-trailer': String(req.trailers['x-sum']) });
        res.write('got:');
        res.write(Buffer.concat(chunks).toString());
        res.end();
      });
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const request =
      'POST /up HTTP/1.1\r\nHost: app\r\nTransfer-Encoding: chunked\r\nTrailer: x-sum\r\n\r\n' + '5;ext=1\r\nhello\r\n' + '6\r\n world\r\n' + '0\r\nx-sum: 11\r\n\r\n';
    const result = await rawExchange(proxy.port, [request], responsesComplete(1));
    const [res] = readResponses(result.text).responses;
    expect(res?.status).toBe(200);
    expect(header(res, 'transfer-encoding')).toBe('chunked');
    expect(header(res, 'x-te')).toBe('chunked');
    expect(header(res, 'x-trailer')).toBe('11');
    expect(res?.body).toBe('got:hello world');
    expect(proxy.tel.requests[0]).toMatchObject({ requestBytes: 11, responseBytes: 15 });
  });

  it('serves an HTTP/1.0 client with keep-alive and without chunking', async () => {
    const app = await startUpstream(cleanup, (req, res) => {
      res.write(`version ${req.httpVersion}`);
      res.end();
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const request = 'GET /a HTTP/1.0\r\nConnection: keep-alive\r\n\r\n';
    const result = await rawExchange(proxy.port, [request], (t) => t.includes('version 1.0'));
    expect(result.text).not.toMatch(/transfer-encoding/i);
    expect(result.text).toMatch(/^HTTP\/1\.1 200 /);
    // The app answered without a length (HTTP/1.0): the body ends with the connection.
    expect(result.text.toLowerCase()).toContain('connection: close');
  });

  it('closes after answering a request with Connection: close', async () => {
    const app = await echoUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const result = await rawExchange(proxy.port, ['GET / HTTP/1.1\r\nHost: app\r\nConnection: close\r\n\r\n']);
    expect(result.closed).toBe(true);
    const [res] = readResponses(result.text).responses;
    expect(res?.status).toBe(200);
    expect(header(res, 'connection')).toBe('close');
    // The upstream connection is the proxy's own: it stays in the pool.
    expect(proxy.pool.stats().idle).toBe(1);
  });

  it('relays a HEAD response without a body', async () => {
    const app = await startUpstream(cleanup, (_req, res) => {
      res.writeHead(200, { 'content-length': '1234' });
      res.end();
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const result = await rawExchange(proxy.port, ['HEAD / HTTP/1.1\r\nHost: app\r\n\r\nGET / HTTP/1.1\r\nHost: app\r\n\r\n'], (t) => t.split('HTTP/1.1 200').length === 3);
    const heads = result.text.split('HTTP/1.1 200').length - 1;
    expect(heads).toBe(2);
    expect(result.text).toContain('content-length: 1234');
  });
});
