import type { Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import {
  Cleanup,
  closedPort,
  header,
  inboundDirection,
  outboundDirection,
  rawExchange,
  readResponses,
  responsesComplete,
  service,
  startProxy,
  startRawUpstream,
} from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const GET = 'GET /x HTTP/1.1\r\nHost: app\r\n\r\n';

async function answerOf(port: number, request = GET) {
  const result = await rawExchange(port, [request], responsesComplete(1));
  const res = readResponses(result.text).responses[0];
  return res;
}

/** An upstream that reads a request head and then does `act` with the socket. */
function onRequest(act: (socket: Socket) => void): (socket: Socket) => void {
  return (socket) => {
    let seen = '';
    socket.on('data', (chunk: Buffer) => {
      seen += chunk.toString('latin1');
      if (seen.includes('\r\n\r\n')) {
        seen = '';
        act(socket);
      }
    });
  };
}

describe('upstream failures map to the wire (errors-to-wire.ts)', () => {
  it('connection refused → 503 UF', async () => {
    const port = await closedPort();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port) });
    const res = await answerOf(proxy.port);
    expect(res?.status).toBe(503);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('UF');
    expect(res?.body).toContain('upstream connect error');
    expect(res?.body).toContain('ECONNREFUSED');
    const span = proxy.tel.spans[0];
    expect(span?.status).toBe('error');
    expect(span?.attributes['tracemesh.response_flags']).toBe('UF');
    expect(span?.attributes['error.type']).toBe('UF');
    expect(span?.attributes['http.response.status_code']).toBe(503);
    expect(proxy.tel.requests[0]?.labels.responseFlags).toBe('UF');
  });

  it('connection reset before the response → 502 UC', async () => {
    const upstream = await startRawUpstream(cleanup, onRequest((socket) => socket.resetAndDestroy()));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const res = await answerOf(proxy.port);
    expect(res?.status).toBe(502);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('UC');
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('UC');
  });

  it('connection closed (FIN) before the response → 502 UC, and the client connection stays usable', async () => {
    let calls = 0;
    const upstream = await startRawUpstream(
      cleanup,
      onRequest((socket) => {
        calls++;
        if (calls === 1) socket.end();
        else socket.end('HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok');
      }),
    );
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const result = await rawExchange(proxy.port, [GET + GET], responsesComplete(2));
    const [first, second] = readResponses(result.text).responses;
    expect(first?.status).toBe(502);
    expect(header(first, RESPONSE_FLAGS_HEADER)).toBe('UC');
    expect(second?.status).toBe(200);
  });

  it('no response within requestTimeoutMs → 504 UT', async () => {
    const upstream = await startRawUpstream(cleanup, () => {
      // reads, never answers
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port), limits: { requestTimeoutMs: 200 } });
    const res = await answerOf(proxy.port);
    expect(res?.status).toBe(504);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('UT');
    expect(res?.body).toContain('within 200 ms');
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('UT');
    // The abandoned upstream connection is closed, not pooled.
    expect(proxy.pool.stats().idle).toBe(0);
  });

  it('garbage instead of a response → 502 UPE', async () => {
    const upstream = await startRawUpstream(cleanup, onRequest((socket) => socket.write('SSH-2.0-OpenSSH_9.2\r\n\r\n')));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const res = await answerOf(proxy.port);
    expect(res?.status).toBe(502);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('UPE');
  });

  it('a response head larger than maxHeaderBytes → 502 UPE', async () => {
    const upstream = await startRawUpstream(cleanup, onRequest((socket) => socket.write(`HTTP/1.1 200 OK\r\nX-Big: ${'a'.repeat(5000)}\r\n`)));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port), limits: { maxHeaderBytes: 4096 } });
    const res = await answerOf(proxy.port);
    expect(res?.status).toBe(502);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('UPE');
  });

  it('a Content-Length body cut short → the client sees the connection end early; span says UC', async () => {
    const upstream = await startRawUpstream(cleanup, onRequest((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\n0123456789');
      setImmediate(() => socket.destroy());
    }));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const result = await rawExchange(proxy.port, [GET]);
    expect(result.closed).toBe(true);
    expect(result.text).toContain('0123456789');
    expect(readResponses(result.text).responses).toHaveLength(0); // incomplete
    const span = proxy.tel.spans[0];
    expect(span?.status).toBe('error');
    expect(span?.attributes['tracemesh.response_flags']).toBe('UC');
    expect(span?.attributes['error.type']).toBe('UC');
    expect(span?.attributes['http.response.status_code']).toBe(200);
  });

  it('a chunked body cut short → no terminating chunk reaches the client', async () => {
    const upstream = await startRawUpstream(cleanup, onRequest((socket) => {
      socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n');
      setImmediate(() => socket.destroy());
    }));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const result = await rawExchange(proxy.port, [GET]);
    expect(result.closed).toBe(true);
    expect(result.text).toContain('5\r\nhello\r\n');
    expect(result.text).not.toContain('0\r\n\r\n');
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('UC');
  });

  it('a malformed chunked response body → connection cut, span says UPE', async () => {
    const upstream = await startRawUpstream(cleanup, onRequest((socket) => socket.write('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n')));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const result = await rawExchange(proxy.port, [GET]);
    expect(result.closed).toBe(true);
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('UPE');
  });

  it('a body until close (no length) is relayed whole and the client connection closes after it', async () => {
    const upstream = await startRawUpstream(cleanup, onRequest((socket) => socket.end('HTTP/1.1 200 OK\r\n\r\nall of it')));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    const result = await rawExchange(proxy.port, [GET]);
    expect(result.closed).toBe(true);
    expect(result.text).toMatch(/connection: close\r\n\r\nall of it$/);
    expect(proxy.tel.spans[0]?.status).toBe('unset');
    expect(proxy.tel.spans[0]?.attributes['http.response.body.size']).toBe(9);
  });
});

