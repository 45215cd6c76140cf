import { connect } from 'node:net';
import { Counter, Registry } from 'prom-client';
import { afterEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { startAdminServer } from './server.js';
import type { AdminServer, AdminServerOptions } from './server.js';

const servers: AdminServer[] = [];

afterEach(async () => {
  await Promise.all(servers.splice(0).map((s) => s.close()));
});

async function start(overrides: Partial<AdminServerOptions> = {}): Promise<{ server: AdminServer; base: string; state: { ready: boolean } }> {
  const registry = new Registry();
  new Counter({ name: 'tracemesh_requests_total', help: 'requests', registers: [registry] }).inc(3);
  const state = { ready: false };
  const server = await startAdminServer({
    host: '127.0.0.1',
    port: 0,
    registry,
    ready: () => state.ready,
    configDump: () => ({ identity: { service: 'reviews' }, limits: { maxHeaderBytes: 61440 } }),
    clusters: () => ({ clusters: [{ name: 'outbound|9080||reviews', endpoints: [{ address: '127.0.0.1', port: 25006, state: 'healthy' }] }] }),
    log: () => {},
    ...overrides,
  });
  servers.push(server);
  return { server, base: `http://127.0.0.1:${server.port}`, state };
}

/** Sends raw bytes and returns everything the server answers until it closes. */
function raw(port: number, bytes: string): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = connect(port, '127.0.0.1');
    let data = '';
    socket.setEncoding('utf8');
    socket.on('data', (chunk: string) => (data += chunk));
    socket.on('end', () => resolve(data));
    socket.on('close', () => resolve(data));
    socket.on('error', reject);
    socket.write(bytes);
  });
}

describe('admin server', () => {
  it('GET /stats/prometheus serves the registry in the text format', async () => {
    const { base } = await start();
    const res = await fetch(`${base}/stats/prometheus`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain; version=0\.0\.4/);
    const text = await res.text();
    expect(text).toContain('# TYPE tracemesh_requests_total counter');
    expect(text).toContain('tracemesh_requests_total 3');
  });

  it('GET /ready is 503 until ready, then 200 LIVE', async () => {
    const { base, state } = await start();
    const before = await fetch(`${base}/ready`);
    expect(before.status).toBe(503);
    expect(await before.text()).toBe('NOT READY\n');
    state.ready = true;
    const after = await fetch(`${base}/ready`);
    expect(after.status).toBe(200);
    expect(await after.text()).toBe('LIVE\n');
  });

  it('GET /config_dump and /clusters answer JSON', async () => {
    const { base } = await start();
    const dump = await fetch(`${base}/config_dump`);
    expect(dump.status).toBe(200);
    expect(dump.headers.get('content-type')).toBe('application/json');
    expect(await dump.json()).toEqual({ identity: { service: 'reviews' }, limits: { maxHeaderBytes: 61440 } });
    const clusters = await fetch(`${base}/clusters?format=json`);
    expect(clusters.status).toBe(200);
    expect(await clusters.json()).toMatchObject({ clusters: [{ name: 'outbound|9080||reviews', endpoints: [{ state: 'healthy' }] }] });
  });

  it('GET / lists the endpoints', async () => {
    const { base } = await start();
    const res = await fetch(`${base}/`);
    expect(res.status).toBe(200);
    const text = await res.text();
    for (const path of ['/stats/prometheus', '/ready', '/config_dump', '/clusters']) expect(text).toContain(path);
  });

  it('HEAD answers the headers without a body', async () => {
    const { base } = await start();
    const res = await fetch(`${base}/config_dump`, { method: 'HEAD' });
    expect(res.status).toBe(200);
    expect(Number(res.headers.get('content-length'))).toBeGreaterThan(0);
    expect(await res.text()).toBe('');
  });

  it('unknown paths are 404, other methods 405 with Allow', async () => {
    const { base } = await start();
    const missing = await fetch(`${base}/quitquitquit`);
    expect(missing.status).toBe(404);
    expect(await missing.text()).toMatch(/no admin endpoint \/quitquitquit/);
    const post = await fetch(`${base}/ready`, { method: 'DELETE' });
    expect(post.status).toBe(405);
    expect(post.headers.get('allow')).toBe('GET, HEAD');
  });

  it('refuses a request body with 413 and closes', async () => {
    const { server } = await start();
    const answer = await raw(server.port, 'GET /ready HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello');
    expect(answer).toMatch(/^HTTP\/1\.1 413 /);
    expect(answer.toLowerCase()).toContain('connection: close');
  });

  it('a handler that throws gives 500 with the reason, and the server keeps serving', async () => {
    const { base } = await start({
      configDump: () => {
        throw new Error('registry not loaded');
      },
    });
    const res = await fetch(`${base}/config_dump`);
    expect(res.status).toBe(500);
    expect(await res.json()).toEqual({ error: '/config_dump failed: registry not loaded' });
    expect((await fetch(`${base}/ready`)).status).toBe(503);
  });

  it('bounds the request head: oversized heads get 431, malformed ones 400', async () => {
    const { server } = await start({ limits: { maxHeaderBytes: 1024 } });
    const big = await raw(server.port, `GET /ready HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(4096)}\r\n\r\n`);
    expect(big).toMatch(/^HTTP\/1\.1 431 /);
    const bad = await raw(server.port, 'NOT HTTP AT ALL\r\n\r\n');
    expect(bad).toMatch(/^HTTP\/1\.1 400 /);
  });

  it('closes a connection whose head does not arrive within headersTimeoutMs (slowloris)', async () => {
    const { server } = await start({ limits: { headersTimeoutMs: 200, requestTimeoutMs: 300 } });
    // Half a request head, then nothing: the server must answer 408 and close by itself.
    const answer = await raw(server.port, 'GET /ready HTTP/1.1\r\nHost: x\r\n');
    expect(answer).toMatch(/^HTTP\/1\.1 408 /);
  });

  it('fails to start on a port in use with TM_ERR_PROXY_LISTEN naming the address', async () => {
    const { server } = await start();
    let caught: unknown;
    try {
      await start({ port: server.port });
    } catch (err) {
      caught = err;
    }
    expect(isTracemeshError(caught, 'TM_ERR_PROXY_LISTEN')).toBe(true);
    expect((caught as Error).message).toContain(`127.0.0.1:${server.port}`);
  });

  it('rejects bad limits, and close() is safe twice', async () => {
    await expect(start({ limits: { maxConnections: 0 } })).rejects.toThrow(/maxConnections/);
    await expect(start({ limits: { headersTimeoutMs: 5000, requestTimeoutMs: 1000 } })).rejects.toThrow(/headersTimeoutMs/);
    const { server } = await start();
    await server.close();
    await server.close();
  });
});
