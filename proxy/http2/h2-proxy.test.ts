import { createHash } from 'node:crypto';
import http2, { type ClientHttp2Session } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import { SOURCE_NAMESPACE_HEADER, SOURCE_SERVICE_HEADER, SOURCE_VERSION_HEADER } from '../telemetry/attributes.js';
import { echoBody, h2Call, h2Connect, startH2Upstream, type H2Upstream, type StreamHandler } from './h2-peers.test-helper.js';
import { inboundDirection, outboundDirection, service, startProxy, unusedPort, type ProxyOptions, type RunningProxy } from './proxy-fixture.test-helper.js';
import { TEST_IDENTITY } from './telemetry.test-helper.js';

const MiB = 1024 * 1024;
/** Bytes allowed between what one side has written and what the other has read: a few flow-control windows and buffers, far below the body. */
const IN_FLIGHT_BOUND = 4 * MiB;

describe('plain HTTP/2 through the proxy', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function upstream(handler: StreamHandler): Promise<H2Upstream> {
    const server = await startH2Upstream(handler);
    cleanups.push(() => server.close());
    return server;
  }

  async function proxy(options: ProxyOptions): Promise<{ proxy: RunningProxy; client: ClientHttp2Session }> {
    const running = await startProxy(options);
    cleanups.push(() => running.close());
    const client = h2Connect(running.port);
    cleanups.push(() => void client.destroy());
    return { proxy: running, client };
  }

  const web = (port: number): ProxyOptions => ({ direction: outboundDirection([service('web', 8080, [port], 'http2')]) });

  it('forwards a GET and relays status, headers and body', async () => {
    const up = await upstream((stream, headers) => {
      stream.respond({ ':status': 201, 'content-type': 'text/plain', 'x-served-by': 'up' });
      stream.end(`hello ${headers[':path']}`);
    });
    const { proxy: p, client } = await proxy(web(up.port));
    const res = await h2Call(client, { ':method': 'GET', ':path': '/greet?name=x', ':authority': 'web:8080', 'user-agent': 'h2-test' });
    expect(res.headers?.[':status']).toBe(201);
    expect(res.headers?.['x-served-by']).toBe('up');
    expect(res.body.toString()).toBe('hello /greet?name=x');
    const [span] = await p.spansAfter(0, 1);
    expect(span?.name).toBe('GET');
    expect(span?.kind).toBe('client');
    expect(span?.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': '/greet',
      'url.query': 'name=x',
      'http.response.status_code': 201,
      'http.response.body.size': 'hello /greet?name=x'.length,
      'tracemesh.protocol': 'http2',
      'tracemesh.destination.service': 'web',
      'user_agent.original': 'h2-test',
      'server.port': 8080,
    });
    expect(span?.attributes['rpc.system']).toBeUndefined();
  });

  it('streams a large POST body both ways intact, with trailers', async () => {
    const up = await upstream(echoBody);
    const { proxy: p, client } = await proxy(web(up.port));
    const body = Buffer.alloc(8 * MiB);
    for (let i = 0; i < body.length; i += 4) body.writeUInt32LE(i, i);
    const res = await h2Call(client, { ':method': 'POST', ':path': '/echo', ':authority': 'web:8080' }, body);
    expect(res.headers?.[':status']).toBe(200);
    expect(res.body.length).toBe(body.length);
    expect(createHash('sha256').update(res.body).digest('hex')).toBe(createHash('sha256').update(body).digest('hex'));
    expect(res.trailers?.['x-body-size']).toBe(String(body.length));
    const [span] = await p.spansAfter(0, 1);
    expect(span?.attributes['http.request.body.size']).toBe(body.length);
    expect(span?.attributes['http.response.body.size']).toBe(body.length);
  });

  it('relays request trailers to the upstream', async () => {
    let seen: http2.IncomingHttpHeaders | undefined;
    const up = await upstream((stream) => {
      stream.on('trailers', (trailers) => (seen = trailers));
      stream.resume();
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end('ok');
      });
    });
    const { client } = await proxy(web(up.port));
    const stream = client.request({ ':method': 'POST', ':path': '/t', ':authority': 'web:8080' }, { waitForTrailers: true });
    stream.on('wantTrailers', () => stream.sendTrailers({ 'x-checksum': 'abc' }));
    stream.end('payload');
    stream.resume();
    await new Promise((resolve) => stream.on('close', resolve));
    expect(seen?.['x-checksum']).toBe('abc');
  });

  it('slows the upstream writer to a slow downstream reader (bounded memory)', async () => {
    const total = 24 * MiB;
    let written = 0;
    const up = await upstream((stream) => {
      stream.respond({ ':status': 200 });
      const chunk = Buffer.alloc(64 * 1024, 7);
      const pump = (): void => {
        while (written < total) {
          written += chunk.length;
          if (!stream.write(chunk)) {
            stream.once('drain', pump);
            return;
          }
        }
        stream.end();
      };
      pump();
    });
    const { client } = await proxy(web(up.port));
    const stream = client.request({ ':method': 'GET', ':path': '/big', ':authority': 'web:8080' });
    let consumed = 0;
    let maxInFlight = 0;
    let nextPause = MiB;
    stream.on('data', (chunk: Buffer) => {
      consumed += chunk.length;
      if (consumed >= nextPause) {
        nextPause += MiB;
        stream.pause();
        // The slow reader: each pause gives a writer without backpressure time to run far ahead.
        setTimeout(() => {
          maxInFlight = Math.max(maxInFlight, written - consumed);
          stream.resume();
        }, 20);
      }
    });
    await new Promise((resolve) => stream.on('end', resolve));
    expect(consumed).toBe(total);
    expect(maxInFlight).toBeLessThan(IN_FLIGHT_BOUND);
  });

  it('slows the downstream writer to a slow upstream reader (bounded memory)', async () => {
    const total = 24 * MiB;
    let sent = 0;
    let consumed = 0;
    let maxInFlight = 0;
    const up = await upstream((stream) => {
      let nextPause = MiB;
      stream.on('data', (chunk: Buffer) => {
        consumed += chunk.length;
        if (consumed >= nextPause) {
          nextPause += MiB;
          stream.pause();
          setTimeout(() => {
            maxInFlight = Math.max(maxInFlight, sent - consumed);
            stream.resume();
          }, 20);
        }
      });
      stream.on('end', () => {
        stream.respond({ ':status': 200 });
        stream.end(String(consumed));
      });
    });
    const { client } = await proxy(web(up.port));
    const stream = client.request({ ':method': 'POST', ':path': '/upload', ':authority': 'web:8080' });
    const chunk = Buffer.alloc(64 * 1024, 3);
    const pump = (): void => {
      while (sent < total) {
        sent += chunk.length;
        if (!stream.write(chunk)) {
          stream.once('drain', pump);
          return;
        }
      }
      stream.end();
    };
    pump();
    let answer = '';
    stream.setEncoding('utf8');
    stream.on('data', (text: string) => (answer += text));
    await new Promise((resolve) => stream.on('end', resolve));
    expect(answer).toBe(String(total));
    expect(maxInFlight).toBeLessThan(IN_FLIGHT_BOUND);
  });

  it('propagates trace context, request id, forwarding and peer metadata upstream', async () => {
    const up = await upstream((stream) => {
      stream.respond({ ':status': 204 });
    });
    const { proxy: p, client } = await proxy(web(up.port));
    const traceId = '0af7651916cd43dd8448eb211c80319c';
    await h2Call(client, {
      ':method': 'GET',
      ':path': '/',
      ':authority': 'web:8080',
      'x-b3-traceid': traceId,
      'x-b3-spanid': '00f067aa0ba902b7',
      'x-b3-sampled': '1',
      'x-forwarded-for': '192.0.2.1',
    });
    await h2Call(client, { ':method': 'GET', ':path': '/', ':authority': 'web:8080', 'x-request-id': 'kept-id' });
    const [first, second] = await p.spansAfter(0, 2);
    const [b3Request, plainRequest] = up.requests;
    expect(first?.traceId).toBe(traceId);
    expect(first?.parentSpanId).toBe('00f067aa0ba902b7');
    expect(b3Request?.['traceparent']).toBe(`00-${traceId}-${first?.spanId}-01`);
    expect(b3Request?.['b3']).toBe(`${traceId}-${first?.spanId}-1`);
    expect(b3Request?.['x-b3-traceid']).toBeUndefined();
    expect(b3Request?.['x-b3-spanid']).toBeUndefined();
    expect(b3Request?.['x-forwarded-for']).toBe('192.0.2.1, 127.0.0.1');
    expect(b3Request?.['x-request-id']).toMatch(/^[0-9a-f-]{36}$/);
    expect(b3Request?.[SOURCE_SERVICE_HEADER]).toBe(TEST_IDENTITY.service);
    expect(b3Request?.[SOURCE_NAMESPACE_HEADER]).toBe(TEST_IDENTITY.namespace);
    expect(b3Request?.[SOURCE_VERSION_HEADER]).toBe(TEST_IDENTITY.version);
    // No incoming context: a new trace, and no b3 invented.
    expect(second?.parentSpanId).toBe('');
    expect(plainRequest?.['traceparent']).toBe(`00-${second?.traceId}-${second?.spanId}-01`);
    expect(plainRequest?.['b3']).toBeUndefined();
    expect(plainRequest?.['x-request-id']).toBe('kept-id');
    expect(second?.attributes['tracemesh.request_id']).toBe('kept-id');
  });

  it('inbound: serves the local app, reads and strips the caller’s peer metadata (SERVER span)', async () => {
    const up = await upstream((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('app');
    });
    const identity = { service: 'ratings', namespace: 'default', version: 'v3' };
    const { proxy: p, client } = await proxy({ direction: inboundDirection(identity, up.port), identity });
    const res = await h2Call(client, {
      ':method': 'GET',
      ':path': '/ratings/1',
      ':authority': 'anything.example:9080',
      [SOURCE_SERVICE_HEADER]: 'reviews',
      [SOURCE_NAMESPACE_HEADER]: 'shop',
      [SOURCE_VERSION_HEADER]: 'v2',
    });
    expect(res.body.toString()).toBe('app');
    expect(up.requests[0]?.[SOURCE_SERVICE_HEADER]).toBeUndefined();
    expect(up.requests[0]?.[SOURCE_NAMESPACE_HEADER]).toBeUndefined();
    const [span] = await p.spansAfter(0, 1);
    expect(span?.kind).toBe('server');
    expect(span?.attributes).toMatchObject({
      'tracemesh.direction': 'inbound',
      'tracemesh.source.service': 'reviews',
      'tracemesh.source.namespace': 'shop',
      'tracemesh.source.version': 'v2',
      'tracemesh.destination.service': 'ratings',
      'tracemesh.destination.version': 'v3',
    });
  });

  it('answers 404 with flag NR for an authority that names no service', async () => {
    const up = await upstream(echoBody);
    const { proxy: p, client } = await proxy(web(up.port));
    const res = await h2Call(client, { ':method': 'GET', ':path': '/', ':authority': 'elsewhere' });
    expect(res.headers?.[':status']).toBe(404);
    expect(res.headers?.[RESPONSE_FLAGS_HEADER]).toBe('NR');
    expect(res.body.toString()).toBe('no route to service: elsewhere:80 (NR)\n');
    const [span] = await p.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('NR');
    expect(up.requests.length).toBe(0);
  });

  it('answers 503 with flag UF when the upstream refuses, even while a body is being sent', async () => {
    const { proxy: p, client } = await proxy(web(await unusedPort()));
    const res = await h2Call(client, { ':method': 'POST', ':path': '/', ':authority': 'web:8080' }, Buffer.alloc(256 * 1024));
    expect(res.headers?.[':status']).toBe(503);
    expect(res.headers?.[RESPONSE_FLAGS_HEADER]).toBe('UF');
    expect(res.body.toString()).toMatch(/^upstream connect error: .*ECONNREFUSED.* \(UF\)\n$/);
    const [span] = await p.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UF');
    expect(span?.attributes['http.response.status_code']).toBe(503);
  });

  it('answers 504 with flag UT when no response head comes within the request timeout', async () => {
    const up = await upstream(() => {});
    const { proxy: p, client } = await proxy({ ...web(up.port), limits: { requestTimeoutMs: 250 } });
    const res = await h2Call(client, { ':method': 'GET', ':path': '/slow', ':authority': 'web:8080' });
    expect(res.headers?.[':status']).toBe(504);
    expect(res.headers?.[RESPONSE_FLAGS_HEADER]).toBe('UT');
    const [span] = await p.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UT');
  });

  it('honours grpc-timeout as the call deadline instead of the request timeout', async () => {
    const up = await upstream(() => {});
    const { proxy: p, client } = await proxy(web(up.port)); // requestTimeoutMs: 15 s
    const res = await h2Call(
      client,
      { ':method': 'POST', ':path': '/demo.Echo/Unary', ':authority': 'web:8080', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '200m' },
      Buffer.from([0, 0, 0, 0, 0]),
    );
    expect(res.headers?.[':status']).toBe(200);
    expect(res.headers?.['grpc-status']).toBe('4');
    expect(res.headers?.[RESPONSE_FLAGS_HEADER]).toBe('UT');
    expect(decodeURIComponent(String(res.headers?.['grpc-message']))).toBe('upstream request timeout: grpc-timeout of 200 ms exceeded');
    expect(up.requests[0]?.['grpc-timeout']).toBe('200m');
    const [span] = await p.spansAfter(0, 1);
    expect(span?.attributes['rpc.grpc.status_code']).toBe(4);
  });

  it('resets the downstream stream with flag UC when the upstream dies mid-response', async () => {
    const up = await upstream((stream) => {
      stream.respond({ ':status': 200 });
      stream.write(Buffer.alloc(1024, 1));
    });
    const { proxy: p, client } = await proxy(web(up.port));
    const stream = client.request({ ':method': 'GET', ':path': '/', ':authority': 'web:8080' });
    stream.on('error', () => {});
    stream.once('data', () => up.kill());
    stream.resume();
    await new Promise((resolve) => stream.on('close', resolve));
    expect(stream.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
    const [span] = await p.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UC');
    expect(span?.attributes['http.response.status_code']).toBe(200);
    expect(span?.status).toBe('error');
  });

  it('resets the downstream stream with flag UC when the upstream resets its stream', async () => {
    const up = await upstream((stream) => {
      stream.respond({ ':status': 200 });
      // destroy(): a close() from the write callback lets node send END_STREAM first.
      stream.write(Buffer.alloc(1024, 1), () => stream.destroy(new Error('handler failed')));
    });
    const { proxy: p, client } = await proxy(web(up.port));
    const res = await h2Call(client, { ':method': 'GET', ':path': '/', ':authority': 'web:8080' });
    expect(res.rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
    const [span] = await p.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UC');
    expect(span?.statusMessage).toMatch(/^upstream connection terminated: .*NGHTTP2_INTERNAL_ERROR/);
    // The session survives a stream reset: the next request reuses it.
    expect((await h2Call(client, { ':method': 'GET', ':path': '/', ':authority': 'web:8080' })).rstCode).toBe(http2.constants.NGHTTP2_INTERNAL_ERROR);
    expect(p.pool.stats().sessionsOpened).toBe(1);
  });

  it('passes HEAD and bodiless responses without hanging', async () => {
    const up = await upstream((stream, headers) => {
      stream.respond({ ':status': headers[':method'] === 'HEAD' ? 200 : 304, 'content-length': '5' });
      stream.end();
    });
    const { client } = await proxy(web(up.port));
    const head = await h2Call(client, { ':method': 'HEAD', ':path': '/', ':authority': 'web:8080' });
    expect(head.headers?.[':status']).toBe(200);
    expect(head.headers?.['content-length']).toBe('5');
    const notModified = await h2Call(client, { ':method': 'GET', ':path': '/', ':authority': 'web:8080' });
    expect(notModified.headers?.[':status']).toBe(304);
    expect(notModified.rstCode).toBe(0);
  });
});
