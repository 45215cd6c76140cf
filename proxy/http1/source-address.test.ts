/**
 * The pool with a connector that keeps client addresses (TPROXY's contract,
 * proxy/capture/transparent-connect.ts): connections come from the
 * downstream client's address and are pooled per client. TPROXY itself
 * needs namespaces (test/system/tproxy-source.test.ts); here the whole of
 * 127.0.0.0/8 is local, so a connector that binds the client's loopback
 * address makes the same contract real on 127.0.0.2 and 127.0.0.3: the
 * upstream sees each client as its peer.
 */
import http from 'node:http';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { plainAddress, upstreamConnector, type UpstreamConnector, type UpstreamSocketOptions, type UpstreamTarget } from '../capture/transparent-connect.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { DEFAULT_LIMITS } from '../limits.js';
import { createDestinationLimits } from '../pipeline/limits.js';
import { LimitCounters } from '../pipeline/traffic-state.js';
import { Cleanup, inboundDirection, startProxy, startUpstream } from './proxy-harness.test-helper.js';
import { createHttp1UpstreamPool, type UpstreamClient, type UpstreamConnection } from './upstream-pool.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Connects from the client's (loopback) address; records every connect's client. */
function loopbackSourceConnector(): UpstreamConnector & { clients: (string | undefined)[] } {
  const clients: (string | undefined)[] = [];
  const sourceKey = (_target: UpstreamTarget, client: string | undefined): string => (client === undefined ? '' : plainAddress(client));
  return {
    clients,
    keepsClientAddress: true,
    sourceKey,
    connect(target: UpstreamTarget, client: string | undefined, options: UpstreamSocketOptions = {}): Socket {
      clients.push(client);
      const source = sourceKey(target, client);
      return connect({ host: target.host, port: target.port, ...options, ...(source === '' ? {} : { localAddress: source }) });
    },
  };
}

/** An upstream that answers each request with the address it came from. */
async function peerEcho() {
  return startUpstream(cleanup, (req, res) => {
    const peer = plainAddress(req.socket.remoteAddress ?? '');
    res.setHeader('content-length', String(peer.length));
    res.end(peer);
  });
}

/** A keep-alive client bound to `from`: each request's answer body. */
function clientFrom(from: string, port: number): (path: string) => Promise<string> {
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanup.add(() => agent.destroy());
  return (path) =>
    new Promise((resolve, reject) => {
      const req = http.request({ agent, host: '127.0.0.1', port, path, localAddress: from, headers: { host: 'app' } }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve(body));
        res.on('error', reject);
      });
      req.setTimeout(5_000, () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end();
    });
}

describe('upstream connections from the client address', () => {
  it('connects from each client and never lets one client use another client’s pooled connection', async () => {
    const app = await peerEcho();
    const connector = loopbackSourceConnector();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port), connector });
    const a = clientFrom('127.0.0.2', proxy.port);
    const b = clientFrom('127.0.0.3', proxy.port);
    expect(await a('/1')).toBe('127.0.0.2');
    expect(await b('/1')).toBe('127.0.0.3');
    expect(await a('/2')).toBe('127.0.0.2');
    expect(await b('/2')).toBe('127.0.0.3');
    // One connection per client, each reused for its second request.
    expect(app.connections()).toBe(2);
    expect(connector.clients.map((c) => plainAddress(c ?? ''))).toEqual(['127.0.0.2', '127.0.0.3']);
    const keys = proxy.pool.stats().endpoints.map((e) => e.endpoint).sort();
    expect(keys).toEqual([`127.0.0.1:${app.port}|127.0.0.2`, `127.0.0.1:${app.port}|127.0.0.3`]);
  });

  it('pools by endpoint alone when the connector connects from the proxy’s own address (REDIRECT, explicit)', async () => {
    const app = await peerEcho();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port), connector: upstreamConnector('redirect') });
    const a = clientFrom('127.0.0.2', proxy.port);
    const b = clientFrom('127.0.0.3', proxy.port);
    expect(await a('/1')).toBe('127.0.0.1');
    expect(await b('/1')).toBe('127.0.0.1');
    expect(app.connections()).toBe(1);
    expect(proxy.pool.stats().endpoints.map((e) => e.endpoint)).toEqual([`127.0.0.1:${app.port}`]);
  });

  it('serves a waiting client a connection of its own, not the one another client released (maxConnections 1)', async () => {
    const app = await peerEcho();
    const connector = loopbackSourceConnector();
    const pool = createHttp1UpstreamPool(DEFAULT_LIMITS, connector);
    cleanup.add(() => pool.close());
    const limits = createDestinationLimits({ maxConnections: 1, maxPendingRequests: 1, maxRequests: null, maxRetries: null, connectTimeoutMs: 2_000 }, new LimitCounters(), Date.now);
    const endpoint: ClusterEndpoint = { key: `127.0.0.1:${app.port}`, address: '127.0.0.1', port: app.port } as ClusterEndpoint;
    const ready: UpstreamConnection[] = [];
    const idleClient: UpstreamClient = {
      onUpstreamData() {},
      onUpstreamEnd() {},
      onUpstreamClose() {},
      onUpstreamDrain() {},
      onUpstreamReady: (conn) => ready.push(conn),
      onUpstreamWaitExpired() {},
    };
    const waiting: UpstreamClient = { ...idleClient };
    const first = pool.acquire(endpoint, idleClient, limits, '127.0.0.2');
    expect(first).toBeDefined();
    await new Promise((resolve) => first?.socket.once('connect', resolve));
    expect(pool.acquire(endpoint, waiting, limits, '127.0.0.3')).toBeUndefined();
    expect(pool.wait(endpoint, waiting, limits, 2_000, '127.0.0.3')).toBe(true);
    pool.release(first as UpstreamConnection);
    expect(ready).toHaveLength(1);
    expect(ready[0]).not.toBe(first);
    expect(first?.socket.destroyed).toBe(true);
    expect(connector.clients.map((c) => plainAddress(c ?? ''))).toEqual(['127.0.0.2', '127.0.0.3']);
    await new Promise((resolve) => ready[0]?.socket.once('connect', resolve));
    expect(plainAddress(ready[0]?.socket.localAddress ?? '')).toBe('127.0.0.3');
    pool.discard(ready[0] as UpstreamConnection);
  });
});

describe('a connector that refuses its arguments', () => {
  it('turns the throw into a connect failure: 503 with flag UF, and the proxy keeps serving', async () => {
    const app = await peerEcho();
    const refusing: UpstreamConnector = {
      keepsClientAddress: true,
      sourceKey: (_target, client) => (client === undefined ? '' : plainAddress(client)),
      connect() {
        throw new Error('cannot bind a transparent socket to that address');
      },
    };
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port), connector: refusing });
    const answer = await new Promise<{ status: number; flags: string; body: string }>((resolve, reject) => {
      const req = http.request({ host: '127.0.0.1', port: proxy.port, path: '/', headers: { host: 'app' }, agent: false }, (res) => {
        let body = '';
        res.setEncoding('latin1');
        res.on('data', (chunk: string) => (body += chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, flags: String(res.headers['x-tracemesh-response-flags']), body }));
      });
      req.on('error', reject);
      req.end();
    });
    expect(answer.status).toBe(503);
    expect(answer.flags).toBe('UF');
    expect(answer.body).toContain('cannot bind a transparent socket');
    expect(app.connections()).toBe(0);
  });
});
