import * as grpc from '@grpc/grpc-js';
import { afterEach, describe, expect, it } from 'vitest';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import { eventually } from '../../test/support/collector-harness.js';
import { EchoClient, startEchoServer, type EchoServer } from './grpc-echo.test-helper.js';
import { outboundDirection, service, startProxy, unusedPort, type ProxyOptions, type RunningProxy } from './proxy-fixture.test-helper.js';

describe('gRPC errors through the outbound HTTP/2 path', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function echoServer(): Promise<EchoServer> {
    const echo = await startEchoServer();
    cleanups.push(() => echo.close());
    return echo;
  }

  async function proxyTo(endpointPorts: number[], options: Partial<ProxyOptions> = {}): Promise<{ proxy: RunningProxy; client: EchoClient }> {
    const proxy = await startProxy({ direction: outboundDirection([service('echo', 50051, endpointPorts)]), ...options });
    cleanups.push(() => proxy.close());
    const client = new EchoClient(proxy.port, 'echo:50051');
    cleanups.push(() => client.close());
    return { proxy, client };
  }

  it('answers UNAVAILABLE with flag UF when the upstream refuses the connection', async () => {
    const { proxy, client } = await proxyTo([await unusedPort()]);
    const result = await client.unary({ text: 'x' });
    expect(result.status.code).toBe(grpc.status.UNAVAILABLE);
    expect(result.status.details).toMatch(/^upstream connect error: .*ECONNREFUSED/);
    expect(result.status.metadata.get(RESPONSE_FLAGS_HEADER)).toEqual(['UF']);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UF');
    expect(span?.attributes['rpc.grpc.status_code']).toBe(grpc.status.UNAVAILABLE);
    expect(span?.status).toBe('error');
    expect(proxy.pool.stats().connectFailures).toBe(1);
  });

  it('answers DEADLINE_EXCEEDED with flag UT when the upstream never answers', async () => {
    const echo = await echoServer();
    const { proxy, client } = await proxyTo([echo.port], { limits: { requestTimeoutMs: 300 } });
    const result = await client.unary({ text: 'x', hang: true });
    expect(result.status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(result.status.metadata.get(RESPONSE_FLAGS_HEADER)).toEqual(['UT']);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UT');
    // The upstream call was cancelled, not left running.
    await eventually(async () => (echo.log.cancelled >= 1 ? true : undefined), 'the upstream call to be cancelled');
  });

  it('does not cut a streaming call by the request timeout once response headers arrived', async () => {
    const echo = await echoServer();
    const { proxy, client } = await proxyTo([echo.port], { limits: { requestTimeoutMs: 200 } });
    const result = await client.serverStream({ text: 'slow', count: 3, pauseMs: 600 });
    expect(result.status.code).toBe(grpc.status.OK);
    expect(result.value?.map((r) => r.text)).toEqual(['slow-0', 'slow-1', 'slow-2']);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('-');
  });

  it('answers UNIMPLEMENTED with flag NR when the authority names no service', async () => {
    const echo = await echoServer();
    const { proxy } = await proxyTo([echo.port]);
    const stranger = new EchoClient(proxy.port, 'nosuch:50051');
    cleanups.push(() => stranger.close());
    const result = await stranger.unary({ text: 'x' });
    expect(result.status.code).toBe(grpc.status.UNIMPLEMENTED);
    expect(result.status.details).toBe('no route to service: nosuch:50051');
    expect(result.status.metadata.get(RESPONSE_FLAGS_HEADER)).toEqual(['NR']);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('NR');
    expect(span?.attributes['server.address']).toBe('nosuch');
  });

  it('answers UNAVAILABLE with flag UH when the service has no endpoint', async () => {
    const { proxy, client } = await proxyTo([]);
    const result = await client.unary({ text: 'x' });
    expect(result.status.code).toBe(grpc.status.UNAVAILABLE);
    expect(result.status.metadata.get(RESPONSE_FLAGS_HEADER)).toEqual(['UH']);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UH');
  });

  it('ends a stream with UNAVAILABLE and flag UC when the upstream dies mid-stream', async () => {
    const echo = await echoServer();
    const { proxy, client } = await proxyTo([echo.port]);
    const result = await client.serverStream({ text: 'm', holdAfter: 2 }, (call) => {
      let received = 0;
      call.on('data', () => {
        if (++received === 2) echo.kill();
      });
    });
    expect(result.value?.map((r) => r.text)).toEqual(['m-0', 'm-1']);
    expect(result.status.code).toBe(grpc.status.UNAVAILABLE);
    expect(result.status.details).toMatch(/^upstream connection terminated/);
    expect(result.status.metadata.get(RESPONSE_FLAGS_HEADER)).toEqual(['UC']);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UC');
    expect(span?.attributes['rpc.grpc.status_code']).toBe(grpc.status.UNAVAILABLE);
    expect(span?.attributes['http.response.status_code']).toBe(200);
  });

  it('cancels the upstream call when the client cancels (flag DC)', async () => {
    const echo = await echoServer();
    const { proxy, client } = await proxyTo([echo.port]);
    const result = await client.serverStream({ text: 'c', holdAfter: 1 }, (call) => {
      call.once('data', () => call.cancel());
    });
    expect(result.status.code).toBe(grpc.status.CANCELLED);
    await eventually(async () => (echo.log.cancelled >= 1 ? true : undefined), 'the upstream call to be cancelled');
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('DC');
  });

  it('ends a silent stream with DEADLINE_EXCEEDED and flag SI after the stream idle timeout', async () => {
    const echo = await echoServer();
    const { proxy, client } = await proxyTo([echo.port], { limits: { streamIdleTimeoutMs: 300 } });
    const result = await client.serverStream({ text: 'i', holdAfter: 1 });
    expect(result.value?.map((r) => r.text)).toEqual(['i-0']);
    expect(result.status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(result.status.metadata.get(RESPONSE_FLAGS_HEADER)).toEqual(['SI']);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('SI');
    await eventually(async () => (echo.log.cancelled >= 1 ? true : undefined), 'the upstream call to be cancelled');
  });
});
