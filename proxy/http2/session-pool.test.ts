import type { ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isTracemeshError, TracemeshError } from '../../src/lib/errors.js';
import type { UpstreamConnector } from '../capture/transparent-connect.js';
import { eventually } from '../../test/support/collector-harness.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import { DEFAULT_LIMITS, type ProxyLimits } from '../limits.js';
import { answerPeerAddress, h2Call, h2Connect, loopbackSourceConnector, startH2Upstream, type H2Upstream } from './h2-peers.test-helper.js';
import { outboundDirection, service, startProxy, unusedPort } from './proxy-fixture.test-helper.js';
import { createHttp2SessionPool, type Http2SessionPool } from './session-pool.js';
import { createDestinationLimits } from '../pipeline/limits.js';
import type { DestinationLimits } from '../pipeline/types.js';
import { LimitCounters } from '../pipeline/traffic-state.js';

function endpoint(port: number): ClusterEndpoint {
  return {
    address: '127.0.0.1',
    port,
    labels: {},
    version: '',
    key: `127.0.0.1:${port}`,
    activeRequests: 0,
    totalRequests: 0,
    failedRequests: 0,
    consecutiveFailures: 0,
    lastFailure: '',
  };
}

const GET: OutgoingHttpHeaders = { ':method': 'GET', ':path': '/', ':authority': 'svc' };

/** Reads a whole response from a pooled stream; rejects with the stream's error. */
function body(stream: ClientHttp2Stream): Promise<string> {
  return new Promise((resolve, reject) => {
    let text = '';
    stream.setEncoding('utf8');
    stream.on('data', (chunk: string) => (text += chunk));
    stream.on('error', reject);
    stream.on('close', () => (stream.rstCode === 0 ? resolve(text) : reject(new Error(`reset ${stream.rstCode}`))));
  });
}

