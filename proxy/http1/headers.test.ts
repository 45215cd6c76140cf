import type { IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, header, inboundDirection, rawExchange, readResponses, responsesComplete, startProxy, startUpstream } from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** An upstream that records each request's headers and answers with the given extra response fields. */
async function recordingUpstream(responseFields: Array<[string, string]> = []) {
  const seen: IncomingHttpHeaders[] = [];
  const upstream = await startUpstream(cleanup, (req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      for (const [name, value] of responseFields) res.setHeader(name, value);
      res.setHeader('content-length', '2');
      res.end('ok');
    });
  });
  return { upstream, seen };
}

async function send(port: number, head: string) {
  const result = await rawExchange(port, [head], responsesComplete(1));
  const [res] = readResponses(result.text).responses;
  return res;
}

describe('hop-by-hop fields', () => {
  it('drops Connection, the fields it names, Keep-Alive, Proxy-Connection, TE and a stray Upgrade; keeps end-to-end fields', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const res = await send(
      proxy.port,
      'GET / HTTP/1.1\r\nHost: app\r\nConnection: keep-alive, X-Hop\r\nX-Hop: secret\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\n' +
        'TE: gzip\r\nUpgrade: h2c\r\nTrailer: x-sum\r\nProxy-Authorization: Basic Zm9v\r\nX-End: kept\r\n\r\n',
    );
    expect(res?.status).toBe(200);
    const h = seen[0] as IncomingHttpHeaders;
    expect(h['x-hop']).toBeUndefined();
    expect(h['keep-alive']).toBeUndefined();
    expect(h['proxy-connection']).toBeUndefined();
    expect(h['te']).toBeUndefined();
    expect(h['upgrade']).toBeUndefined();
    // node:http reports the connection's own Connection field; only the upstream proxy connection's default is there.
    expect(h['connection']).toBeUndefined();
    expect(h['trailer']).toBe('x-sum');
    expect(h['x-end']).toBe('kept');
    // Inbound: Proxy-Authorization was not meant for this proxy.
    expect(h['proxy-authorization']).toBe('Basic Zm9v');
  });

  it('keeps TE: trailers', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, 'GET / HTTP/1.1\r\nHost: app\r\nTE: trailers\r\nConnection: TE\r\n\r\n');
    expect(seen[0]?.['te']).toBe('trailers');
  });

  it('drops hop-by-hop response fields and the fields the response Connection names', async () => {
    const { upstream } = await recordingUpstream([
      ['connection', 'x-upstream-hop'],
      ['x-upstream-hop', '1'],
      ['keep-alive', 'timeout=5'],
      ['x-end', 'kept'],
    ]);
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const res = await send(proxy.port, 'GET / HTTP/1.1\r\nHost: app\r\n\r\n');
    expect(header(res, 'x-upstream-hop')).toBeUndefined();
    expect(header(res, 'keep-alive')).toBeUndefined();
    expect(header(res, 'connection')).toBeUndefined();
    expect(header(res, 'x-end')).toBe('kept');
    expect(res?.body).toBe('ok');
  });

  it('keeps the field names and order as the client sent them', async () => {
    const raw: string[][] = [];
    const upstream = await startUpstream(cleanup, (req, res) => {
      raw.push(req.rawHeaders);
      res.end('ok');
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, 'GET / HTTP/1.1\r\nHOST: app\r\nX-CamelCase: A\r\nconnection: close\r\nx-lower: b\r\n\r\n');
    const names = (raw[0] ?? []).filter((_, i) => i % 2 === 0);
    expect(names.slice(0, 3)).toEqual(['HOST', 'X-CamelCase', 'x-lower']);
  });
});

describe('forwarding fields', () => {
  it('creates x-forwarded-for, x-forwarded-proto and x-request-id', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, 'GET / HTTP/1.1\r\nHost: app\r\nX-Forwarded-Proto: https\r\n\r\n');
    const h = seen[0] as IncomingHttpHeaders;
    expect(h['x-forwarded-for']).toBe('127.0.0.1');
    expect(h['x-forwarded-proto']).toBe('http');
    expect(h['x-request-id']).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(proxy.tel.spans[0]?.attributes['tracemesh.request_id']).toBe(h['x-request-id']);
  });

  it('appends to x-forwarded-for (all of its lines) and keeps the client x-request-id', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, 'GET / HTTP/1.1\r\nHost: app\r\nX-Forwarded-For: 10.0.0.1\r\nX-Forwarded-For: 10.0.0.2, 10.0.0.3\r\nX-Request-Id: req-42\r\n\r\n');
    const h = seen[0] as IncomingHttpHeaders;
    expect(h['x-forwarded-for']).toBe('10.0.0.1, 10.0.0.2, 10.0.0.3, 127.0.0.1');
    expect(h['x-request-id']).toBe('req-42');
    expect(proxy.tel.accessLog[0]?.request_id).toBe('req-42');
  });
});
