import { connect } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import { Cleanup, header, inboundDirection, rawExchange, readResponses, responsesComplete, startProxy, startUpstream, type TestProxy } from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

async function proxyToOkApp(limits: Parameters<typeof startProxy>[1]['limits'] = {}, immediate = false): Promise<{ proxy: TestProxy; requests: () => number }> {
  let requests = 0;
  const app = await startUpstream(cleanup, (req, res) => {
    requests++;
    req.resume();
    req.on('end', () => res.end('ok'));
  });
  const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port), limits, immediate });
  return { proxy, requests: () => requests };
}

async function refused(proxy: TestProxy, parts: Array<string | Buffer>) {
  const result = await rawExchange(proxy.port, parts);
  expect(result.closed).toBe(true);
  const [res] = readResponses(result.text).responses;
  return res;
}

describe('malformed requests: 400 DPE and close', () => {
  const cases: Array<[string, string]> = [
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX: 1\r\n 2\r\n\r\n'],
    ['both Content-Length and Transfer-Encoding (smuggling)', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n'],
    ['differing Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab'],
    ['unsupported transfer coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n'],
    ['missing Host', 'GET / HTTP/1.1\r\n\r\n'],
    ['a bad request target', 'GET foo HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['an https absolute-form target', 'GET https://a/ HTTP/1.1\r\nHost: a\r\n\r\n'],
    ['a malformed Host', 'GET / HTTP/1.1\r\nHost: a b\r\n\r\n'],
    ['bare LF line endings', 'GET / HTTP/1.1\nHost: a\n\n'],
  ];
  for (const [name, request] of cases) {
    it(name, async () => {
      const { proxy, requests } = await proxyToOkApp();
      const res = await refused(proxy, [request]);
      expect(res?.status).toBe(400);
      expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('DPE');
      expect(header(res, 'connection')).toBe('close');
      expect(requests()).toBe(0);
      expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('DPE');
      expect(proxy.tel.requests[0]?.labels.responseCode).toBe('400');
    });
  }

  it('a bad chunk size in the request body → 400 DPE', async () => {
    const { proxy } = await proxyToOkApp();
    const res = await refused(proxy, ['POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n', 'xyz\r\n']);
    expect(res?.status).toBe(400);
    expect(res?.body).toContain('invalid chunk size');
  });

  it('a smuggling attempt does not reach the app as a second request', async () => {
    const { proxy, requests } = await proxyToOkApp();
    const smuggle = 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 44\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /admin HTTP/1.1\r\nHost: a\r\n\r\n';
    const res = await refused(proxy, [smuggle]);
    expect(res?.status).toBe(400);
    expect(requests()).toBe(0);
  });
});

describe('size limits', () => {
  it('more than maxHeaderCount fields → 431', async () => {
    const { proxy } = await proxyToOkApp({ maxHeaderCount: 5 });
    const res = await refused(proxy, ['GET / HTTP/1.1\r\nHost: a\r\n' + 'X: 1\r\n'.repeat(5) + '\r\n']);
    expect(res?.status).toBe(431);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('DPE');
  });

  it('a head over maxHeaderBytes → 431, also when it never ends', async () => {
    const { proxy } = await proxyToOkApp({ maxHeaderBytes: 1024 });
    const complete = await refused(proxy, [`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(2000)}\r\n\r\n`]);
    expect(complete?.status).toBe(431);
    const endless = await refused(proxy, [`GET / HTTP/1.1\r\nHost: a\r\nX: ${'a'.repeat(2000)}`]);
    expect(endless?.status).toBe(431);
  });

  it('a head split into tiny writes is held up to the limit, then refused', async () => {
    const { proxy } = await proxyToOkApp({ maxHeaderBytes: 512 });
    const parts = ['GET / HTTP/1.1\r\nHost: a\r\n', ...Array.from({ length: 60 }, () => 'X-Filler: 0123456789\r\n')];
    const res = await refused(proxy, parts);
    expect(res?.status).toBe(431);
  });

  it('a request target over maxUrlLength → 414, also before the head is complete', async () => {
    const { proxy } = await proxyToOkApp({ maxUrlLength: 100 });
    const complete = await refused(proxy, [`GET /${'a'.repeat(200)} HTTP/1.1\r\nHost: a\r\n\r\n`]);
    expect(complete?.status).toBe(414);
    const partial = await refused(proxy, [`GET /${'a'.repeat(300)}`]);
    expect(partial?.status).toBe(414);
  });
});

describe('timeouts', () => {
  it('a head that does not complete within requestHeaderTimeoutMs → 408 and close (slowloris)', async () => {
    const { proxy, requests } = await proxyToOkApp({ requestHeaderTimeoutMs: 200 });
    const socket = connect(proxy.port, '127.0.0.1');
    cleanup.add(() => {
      socket.destroy();
    });
    const received: Buffer[] = [];
    socket.on('data', (c: Buffer) => received.push(c));
    socket.on('error', () => {});
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.write('GET / HTTP/1.1\r\n');
    // Keep trickling bytes: each is progress for a naive timer, not for a head deadline.
    const trickle = setInterval(() => {
      if (!socket.destroyed) socket.write('X-Slow: 1\r\n');
    }, 50);
    cleanup.add(() => clearInterval(trickle));
    await closed;
    clearInterval(trickle);
    const [res] = readResponses(Buffer.concat(received).toString('latin1')).responses;
    expect(res?.status).toBe(408);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('RT');
    expect(requests()).toBe(0);
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('RT');
  });

  it('an idle keep-alive connection is closed after idleTimeoutMs', async () => {
    const { proxy } = await proxyToOkApp({ idleTimeoutMs: 200 });
    const result = await rawExchange(proxy.port, ['GET / HTTP/1.1\r\nHost: a\r\n\r\n']);
    expect(result.closed).toBe(true);
    expect(readResponses(result.text).responses[0]?.status).toBe(200);
  });

  it('a connection handed over before any byte is closed after idleTimeoutMs', async () => {
    const { proxy } = await proxyToOkApp({ idleTimeoutMs: 200 }, true);
    const result = await rawExchange(proxy.port, []);
    expect(result.closed).toBe(true);
    expect(result.data.length).toBe(0);
  });
});

describe('robustness', () => {
  it('survives random and mutated input, then serves a valid request', async () => {
    const { proxy } = await proxyToOkApp({ requestHeaderTimeoutMs: 300 });
    const valid = 'POST /x HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n';
    let seed = 42;
    const random = (n: number): number => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed % n;
    };
    for (let round = 0; round < 200; round++) {
      const bytes = Buffer.from(valid, 'latin1');
      if (round % 3 === 0) {
        for (let i = 0; i < bytes.length; i++) bytes[i] = random(256);
      } else {
        for (let k = 0; k < 1 + random(4); k++) bytes[random(bytes.length)] = random(256);
      }
      await rawExchange(proxy.port, [bytes], (t) => readResponses(t).responses.length > 0, { endAfterWrite: true });
    }
    const result = await rawExchange(proxy.port, ['GET / HTTP/1.1\r\nHost: a\r\n\r\n'], responsesComplete(1));
    expect(readResponses(result.text).responses[0]?.status).toBe(200);
  });
});