describe('HTTP/2 upstream session pool', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function upstream(): Promise<H2Upstream> {
    const up = await startH2Upstream((stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`ok ${headers[':path']}`);
    });
    cleanups.push(() => up.close());
    return up;
  }

  function pool(limits: Partial<ProxyLimits> = {}): Http2SessionPool {
    const p = createHttp2SessionPool({ ...DEFAULT_LIMITS, ...limits });
    cleanups.push(() => p.close(500));
    return p;
  }

  it('opens one session per endpoint and reuses it for every stream', async () => {
    const a = await upstream();
    const b = await upstream();
    const p = pool();
    const ea = endpoint(a.port);
    const eb = endpoint(b.port);
    const texts = await Promise.all([
      body(p.session(ea).request(GET, true)),
      body(p.session(ea).request({ ...GET, ':path': '/2' }, true)),
      body(p.session(eb).request(GET, true)),
    ]);
    expect(texts).toEqual(['ok /', 'ok /2', 'ok /']);
    expect(await body(p.session(ea).request(GET, true))).toBe('ok /');
    expect(a.sessions.length).toBe(1);
    expect(b.sessions.length).toBe(1);
    const stats = p.stats();
    expect(stats.sessionsOpened).toBe(2);
    expect(stats.streamsOpened).toBe(4);
    expect(stats.sessions.map((s) => s.endpoint).sort()).toEqual([ea.key, eb.key].sort());
    expect(stats.sessions.every((s) => s.connected && s.activeStreams === 0)).toBe(true);
  });

  it('replaces a session whose connection died', async () => {
    const up = await upstream();
    const p = pool();
    const e = endpoint(up.port);
    const first = p.session(e);
    expect(await body(first.request(GET, true))).toBe('ok /');
    up.kill();
    await eventually(async () => (p.stats().sessions.length === 0 ? true : undefined), 'the dead session to leave the pool');
    expect(first.failure).not.toBe('');
    const second = p.session(e);
    expect(second).not.toBe(first);
    expect(await body(second.request(GET, true))).toBe('ok /');
    expect(p.stats()).toMatchObject({ sessionsOpened: 2, sessionsClosed: 1, connectFailures: 0 });
  });

  it('stops using a session that received GOAWAY', async () => {
    const up = await upstream();
    const p = pool();
    const e = endpoint(up.port);
    const first = p.session(e);
    expect(await body(first.request(GET, true))).toBe('ok /');
    up.sessions[0]?.close();
    await eventually(async () => (p.session(e) !== first ? true : undefined), 'a new session after GOAWAY');
    expect(await body(p.session(e).request(GET, true))).toBe('ok /');
    expect(up.sessions.length).toBe(2);
  });

  it('closes a session idle for upstreamIdleTimeoutMs', async () => {
    const up = await upstream();
    const p = pool({ upstreamIdleTimeoutMs: 150 });
    expect(await body(p.session(endpoint(up.port)).request(GET, true))).toBe('ok /');
    await eventually(async () => (p.stats().sessionsClosed === 1 ? true : undefined), 'the idle session to close');
    expect(p.stats().sessions).toEqual([]);
    expect(up.sessions[0]?.closed || up.sessions[0]?.destroyed).toBe(true);
  });

  it('reports a refused connection as a connect failure', async () => {
    const p = pool();
    const session = p.session(endpoint(await unusedPort()));
    await expect(body(session.request(GET, true))).rejects.toThrow();
    expect(session.connected).toBe(false);
    expect(session.failure).toMatch(/ECONNREFUSED/);
    await eventually(async () => (p.stats().connectFailures === 1 ? true : undefined), 'the connect failure to be counted');
  });

  it('gives up on an upstream that accepts TCP but never speaks HTTP/2 after connectTimeoutMs (UF)', async () => {
    const silent = net.createServer((socket) => socket.on('error', () => {}));
    const sockets = new Set<net.Socket>();
    silent.on('connection', (socket) => sockets.add(socket));
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => {
      for (const socket of sockets) socket.destroy();
      return new Promise<void>((resolve) => silent.close(() => resolve()));
    });
    const port = (silent.address() as net.AddressInfo).port;
    const proxy = await startProxy({ direction: outboundDirection([service('mute', 8080, [port], 'http2')]), limits: { connectTimeoutMs: 200 } });
    cleanups.push(() => proxy.close());
    const client = h2Connect(proxy.port);
    cleanups.push(() => void client.destroy());
    const res = await h2Call(client, { ':method': 'GET', ':path': '/', ':authority': 'mute:8080' });
    expect(res.headers?.[':status']).toBe(503);
    expect(res.headers?.[RESPONSE_FLAGS_HEADER]).toBe('UF');
    expect(res.body.toString()).toBe(`upstream connect error: connect timeout after 200 ms to 127.0.0.1:${port} (UF)\n`);
    expect(proxy.pool.stats().connectFailures).toBe(1);
  });

  it('close() ends every session, is safe twice, and refuses new sessions', async () => {
    const up = await upstream();
    const p = createHttp2SessionPool(DEFAULT_LIMITS);
    expect(await body(p.session(endpoint(up.port)).request(GET, true))).toBe('ok /');
    await Promise.all([p.close(), p.close()]);
    expect(p.stats().sessions).toEqual([]);
    let refused: unknown;
    try {
      p.session(endpoint(up.port));
    } catch (err) {
      refused = err;
    }
    expect(isTracemeshError(refused, 'TM_ERR_UPSTREAM')).toBe(true);
  });
  function destination(name: string, maxConnections: number | null): { name: string; limits: DestinationLimits; counters: LimitCounters } {
    const counters = new LimitCounters();
    const limits = createDestinationLimits(
      { maxConnections, maxPendingRequests: null, maxRequests: null, maxRetries: null, connectTimeoutMs: null },
      counters,
      Date.now,
    );
    return { name, limits, counters };
  }

  it('counts sessions against a destination\'s maxConnections and gives them back when they close', async () => {
    const a = await upstream();
    const b = await upstream();
    const p = pool();
    const dest = destination('svc.default:80', 1);
    const counters = dest.counters;
    const first = p.sessionWithin(endpoint(a.port), dest);
    expect(first).toBeDefined();
    expect(await body(first!.request(GET, true))).toBe('ok /');
    // The live session carries further streams without a new connection.
    expect(p.sessionWithin(endpoint(a.port), dest)).toBe(first);
    expect(counters.connections).toBe(1);
    // A second endpoint would need a second session: over the limit.
    expect(p.sessionWithin(endpoint(b.port), dest)).toBeUndefined();
    a.kill();
    await eventually(async () => (counters.connections === 0 ? true : undefined), 'the session to close', 5_000);
    const second = p.sessionWithin(endpoint(b.port), dest);
    expect(second).toBeDefined();
    expect(await body(second!.request(GET, true))).toBe('ok /');
    expect(counters.connections).toBe(1);
  });

  it('keeps each destination\'s sessions to itself, so maxConnections counts per destination', async () => {
    const a = await upstream();
    const b = await upstream();
    const p = pool();
    const ea = endpoint(a.port);
    // A subset and its whole service share the endpoint; each has its own limit.
    const v1 = destination('reviews.default:9080|v1', 1);
    const all = destination('reviews.default:9080', 1);
    const s1 = p.sessionWithin(ea, v1);
    const s2 = p.sessionWithin(ea, all);
    expect(s1).toBeDefined();
    expect(s2).toBeDefined();
    expect(s2).not.toBe(s1);
    expect(await Promise.all([body(s1!.request(GET, true)), body(s2!.request(GET, true))])).toEqual(['ok /', 'ok /']);
    expect(a.sessions.length).toBe(2);
    expect([v1.counters.connections, all.counters.connections]).toEqual([1, 1]);
    expect(p.sessionWithin(ea, v1)).toBe(s1);
    expect(p.sessionWithin(ea, all)).toBe(s2);
    // A destination at its limit gets no session, not even one another destination opened to the endpoint.
    const full = destination('ratings.default:9080', 1);
    const onB = p.sessionWithin(endpoint(b.port), full);
    expect(onB).toBeDefined();
    expect(p.sessionWithin(ea, full)).toBeUndefined();
    expect(full.counters.connections).toBe(1);
    expect(p.stats().sessions.map((s) => `${s.destination} ${s.endpoint}`).sort()).toEqual(
      [`reviews.default:9080 ${ea.key}`, `reviews.default:9080|v1 ${ea.key}`, `ratings.default:9080 127.0.0.1:${b.port}`].sort(),
    );
    // Each session gives back its own destination's place when it closes.
    a.kill();
    await eventually(async () => (v1.counters.connections === 0 && all.counters.connections === 0 ? true : undefined), 'both sessions to close', 5_000);
    expect(full.counters.connections).toBe(1);
  });

  function peerAddresses(up: H2Upstream): string[] {
    return up.sessions.map((s) => s.socket.remoteAddress ?? '').sort();
  }

  it('under a connector that keeps client addresses, gives each client its own session, connected from its address', async () => {
    const a = await upstream();
    const connector = loopbackSourceConnector();
    const p = createHttp2SessionPool(DEFAULT_LIMITS, connector);
    cleanups.push(() => p.close(500));
    const ea = endpoint(a.port);
    const two = p.session(ea, '127.0.0.2');
    const three = p.session(ea, '127.0.0.3');
    expect(three).not.toBe(two);
    expect(p.session(ea, '127.0.0.2')).toBe(two);
    expect(await Promise.all([body(two.request(GET, true)), body(three.request(GET, true))])).toEqual(['ok /', 'ok /']);
    expect(peerAddresses(a)).toEqual(['127.0.0.2', '127.0.0.3']);
    // Within a destination's limits the client is part of the key as well.
    const dest = destination('svc.default:80', 5);
    const within = p.sessionWithin(ea, dest, '127.0.0.2');
    expect(within).not.toBe(two);
    expect(p.sessionWithin(ea, dest, '127.0.0.2')).toBe(within);
    expect(p.sessionWithin(ea, dest, '127.0.0.3')).not.toBe(within);
    expect(dest.counters.connections).toBe(2);
    // sourceKey '' (a client inside the pod): the proxy's own address, one session for all such clients.
    const own = p.session(ea, '127.0.0.1');
    expect(p.session(ea, undefined)).toBe(own);
    expect(await body(own.request(GET, true))).toBe('ok /');
    expect(connector.connectedFor).toEqual(['127.0.0.2', '127.0.0.3', '127.0.0.2', '127.0.0.3']);
    expect(p.stats().sessions.map((s) => s.source).sort()).toEqual(['', '127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']);
  });

  it('without such a connector, clients share the session', async () => {
    const a = await upstream();
    const p = pool();
    const ea = endpoint(a.port);
    const first = p.session(ea, '10.0.0.1');
    expect(p.session(ea, '10.0.0.2')).toBe(first);
    expect(await body(first.request(GET, true))).toBe('ok /');
    expect(peerAddresses(a)).toEqual(['127.0.0.1']);
  });

  it('gives the connection place back when the connector refuses at once', async () => {
    const connector: UpstreamConnector = {
      keepsClientAddress: true,
      sourceKey: (_target, client) => client ?? '',
      connect: () => {
        throw new TracemeshError('TM_ERR_CAPTURE_SOCKOPT', 'connectFrom: refused for the test');
      },
    };
    const p = createHttp2SessionPool(DEFAULT_LIMITS, connector);
    cleanups.push(() => p.close(500));
    const dest = destination('svc.default:80', 1);
    let refused: unknown;
    try {
      p.sessionWithin(endpoint(await unusedPort()), dest, '10.0.0.9');
    } catch (err) {
      refused = err;
    }
    expect(isTracemeshError(refused, 'TM_ERR_CAPTURE_SOCKOPT')).toBe(true);
    expect(dest.counters.connections).toBe(0);
    expect(p.stats().sessions).toEqual([]);
  });

  it('through the proxy, each downstream client\'s streams reach the upstream from that client\'s address', async () => {
    const up = await startH2Upstream(answerPeerAddress);
    cleanups.push(() => up.close());
    const connector = loopbackSourceConnector();
    const proxy = await startProxy({ direction: outboundDirection([service('web', 8080, [up.port], 'http2')]), connector });
    cleanups.push(() => proxy.close());
    const request = { ':method': 'GET', ':path': '/', ':authority': 'web:8080' };
    const answers: string[] = [];
    for (const from of ['127.0.0.2', '127.0.0.3', '127.0.0.2']) {
      const client = h2Connect(proxy.port, from);
      cleanups.push(() => void client.destroy());
      const [first, second] = await Promise.all([h2Call(client, request), h2Call(client, request)]);
      expect([first.headers?.[':status'], second.headers?.[':status']]).toEqual([200, 200]);
      answers.push(first.body.toString(), second.body.toString());
    }
    expect(answers).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3', '127.0.0.2', '127.0.0.2']);
    // One upstream session per client address, reused by that client's later connection.
    expect(connector.connectedFor).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(peerAddresses(up)).toEqual(['127.0.0.2', '127.0.0.3']);
    const spans = await proxy.spansAfter(0, 6);
    expect(spans.map((s) => s.attributes['client.address']).sort()).toEqual(['127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.2', '127.0.0.3', '127.0.0.3']);
  });
});
