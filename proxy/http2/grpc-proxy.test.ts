import * as grpc from '@grpc/grpc-js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startEchoServer, EchoClient, type EchoServer } from './grpc-echo.test-helper.js';
import { inboundDirection, outboundDirection, service, startProxy, type RunningProxy } from './proxy-fixture.test-helper.js';
import { SOURCE_SERVICE_HEADER } from '../telemetry/attributes.js';

describe('gRPC through the outbound HTTP/2 path', () => {
  let echo: EchoServer;
  let proxy: RunningProxy;
  let client: EchoClient;

  beforeAll(async () => {
    echo = await startEchoServer();
    proxy = await startProxy({ direction: outboundDirection([service('echo', 50051, [echo.port])]) });
    client = new EchoClient(proxy.port, 'echo:50051');
  });

  afterAll(async () => {
    client.close();
    await proxy.close();
    await echo.close();
  });

  it('passes a unary call with its metadata, response headers and trailers', async () => {
    const metadata = new grpc.Metadata();
    metadata.set('x-echo', 'hello-metadata');
    const result = await client.unary({ text: 'hi' }, metadata);
    expect(result.status.code).toBe(grpc.status.OK);
    expect(result.value).toEqual({ text: 'echo:hi' });
    expect(result.headers?.get('x-echo')).toEqual(['hello-metadata']);
    expect(result.status.metadata.get('x-trailer')).toEqual(['unary-done']);
    const seen = echo.log.metadata.at(-1);
    expect(seen?.get('x-echo')).toEqual(['hello-metadata']);
    // The outbound proxy tells the next hop who calls.
    expect(seen?.get(SOURCE_SERVICE_HEADER)).toEqual(['productpage']);
  });

  it('passes a server-streaming call', async () => {
    const result = await client.serverStream({ text: 's', count: 5 });
    expect(result.status.code).toBe(grpc.status.OK);
    expect(result.value?.map((r) => r.text)).toEqual(['s-0', 's-1', 's-2', 's-3', 's-4']);
  });

  it('passes a client-streaming call', async () => {
    const result = await client.clientStream([{ text: 'a' }, { text: 'b' }, { text: 'c' }]);
    expect(result.status.code).toBe(grpc.status.OK);
    expect(result.value).toEqual({ text: 'a+b+c' });
  });

  it('passes a bidirectional call message by message', async () => {
    const result = await client.bidi([{ text: '1' }, { text: '2' }, { text: '3' }]);
    expect(result.status.code).toBe(grpc.status.OK);
    expect(result.value?.map((r) => r.text)).toEqual(['echo:1', 'echo:2', 'echo:3']);
  });

  it('relays the server status and message of a failed call (trailers-only response)', async () => {
    const result = await client.unary({ text: 'x', fail: { code: grpc.status.NOT_FOUND, message: 'no such book: «x»' } });
    expect(result.status.code).toBe(grpc.status.NOT_FOUND);
    expect(result.status.details).toBe('no such book: «x»');
  });

  it('relays a status that ends a stream after messages (status in trailers)', async () => {
    const result = await client.serverStream({ text: 'e', count: 2, fail: { code: grpc.status.PERMISSION_DENIED, message: 'stop' } });
    expect(result.value?.map((r) => r.text)).toEqual(['e-0', 'e-1']);
    expect(result.status.code).toBe(grpc.status.PERMISSION_DENIED);
    expect(result.status.details).toBe('stop');
  });

  it('records one client span per call with RPC and mesh attributes', async () => {
    let before = proxy.spans.length;
    await client.unary({ text: 'span' });
    const [ok] = await proxy.spansAfter(before, 1);
    before = proxy.spans.length;
    await client.unary({ text: 'gone', fail: { code: grpc.status.NOT_FOUND, message: 'gone' } });
    const [notFound] = await proxy.spansAfter(before, 1);
    expect(ok?.name).toBe('demo.Echo/Unary');
    expect(ok?.kind).toBe('client');
    expect(ok?.status).toBe('unset');
    expect(ok?.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.service': 'demo.Echo',
      'rpc.method': 'Unary',
      'rpc.grpc.status_code': 0,
      'http.response.status_code': 200,
      'tracemesh.protocol': 'grpc',
      'tracemesh.direction': 'outbound',
      'tracemesh.source.service': 'productpage',
      'tracemesh.destination.service': 'echo',
      'tracemesh.destination.version': 'v2',
      'tracemesh.response_flags': '-',
      'server.address': 'echo',
      'server.port': 50051,
      'network.protocol.version': '2',
      'network.peer.port': echo.port,
    });
    expect(ok?.attributes['http.request.body.size']).toBeGreaterThan(0);
    expect(ok?.attributes['http.response.body.size']).toBeGreaterThan(0);
    expect(notFound?.attributes['rpc.grpc.status_code']).toBe(grpc.status.NOT_FOUND);
    expect(notFound?.status).toBe('error');
    const labels = proxy.telemetry.requests.at(-1)?.labels;
    expect(labels).toMatchObject({ protocol: 'grpc', grpcStatus: '5', responseCode: '200', destinationService: 'echo' });
  });

  it('continues the caller’s trace and sends its own span id upstream', async () => {
    const traceId = '4bf92f3577b34da6a3ce929d0e0e4736';
    const metadata = new grpc.Metadata();
    metadata.set('traceparent', `00-${traceId}-00f067aa0ba902b7-01`);
    metadata.set('tracestate', 'vendor=opaque');
    const before = proxy.spans.length;
    await client.unary({ text: 'traced' }, metadata);
    const [span] = await proxy.spansAfter(before, 1);
    expect(span?.traceId).toBe(traceId);
    expect(span?.parentSpanId).toBe('00f067aa0ba902b7');
    const seen = echo.log.metadata.at(-1);
    expect(seen?.get('traceparent')).toEqual([`00-${traceId}-${span?.spanId}-01`]);
    expect(seen?.get('tracestate')).toEqual(['vendor=opaque']);
  });

  it('joins the client sidecar’s span and the server sidecar’s span in one trace (two hops)', async () => {
    const ratings = { service: 'ratings', namespace: 'default', version: 'v3' };
    const app = await startEchoServer();
    const inbound = await startProxy({ direction: inboundDirection(ratings, app.port), identity: ratings });
    const outbound = await startProxy({ direction: outboundDirection([service('ratings', 50051, [inbound.port])]) });
    const caller = new EchoClient(outbound.port, 'ratings:50051');
    try {
      const result = await caller.serverStream({ text: 'hop', count: 2 });
      expect(result.value?.map((r) => r.text)).toEqual(['hop-0', 'hop-1']);
      const [clientSpan] = await outbound.spansAfter(0, 1);
      const [serverSpan] = await inbound.spansAfter(0, 1);
      expect(clientSpan?.kind).toBe('client');
      expect(serverSpan?.kind).toBe('server');
      expect(serverSpan?.traceId).toBe(clientSpan?.traceId);
      expect(serverSpan?.parentSpanId).toBe(clientSpan?.spanId);
      expect(serverSpan?.attributes).toMatchObject({
        'tracemesh.source.service': 'productpage',
        'tracemesh.destination.service': 'ratings',
        'tracemesh.destination.version': 'v3',
        'rpc.grpc.status_code': 0,
      });
      const seen = app.log.metadata.at(-1);
      expect(seen?.get(SOURCE_SERVICE_HEADER)).toEqual([]);
      expect(seen?.get('traceparent')).toEqual([`00-${serverSpan?.traceId}-${serverSpan?.spanId}-01`]);
    } finally {
      caller.close();
      await outbound.close();
      await inbound.close();
      await app.close();
    }
  });

  it('multiplexes many calls over one upstream session', async () => {
    const freshEcho = await startEchoServer();
    const freshProxy = await startProxy({ direction: outboundDirection([service('echo', 50051, [freshEcho.port])]) });
    const freshClient = new EchoClient(freshProxy.port, 'echo:50051');
    try {
      const results = await Promise.all(Array.from({ length: 20 }, (_, i) => freshClient.unary({ text: String(i) })));
      for (const [i, result] of results.entries()) expect(result.value).toEqual({ text: `echo:${i}` });
      for (let i = 0; i < 5; i++) await freshClient.unary({ text: 'again' });
      const stats = freshProxy.pool.stats();
      expect(stats.sessionsOpened).toBe(1);
      expect(stats.streamsOpened).toBe(25);
    } finally {
      freshClient.close();
      await freshProxy.close();
      await freshEcho.close();
    }
  });
});
