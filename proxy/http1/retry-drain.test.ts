/**
 * Retries on the HTTP/1 path, measured over real sockets: the backoff's
 * randomness comes from Http1Deps.random, a retried 5xx with a small framed
 * body gives its connection back to the pool (counted at the backend), and
 * a fault abort configured as a gRPC status answers HTTP/1 callers with the
 * HTTP status that status stands for.
 */
import http from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import { RateLimitBuckets } from '../pipeline/rate-limit.js';
import { createTrafficConfig } from '../pipeline/traffic-config.js';
import { TrafficState } from '../pipeline/traffic-state.js';
import type { TrafficConfig } from '../pipeline/types.js';
import { routeYaml, serviceYaml, validMeshConfig } from '../../test/support/mesh-yaml.js';
import { outboundDirection } from '../../test/support/outbound-direction.js';
import { httpStatusOfGrpc } from './grpc-http-status.js';
import { Cleanup, startProxy, startUpstream, type TestProxy } from './proxy-harness.test-helper.js';
import { MAX_DRAINED_BODY_BYTES } from './response-drain.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** reviews (port 9080) on the backend at `port`, all of it routed by rule `api`: `rule` adds lines to that rule. */
function config(port: number, rule: string): string {
  return `${serviceYaml('reviews', { name: 'http', port: 9080, protocol: 'http' }, [port], false)}
---
${routeYaml(
  'reviews',
  `    - name: api
      destinations: [{ service: reviews }]
${rule}`,
)}`;
}

function traffic(yaml: string): TrafficConfig {
  const built = createTrafficConfig(validMeshConfig(yaml, 'retry-drain.yaml'), 'test', new TrafficState(new RateLimitBuckets()), { random: () => 0.5, now: Date.now, healthChecks: false });
  cleanup.add(() => built.close());
  return built;
}

async function proxyFor(port: number, rule: string, random?: () => number): Promise<TestProxy> {
  return startProxy(cleanup, { direction: outboundDirection(traffic(config(port, rule))), ...(random === undefined ? {} : { random }) });
}

function send(agent: http.Agent, port: number): Promise<{ status: number; flags: string | undefined; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ agent, host: '127.0.0.1', port, path: '/', headers: { host: 'reviews:9080' } }, (res) => {
      let body = '';
      res.setEncoding('latin1');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, flags: res.headers[RESPONSE_FLAGS_HEADER] as string | undefined, body }));
      res.on('error', reject);
    });
    req.setTimeout(5_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end();
  });
}

function agent(): http.Agent {
  const a = new http.Agent({ keepAlive: true, maxSockets: 1 });
  cleanup.add(() => a.destroy());
  return a;
}

/** A backend whose odd requests fail with 503 and `failBody` (written by `write`), even ones answer 200. */
async function failingEveryOther(write: (res: http.ServerResponse) => void) {
  let n = 0;
  const upstream = await startUpstream(cleanup, (req, res) => {
    req.resume();
    n++;
    if (n % 2 === 1) write(res);
    else res.end('ok');
  });
  return { port: upstream.port, connections: () => upstream.connections(), requests: () => n };
}

const RETRY_5XX = '      retries: { attempts: 1, retryOn: [5xx], backoff: { base: 100ms, max: 100ms }, budget: { percent: 100, minRetriesPerSecond: 1000 } }\n';

