import { request as httpRequest, type IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, header, outboundDirection, rawExchange, readResponses, responsesComplete, service, startProxy, startUpstream } from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface Seen {
  url: string;
  headers: IncomingHttpHeaders;
  port: number;
}

async function recordingUpstream(name: string, extra: Array<[string, string]> = []) {
  const seen: Seen[] = [];
  const upstream = await startUpstream(cleanup, (req, res) => {
    seen.push({ url: req.url ?? '', headers: req.headers, port: (req.socket.localPort as number) });
    for (const [k, v] of extra) res.setHeader(k, v);
    res.end(name);
  });
  return { upstream, seen };
}

async function send(port: number, head: string) {
  const result = await rawExchange(port, [head], responsesComplete(1));
  return readResponses(result.text).responses[0];
}

describe('explicit outbound (forward proxy)', () => {
  it('routes an absolute-form request by its authority and forwards it in origin-form, Host as sent', async () => {
    const { upstream, seen } = await recordingUpstream('reviews');
    const proxy = await startProxy(cleanup, { direction: outboundDirection([service('reviews', 9080, [{ port: upstream.port }])]) });
    const res = await send(proxy.port, 'GET http://reviews:9080/api/x?y=1 HTTP/1.1\r\nHost: reviews:9080\r\n\r\n');
    expect(res?.body).toBe('reviews');
    expect(seen[0]?.url).toBe('/api/x?y=1');
    expect(seen[0]?.headers.host).toBe('reviews:9080');
    expect(proxy.tel.spans[0]?.attributes).toMatchObject({ 'server.address': 'reviews', 'server.port': 9080, 'url.path': '/api/x', 'url.query': 'y=1' });
  });

  it('works as http_proxy for node:http clients; an empty path becomes "/"', async () => {
    const { upstream, seen } = await recordingUpstream('reviews');
    const proxy = await startProxy(cleanup, { direction: outboundDirection([service('reviews', 9080, [{ port: upstream.port }])]) });
    const body = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxy.port, path: 'http://reviews.default.svc.cluster.local:9080', headers: { host: 'reviews.default.svc.cluster.local:9080' }, agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      req.end();
    });
    expect(body).toBe('reviews');
    expect(seen[0]?.url).toBe('/');
  });

  it('defaults to port 80 and keeps a query without a path', async () => {
    const { upstream, seen } = await recordingUpstream('web');
    const proxy = await startProxy(cleanup, { direction: outboundDirection([service('web', 80, [{ port: upstream.port }])]) });
    const res = await send(proxy.port, 'GET http://web?q=2 HTTP/1.1\r\nHost: web\r\n\r\n');
    expect(res?.body).toBe('web');
    expect(seen[0]?.url).toBe('/?q=2');
  });

  it('strips Proxy-Authorization and Proxy-Authenticate, which were meant for the forward proxy', async () => {
    const { upstream, seen } = await recordingUpstream('reviews', [['proxy-authenticate', 'Basic realm="x"']]);
    const proxy = await startProxy(cleanup, { direction: outboundDirection([service('reviews', 9080, [{ port: upstream.port }])]) });
    const res = await send(proxy.port, 'GET http://reviews:9080/ HTTP/1.1\r\nHost: reviews:9080\r\nProxy-Authorization: Basic Zm9v\r\nProxy-Connection: keep-alive\r\n\r\n');
    expect(seen[0]?.headers['proxy-authorization']).toBeUndefined();
    expect(seen[0]?.headers['proxy-connection']).toBeUndefined();
    expect(header(res, 'proxy-authenticate')).toBeUndefined();
  });

  it('routes origin-form requests by Host, and falls back to the original destination', async () => {
    const { upstream, seen } = await recordingUpstream('reviews');
    const direction = outboundDirection([service('reviews', 9080, [{ port: upstream.port }])]);
    const byHost = await startProxy(cleanup, { direction });
    expect((await send(byHost.port, 'GET /h HTTP/1.1\r\nHost: reviews:9080\r\n\r\n'))?.body).toBe('reviews');
    const byTarget = await startProxy(cleanup, { direction, target: { host: 'reviews', port: 9080 } });
    expect((await send(byTarget.port, 'GET /t HTTP/1.1\r\nHost: 10.1.2.3\r\n\r\n'))?.body).toBe('reviews');
    expect(seen.map((s) => s.url)).toEqual(['/h', '/t']);
  });

  it('spreads requests over the endpoints (round robin), each span naming its endpoint and version', async () => {
    const a = await recordingUpstream('a');
    const b = await recordingUpstream('b');
    const proxy = await startProxy(cleanup, {
      direction: outboundDirection([service('reviews', 9080, [{ port: a.upstream.port, version: 'v1' }, { port: b.upstream.port, version: 'v2' }])]),
    });
    const bodies: string[] = [];
    for (let i = 0; i < 4; i++) bodies.push((await send(proxy.port, 'GET http://reviews:9080/ HTTP/1.1\r\nHost: reviews:9080\r\n\r\n'))?.body ?? '');
    expect(bodies).toEqual(['a', 'b', 'a', 'b']);
    expect(proxy.tel.spans.map((s) => s.attributes['tracemesh.destination.version'])).toEqual(['v1', 'v2', 'v1', 'v2']);
    expect(proxy.tel.spans[1]?.attributes['tracemesh.upstream.address']).toBe(`127.0.0.1:${b.upstream.port}`);
  });
});