describe('stream idle timeout', () => {
  it('no response head and no request timeout: 408 SI after streamIdleTimeoutMs', async () => {
    const upstream = await startRawUpstream(cleanup, () => {});
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port), limits: { requestTimeoutMs: 0, streamIdleTimeoutMs: 200 } });
    const result = await rawExchange(proxy.port, [GET]);
    expect(result.closed).toBe(true);
    const [res] = readResponses(result.text).responses;
    expect(res?.status).toBe(408);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('SI');
  });

  it('a response body that stalls: the client connection is cut, span says SI', async () => {
    const upstream = await startRawUpstream(cleanup, onRequest((socket) => socket.write('HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nstart')));
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port), limits: { streamIdleTimeoutMs: 200 } });
    const result = await rawExchange(proxy.port, [GET]);
    expect(result.closed).toBe(true);
    expect(result.text.endsWith('start')).toBe(true);
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('SI');
  });
});

describe('routing failures', () => {
  it('unknown service → 404 NR', async () => {
    const direction = outboundDirection([service('reviews', 9080, [{ port: 1 }])]);
    const proxy = await startProxy(cleanup, { direction });
    const res = await answerOf(proxy.port, 'GET http://ratings:9080/x HTTP/1.1\r\nHost: ratings:9080\r\n\r\n');
    expect(res?.status).toBe(404);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('NR');
    expect(res?.body).toContain('ratings:9080');
    expect(proxy.tel.spans[0]?.attributes['tracemesh.response_flags']).toBe('NR');
  });

  it('service without endpoints → 503 UH', async () => {
    const direction = outboundDirection([service('reviews', 9080, [])]);
    const proxy = await startProxy(cleanup, { direction });
    const res = await answerOf(proxy.port, 'GET http://reviews:9080/x HTTP/1.1\r\nHost: reviews:9080\r\n\r\n');
    expect(res?.status).toBe(503);
    expect(header(res, RESPONSE_FLAGS_HEADER)).toBe('UH');
    expect(proxy.tel.spans[0]?.attributes['tracemesh.destination.service']).toBe('reviews');
  });

  it('an error answer to a request with an unread body closes the connection', async () => {
    const direction = outboundDirection([]);
    const proxy = await startProxy(cleanup, { direction });
    const result = await rawExchange(proxy.port, ['POST http://nowhere/x HTTP/1.1\r\nHost: nowhere\r\nContent-Length: 10\r\n\r\n01234']);
    expect(result.closed).toBe(true);
    const [res] = readResponses(result.text).responses;
    expect(res?.status).toBe(404);
    expect(header(res, 'connection')).toBe('close');
  });

  it('an error answer to a HEAD request has no body', async () => {
    const proxy = await startProxy(cleanup, { direction: outboundDirection([]) });
    const result = await rawExchange(proxy.port, ['HEAD http://nowhere/x HTTP/1.1\r\nHost: nowhere\r\n\r\nGET http://nowhere/y HTTP/1.1\r\nHost: nowhere\r\n\r\n'], (t) => t.split('HTTP/1.1 404').length === 3 && t.endsWith('(NR)\n'));
    const { responses } = readResponses(result.text, 1);
    expect(responses.map((r) => [r.status, r.body])).toEqual([
      [404, ''],
      [404, 'no route to service: nowhere:80 (NR)\n'],
    ]);
  });
});
