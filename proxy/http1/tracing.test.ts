import type { IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import {
  Cleanup,
  inboundDirection,
  outboundDirection,
  rawExchange,
  readResponses,
  responsesComplete,
  service,
  startProxy,
  startUpstream,
} from './proxy-harness.test-helper.js';
import { TEST_IDENTITY } from './test-telemetry.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';

async function recordingUpstream() {
  const seen: IncomingHttpHeaders[] = [];
  const upstream = await startUpstream(cleanup, (req, res) => {
    seen.push(req.headers);
    res.setHeader('content-length', '2');
    res.end('ok');
  });
  return { upstream, seen };
}

async function send(port: number, head: string): Promise<number> {
  const result = await rawExchange(port, [head], responsesComplete(1));
  return readResponses(result.text).responses[0]?.status ?? 0;
}

describe('trace context', () => {
  it('continues an incoming traceparent: the upstream sees this proxy span as parent, tracestate unchanged', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, `GET / HTTP/1.1\r\nHost: app\r\ntraceparent: 00-${TRACE_ID}-${PARENT_ID}-01\r\ntracestate: vendor=a,other=b\r\n\r\n`);
    const span = proxy.tel.spans[0];
    expect(span?.traceId).toBe(TRACE_ID);
    expect(span?.parentSpanId).toBe(PARENT_ID);
    expect(span?.spanId).toMatch(/^[0-9a-f]{16}$/);
    expect(span?.spanId).not.toBe(PARENT_ID);
    expect(span?.traceState).toBe('vendor=a,other=b');
    expect(seen[0]?.['traceparent']).toBe(`00-${TRACE_ID}-${span?.spanId}-01`);
    expect(seen[0]?.['tracestate']).toBe('vendor=a,other=b');
  });

  it('starts a trace when none comes in', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, 'GET / HTTP/1.1\r\nHost: app\r\n\r\n');
    const span = proxy.tel.spans[0];
    expect(span?.parentSpanId).toBe('');
    expect(span?.traceId).toMatch(/^[0-9a-f]{32}$/);
    expect(seen[0]?.['traceparent']).toBe(`00-${span?.traceId}-${span?.spanId}-01`);
    expect(seen[0]?.['tracestate']).toBeUndefined();
  });

  it('starts a trace when the incoming traceparent is invalid', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, `GET / HTTP/1.1\r\nHost: app\r\ntraceparent: 00-${'0'.repeat(32)}-${PARENT_ID}-01\r\n\r\n`);
    const span = proxy.tel.spans[0];
    expect(span?.parentSpanId).toBe('');
    expect(span?.traceId).not.toBe('0'.repeat(32));
    expect(seen[0]?.['traceparent']).toBe(`00-${span?.traceId}-${span?.spanId}-01`);
  });

  it('propagates an unsampled trace without recording a span', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, `GET / HTTP/1.1\r\nHost: app\r\ntraceparent: 00-${TRACE_ID}-${PARENT_ID}-00\r\n\r\n`);
    expect(proxy.tel.spans).toHaveLength(0);
    expect(proxy.tel.requests).toHaveLength(1);
    expect(seen[0]?.['traceparent']).toMatch(new RegExp(`^00-${TRACE_ID}-[0-9a-f]{16}-00$`));
  });

  it('accepts a b3 single header and rewrites it with this proxy span', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, `GET / HTTP/1.1\r\nHost: app\r\nb3: ${TRACE_ID}-${PARENT_ID}-1\r\n\r\n`);
    const span = proxy.tel.spans[0];
    expect(span?.traceId).toBe(TRACE_ID);
    expect(span?.parentSpanId).toBe(PARENT_ID);
    expect(seen[0]?.['b3']).toBe(`${TRACE_ID}-${span?.spanId}-1`);
    expect(seen[0]?.['traceparent']).toBe(`00-${TRACE_ID}-${span?.spanId}-01`);
  });

  it('accepts B3 multi headers, replaces them with one b3 header', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(proxy.port, `GET / HTTP/1.1\r\nHost: app\r\nX-B3-TraceId: ${TRACE_ID}\r\nX-B3-SpanId: ${PARENT_ID}\r\nX-B3-Sampled: 1\r\nX-B3-ParentSpanId: 1111111111111111\r\n\r\n`);
    const span = proxy.tel.spans[0];
    expect(span?.parentSpanId).toBe(PARENT_ID);
    const h = seen[0] as IncomingHttpHeaders;
    expect(h['b3']).toBe(`${TRACE_ID}-${span?.spanId}-1`);
    expect(h['x-b3-traceid']).toBeUndefined();
    expect(h['x-b3-spanid']).toBeUndefined();
    expect(h['x-b3-sampled']).toBeUndefined();
    expect(h['x-b3-parentspanid']).toBeUndefined();
  });
});

