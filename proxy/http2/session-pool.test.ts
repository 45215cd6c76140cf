import type { ClientHttp2Stream, OutgoingHttpHeaders } from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { eventually } from '../../test/support/collector-harness.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import { DEFAULT_LIMITS, type ProxyLimits } from '../limits.js';
import { h2Call, h2Connect, startH2Upstream, type H2Upstream } from './h2-peers.test-helper.js';
import { outboundDirection, service, startProxy, unusedPort } from './proxy-fixture.test-helper.js';
import { createHttp2SessionPool, type Http2SessionPool } from './session-pool.js';
import { createDestinationLimits } from '../pipeline/limits.js';
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
  it('counts sessions against a destination\'s maxConnections and gives them back when they close', async () => {
    const a = await upstream();
    const b = await upstream();
    const p = pool();
    const counters = new LimitCounters();
    const limits = createDestinationLimits(
      { maxConnections: 1, maxPendingRequests: null, maxRequests: null, maxRetries: null, connectTimeoutMs: null },
      counters,
      Date.now,
    );
    const first = p.sessionWithin(endpoint(a.port), limits);
    expect(first).toBeDefined();
    expect(await body(first!.request(GET, true))).toBe('ok /');
    // The live session carries further streams without a new connection.
    expect(p.sessionWithin(endpoint(a.port), limits)).toBe(first);
    expect(counters.connections).toBe(1);
    // A second endpoint would need a second session: over the limit.
    expect(p.sessionWithin(endpoint(b.port), limits)).toBeUndefined();
    a.kill();
    await eventually(async () => (counters.connections === 0 ? true : undefined), 'the session to close', 5_000);
    const second = p.sessionWithin(endpoint(b.port), limits);
    expect(second).toBeDefined();
    expect(await body(second!.request(GET, true))).toBe('ok /');
    expect(counters.connections).toBe(1);
  });
});