describe('retry backoff randomness', () => {
  it('draws each backoff from Http1Deps.random: 0.99 waits about the whole window, 0 retries at once', async () => {
    const backend = await failingEveryOther((res) => {
      res.statusCode = 503;
      res.end('busy');
    });
    let draws = 0;
    const proxy = await proxyFor(backend.port, RETRY_5XX, () => {
      draws++;
      return 0.99;
    });
    const a = agent();
    const started = performance.now();
    expect((await send(a, proxy.port)).status).toBe(200);
    expect(draws).toBe(1);
    // floor(0.99 × 101) = 99 ms of backoff: a lower bound, which load cannot break.
    expect(performance.now() - started).toBeGreaterThanOrEqual(95);

    // A 20 s window with a draw of 0: only a backoff that ignored the draw would take long
    // (the bound is far from any scheduling delay, unlike one near the window's size).
    const atOnce = await proxyFor(backend.port, RETRY_5XX.replace('base: 100ms, max: 100ms', 'base: 20s, max: 20s'), () => {
      draws++;
      return 0;
    });
    const quickStart = performance.now();
    expect((await send(a, atOnce.port)).status).toBe(200);
    expect(draws).toBe(2);
    expect(performance.now() - quickStart).toBeLessThan(10_000);
  });
});

describe('a retried response’s connection', () => {
  it('goes back to the pool when its body is small and framed, read to its end', async () => {
    const lengthBody = await failingEveryOther((res) => {
      res.writeHead(503, { 'content-length': '4' });
      res.end('busy');
    });
    const proxy = await proxyFor(lengthBody.port, RETRY_5XX, () => 0);
    const a = agent();
    for (let i = 0; i < 3; i++) expect((await send(a, proxy.port)).body).toBe('ok');
    expect(lengthBody.requests()).toBe(6);
    expect(lengthBody.connections()).toBe(1);
  });

  it('is read to its end across reads (a chunked body that ends later) and then reused', async () => {
    const chunked = await failingEveryOther((res) => {
      res.writeHead(503, { 'transfer-encoding': 'chunked' });
      res.write('partial ');
      setTimeout(() => res.end('busy'), 20);
    });
    // A backoff of 99 ms: the drain has the rest of the body well before the retry looks for a connection.
    const proxy = await proxyFor(chunked.port, RETRY_5XX, () => 0.99);
    const a = agent();
    for (let i = 0; i < 2; i++) expect((await send(a, proxy.port)).body).toBe('ok');
    expect(chunked.requests()).toBe(4);
    expect(chunked.connections()).toBe(1);
  });

  it('is closed when the body is larger than MAX_DRAINED_BODY_BYTES', async () => {
    const large = await failingEveryOther((res) => {
      res.writeHead(503, { 'content-length': String(MAX_DRAINED_BODY_BYTES + 1) });
      res.end(Buffer.alloc(MAX_DRAINED_BODY_BYTES + 1, 0x78));
    });
    const proxy = await proxyFor(large.port, RETRY_5XX, () => 0);
    const a = agent();
    for (let i = 0; i < 2; i++) expect((await send(a, proxy.port)).body).toBe('ok');
    expect(large.connections()).toBe(3);
  });
});

describe('a fault abort given as a gRPC status', () => {
  it('answers an HTTP/1 caller with the HTTP status the gRPC status stands for (flag FI)', async () => {
    let requests = 0;
    const backend = await startUpstream(cleanup, (_req, res) => {
      requests++;
      res.end('ok');
    });
    for (const [name, status] of [
      ['PERMISSION_DENIED', 403],
      ['UNAVAILABLE', 503],
      ['DEADLINE_EXCEEDED', 504],
      ['RESOURCE_EXHAUSTED', 429],
      ['UNIMPLEMENTED', 501],
    ] as const) {
      const proxy = await proxyFor(backend.port, `      fault: { abort: { grpcStatus: ${name} } }\n`);
      const answer = await send(agent(), proxy.port);
      expect([name, answer.status, answer.flags]).toEqual([name, status, 'FI']);
    }
    expect(requests).toBe(0);
  });

  it('maps every gRPC code by Envoy’s grpcToHttpStatus table, and an unknown one to 500', () => {
    expect(Array.from({ length: 17 }, (_, code) => httpStatusOfGrpc(code))).toEqual([200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401]);
    expect(httpStatusOfGrpc(17)).toBe(500);
    expect(httpStatusOfGrpc(-1)).toBe(500);
  });
});