describe('tracing off', () => {
  it('builds no span and passes trace fields through untouched; metrics still count the request', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port), tracing: false });
    await send(proxy.port, `GET / HTTP/1.1\r\nHost: app\r\ntraceparent: 00-${TRACE_ID}-${PARENT_ID}-01\r\nX-B3-TraceId: ${TRACE_ID}\r\n\r\n`);
    await send(proxy.port, 'GET / HTTP/1.1\r\nHost: app\r\n\r\n');
    expect(proxy.tel.spans).toHaveLength(0);
    expect(proxy.tel.requests).toHaveLength(2);
    expect(seen[0]?.['traceparent']).toBe(`00-${TRACE_ID}-${PARENT_ID}-01`);
    expect(seen[0]?.['x-b3-traceid']).toBe(TRACE_ID);
    expect(seen[0]?.['b3']).toBeUndefined();
    expect(seen[1]?.['traceparent']).toBeUndefined();
  });
});

describe('span attributes and peers', () => {
  it('an inbound request: server span with HTTP semantic conventions; peer metadata read and stripped', async () => {
    const { upstream, seen } = await recordingUpstream();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(upstream.port) });
    await send(
      proxy.port,
      'POST /api/items?limit=5 HTTP/1.1\r\nHost: reviews:9080\r\nUser-Agent: tester/1\r\nContent-Length: 4\r\n' +
        'x-tracemesh-source-service: frontend\r\nx-tracemesh-source-namespace: shop\r\nx-tracemesh-source-version: v7\r\n\r\nbody',
    );
    const span = proxy.tel.spans[0];
    expect(span?.kind).toBe('server');
    expect(span?.name).toBe('POST');
    expect(span?.status).toBe('unset');
    expect(span?.attributes).toMatchObject({
      'http.request.method': 'POST',
      'url.path': '/api/items',
      'url.query': 'limit=5',
      'url.scheme': 'http',
      'server.address': 'reviews',
      'server.port': 9080,
      'client.address': '127.0.0.1',
      'user_agent.original': 'tester/1',
      'http.response.status_code': 200,
      'http.request.body.size': 4,
      'http.response.body.size': 2,
      'network.protocol.version': '1.1',
      'tracemesh.direction': 'inbound',
      'tracemesh.protocol': 'http1',
      'tracemesh.source.service': 'frontend',
      'tracemesh.source.namespace': 'shop',
      'tracemesh.source.version': 'v7',
      'tracemesh.destination.service': TEST_IDENTITY.service,
      'tracemesh.destination.version': TEST_IDENTITY.version,
      'tracemesh.upstream.address': `127.0.0.1:${upstream.port}`,
      'tracemesh.response_flags': '-',
    });
    expect(seen[0]?.['x-tracemesh-source-service']).toBeUndefined();
    expect(seen[0]?.['x-tracemesh-source-version']).toBeUndefined();
    expect(proxy.tel.requests[0]?.labels).toMatchObject({ direction: 'inbound', sourceService: 'frontend', destinationService: TEST_IDENTITY.service, responseCode: '200', responseFlags: '-' });
    expect(proxy.tel.accessLog[0]).toMatchObject({ method: 'POST', path: '/api/items?limit=5', response_code: 200, bytes_received: 4, bytes_sent: 2 });
  });

  it('an outbound call: client span naming the destination; peer metadata added (not spoofable by the app)', async () => {
    const { upstream, seen } = await recordingUpstream();
    const direction = outboundDirection([service('reviews', 9080, [{ port: upstream.port, version: 'v2' }])]);
    const proxy = await startProxy(cleanup, { direction });
    await send(proxy.port, 'GET http://reviews:9080/r HTTP/1.1\r\nHost: reviews:9080\r\nx-tracemesh-source-service: evil\r\n\r\n');
    const span = proxy.tel.spans[0];
    expect(span?.kind).toBe('client');
    expect(span?.attributes).toMatchObject({
      'tracemesh.direction': 'outbound',
      'tracemesh.source.service': TEST_IDENTITY.service,
      'tracemesh.destination.service': 'reviews',
      'tracemesh.destination.namespace': 'default',
      'tracemesh.destination.version': 'v2',
      'peer.service': 'reviews',
      'network.peer.address': '127.0.0.1',
      'network.peer.port': upstream.port,
      'url.path': '/r',
    });
    const h = seen[0] as IncomingHttpHeaders;
    expect(h['x-tracemesh-source-service']).toBe(TEST_IDENTITY.service);
    expect(h['x-tracemesh-source-namespace']).toBe(TEST_IDENTITY.namespace);
    expect(h['x-tracemesh-source-version']).toBe(TEST_IDENTITY.version);
  });
});
