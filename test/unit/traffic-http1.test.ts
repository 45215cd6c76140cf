/**
 * Traffic management on the HTTP/1 path, measured: real proxies (the HTTP/1
 * path as the listener tier hands it connections, and once the whole Proxy),
 * real node:http backends on 127.0.0.1:0, configurations written as YAML and
 * validated by the real schema, TrafficConfigs built by createTrafficConfig.
 * Outcomes are counted at the backends and read from the spans; randomness
 * is seeded and the outlier clock injected where a number is the claim.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RESPONSE_FLAGS_HEADER } from '../../proxy/errors-to-wire.js';
import { MAX_RETRY_BODY_BYTES } from '../../proxy/limits.js';
import type { HttpDirection } from '../../proxy/http-direction.js';
import { Cleanup, closedPort, startProxy, type TestProxy } from '../../proxy/http1/proxy-harness.test-helper.js';
import { TEST_IDENTITY } from '../../proxy/http1/test-telemetry.test-helper.js';
import { appCluster } from '../../proxy/clusters/static-registry.js';
import { RateLimitBuckets } from '../../proxy/pipeline/rate-limit.js';
import { createTrafficConfig } from '../../proxy/pipeline/traffic-config.js';
import { TrafficState } from '../../proxy/pipeline/traffic-state.js';
import type { TrafficConfig } from '../../proxy/pipeline/types.js';
import type { ProxySpanRecord } from '../../proxy/telemetry/span-record.js';
import { Random } from '../support/fuzz/random.js';
import { destinationPolicyYaml, routeYaml, serviceYaml, validMeshConfig, versionSubsetsYaml } from '../support/mesh-yaml.js';
import { outboundDirection } from '../support/outbound-direction.js';
import { testSidecar } from '../support/sidecar.js';
import { waitUntil } from '../support/wait-until.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

interface SeenRequest {
  readonly method: string;
  readonly url: string;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

interface Backend {
  readonly port: number;
  readonly seen: SeenRequest[];
}

type Handler = (req: http.IncomingMessage, res: http.ServerResponse, n: number) => void;

const ok: Handler = (_req, res) => {
  res.setHeader('content-length', '2');
  res.end('ok');
};

/** A backend that records every request (body included) before `handle` answers it; health checks are not recorded. */
async function backend(handle: Handler = ok): Promise<Backend> {
  const seen: SeenRequest[] = [];
  const server = http.createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on('data', (chunk: Buffer) => chunks.push(chunk));
    req.on('end', () => {
      seen.push({ method: req.method ?? '', url: req.url ?? '', headers: req.headers, body: Buffer.concat(chunks).toString() });
      handle(req, res, seen.length);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, seen };
}

function answer(status: number): Handler {
  return (_req, res) => {
    res.writeHead(status, { 'content-length': '1' });
    res.end('x');
  };
}

const REVIEWS_PORT = { name: 'http', port: 9080, protocol: 'http' };

/** The reviews service (port 9080) with one endpoint per backend, labelled version v1, v2, …. */
function reviews(backends: readonly Backend[]): string {
  return `${serviceYaml('reviews', REVIEWS_PORT, backends.map((b) => b.port))}\n`;
}

/** reviews' DestinationPolicy: `extra` spec lines, then subsets v1 … v`count` (`subsets: []` for 0). */
function subsets(count: number, extra = ''): string {
  return `---\n${destinationPolicyYaml('reviews', `${extra}${versionSubsetsYaml(count)}`)}\n`;
}

function route(rules: string): string {
  return `---\n${routeYaml('reviews', rules)}`;
}

interface Built {
  readonly traffic: TrafficConfig;
  readonly clock: { now: number };
}

function build(yaml: string, seed = 7, healthChecks = false): Built {
  const rng = new Random(seed);
  const clock = { now: 1_000_000 };
  const traffic = createTrafficConfig(validMeshConfig(yaml, 'traffic-http1.yaml'), 'test', new TrafficState(new RateLimitBuckets()), {
    random: () => rng.float(),
    now: () => clock.now,
    healthChecks,
  });
  cleanup.add(() => traffic.close());
  return { traffic, clock };
}

async function outboundProxy(yaml: string, seed = 7, healthChecks = false): Promise<{ proxy: TestProxy; built: Built }> {
  const built = build(yaml, seed, healthChecks);
  const proxy = await startProxy(cleanup, { direction: outboundDirection(built.traffic) });
  return { proxy, built };
}

interface Answer {
  readonly status: number;
  readonly headers: http.IncomingHttpHeaders;
  readonly body: string;
}

function client(maxSockets = 16): http.Agent {
  const agent = new http.Agent({ keepAlive: true, maxSockets });
  cleanup.add(() => agent.destroy());
  return agent;
}

function send(agent: http.Agent, port: number, options: { path?: string; method?: string; headers?: Record<string, string>; body?: string; host?: string } = {}): Promise<Answer> {
  return new Promise((resolve, reject) => {
    const req = http.request(
      { agent, host: '127.0.0.1', port, path: options.path ?? '/', method: options.method ?? 'GET', headers: { host: options.host ?? 'reviews:9080', ...options.headers } },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (chunk: Buffer) => chunks.push(chunk));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString() }));
        res.on('error', reject);
      },
    );
    req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
    req.on('error', reject);
    req.end(options.body);
  });
}

/** `total` requests, `concurrency` at a time. */
async function sendMany(agent: http.Agent, port: number, total: number, concurrency: number, options: (i: number) => Parameters<typeof send>[2] = () => ({})): Promise<Answer[]> {
  const answers: Answer[] = new Array<Answer>(total);
  let next = 0;
  async function worker(): Promise<void> {
    while (next < total) {
      const i = next++;
      answers[i] = await send(agent, port, options(i));
    }
  }
  await Promise.all(Array.from({ length: concurrency }, () => worker()));
  return answers;
}

function attrs(span: ProxySpanRecord | undefined): Record<string, unknown> {
  return span === undefined ? {} : span.attributes;
}

describe('routing', () => {
  it('splits 90/10 by weight within 3 points over 2,000 requests', async () => {
    const [v1, v2] = [await backend(), await backend()];
    const { proxy } = await outboundProxy(
      reviews([v1!, v2!]) +
        subsets(2) +
        route(`    - name: canary
      destinations:
        - { service: reviews, subset: v1, weight: 90 }
        - { service: reviews, subset: v2, weight: 10 }
`),
    );
    const answers = await sendMany(client(), proxy.port, 2000, 16);
    expect(answers.every((a) => a.status === 200)).toBe(true);
    const share = v2!.seen.length / 2000;
    expect(v1!.seen.length + v2!.seen.length).toBe(2000);
    expect(Math.abs(share - 0.1)).toBeLessThanOrEqual(0.03);
    // The rule's name went upstream and onto the spans, with the subset chosen.
    expect(v1!.seen[0]?.headers['x-tracemesh-route']).toBe('canary');
    const subsetsSeen = new Set(proxy.tel.spans.map((s) => attrs(s)['tracemesh.subset']));
    expect(subsetsSeen).toEqual(new Set(['v1', 'v2']));
    expect(attrs(proxy.tel.spans[0])['tracemesh.route']).toBe('canary');
  });

  it('routes by header, and answers 404 NR when a Route covers the service but no rule matches', async () => {
    const [v1, v2] = [await backend(), await backend()];
    const { proxy } = await outboundProxy(
      reviews([v1!, v2!]) +
        subsets(2) +
        route(`    - name: jason
      match: [{ headers: { end-user: { exact: jason } } }]
      destinations: [{ service: reviews, subset: v2 }]
    - name: api
      match: [{ path: { prefix: /api/ } }]
      destinations: [{ service: reviews, subset: v1 }]
`),
    );
    const agent = client();
    for (let i = 0; i < 10; i++) {
      expect((await send(agent, proxy.port, { path: '/api/x', headers: { 'end-user': 'jason' } })).status).toBe(200);
      expect((await send(agent, proxy.port, { path: '/api/x', headers: { 'end-user': 'bob' } })).status).toBe(200);
    }
    expect(v2!.seen.map((r) => r.headers['end-user'])).toEqual(Array(10).fill('jason'));
    expect(v1!.seen.map((r) => r.headers['end-user'])).toEqual(Array(10).fill('bob'));
    const none = await send(agent, proxy.port, { path: '/other' });
    expect(none.status).toBe(404);
    expect(none.headers[RESPONSE_FLAGS_HEADER]).toBe('NR');
    expect(v1!.seen.length + v2!.seen.length).toBe(20);
  });

  it('keeps a consistent-hash key on one endpoint', async () => {
    const backends = [await backend(), await backend(), await backend()];
    const { proxy } = await outboundProxy(reviews(backends) + subsets(0, '  loadBalancer: { consistentHash: { header: x-user } }\n'));
    const agent = client();
    const keys = Array.from({ length: 40 }, (_, i) => `user-${i}`);
    await sendMany(agent, proxy.port, keys.length * 10, 8, (i) => ({ headers: { 'x-user': keys[i % keys.length] as string } }));
    const where = new Map<string, Set<number>>();
    backends.forEach((b, index) => {
      for (const r of b.seen) {
        const key = r.headers['x-user'] as string;
        where.set(key, (where.get(key) ?? new Set()).add(index));
      }
    });
    expect(where.size).toBe(keys.length);
    for (const [key, endpoints] of where) expect(endpoints.size, key).toBe(1);
    // And the keys do spread: every endpoint owns some.
    expect(backends.every((b) => b.seen.length > 0)).toBe(true);
  });

  it('redirects, rewrites path and host, and edits headers both ways', async () => {
    const upstream = await backend((_req, res) => {
      res.setHeader('x-internal', 'secret');
      res.setHeader('content-length', '2');
      res.end('ok');
    });
    const { proxy } = await outboundProxy(
      reviews([upstream]) +
        route(`    - name: old
      match: [{ path: { prefix: /old/ } }]
      redirect: { path: /new, code: 308 }
    - name: api
      match: [{ path: { prefix: /api/ } }]
      rewrite: { pathPrefix: /, host: reviews.internal }
      headers:
        request: { set: { x-added: yes }, remove: [x-drop] }
        response: { remove: [x-internal], add: { x-served-by: reviews } }
      destinations: [{ service: reviews }]
`),
    );
    const agent = client();
    const redirected = await send(agent, proxy.port, { path: '/old/page?q=1' });
    expect(redirected.status).toBe(308);
    expect(redirected.headers['location']).toBe('http://reviews:9080/new?q=1');
    expect(upstream.seen).toHaveLength(0);

    const rewritten = await send(agent, proxy.port, { path: '/api/items?x=2', headers: { 'x-drop': 'gone', 'x-keep': 'kept' } });
    expect(rewritten.status).toBe(200);
    expect(rewritten.headers['x-internal']).toBeUndefined();
    expect(rewritten.headers['x-served-by']).toBe('reviews');
    const seen = upstream.seen[0];
    expect(seen?.url).toBe('/items?x=2');
    expect(seen?.headers['host']).toBe('reviews.internal');
    expect(seen?.headers['x-added']).toBe('yes');
    expect(seen?.headers['x-drop']).toBeUndefined();
    expect(seen?.headers['x-keep']).toBe('kept');
    expect(seen?.headers['x-tracemesh-route']).toBe('api');
  });
});

describe('faults', () => {
  it('aborts with the configured status (flag FI) and delays by the configured time', async () => {
    const upstream = await backend();
    const { proxy } = await outboundProxy(
      reviews([upstream]) +
        route(`    - name: broken
      match: [{ path: { exact: /broken } }]
      fault: { abort: { status: 418 } }
      destinations: [{ service: reviews }]
    - name: slow
      fault: { delay: { fixed: 150ms } }
      destinations: [{ service: reviews }]
`),
    );
    const agent = client();
    const aborted = await send(agent, proxy.port, { path: '/broken' });
    expect(aborted.status).toBe(418);
    expect(aborted.headers[RESPONSE_FLAGS_HEADER]).toBe('FI');
    expect(upstream.seen).toHaveLength(0);
    const started = performance.now();
    const delayed = await send(agent, proxy.port, { path: '/slow', method: 'POST', body: 'payload' });
    expect(performance.now() - started).toBeGreaterThanOrEqual(145);
    expect(delayed.status).toBe(200);
    expect(upstream.seen[0]?.body).toBe('payload');
    const spans = proxy.tel.spans.map(attrs);
    expect(spans[0]?.['tracemesh.response_flags']).toBe('FI');
    expect(spans[1]?.['tracemesh.fault.delay_ms']).toBe(150);
  });
});

describe('retries', () => {
  it('masks a backend failing 1 request in 3: no error reaches the client over 300 requests', async () => {
    const flaky = await backend((req, res, n) => (n % 3 === 0 ? answer(503)(req, res, n) : ok(req, res, n)));
    const { proxy } = await outboundProxy(
      reviews([flaky]) +
        route(`    - name: api
      destinations: [{ service: reviews }]
      retries: { attempts: 2, retryOn: [5xx], backoff: { base: 1ms }, budget: { percent: 100, minRetriesPerSecond: 100000 } }
`),
    );
    const answers = await sendMany(client(), proxy.port, 300, 1, (i) => ({ method: 'POST', body: `body-${i}` }));
    expect(answers.filter((a) => a.status !== 200)).toEqual([]);
    const failed = flaky.seen.filter((_r, i) => (i + 1) % 3 === 0);
    expect(failed.length).toBeGreaterThanOrEqual(100);
    // Every retry carried the same body as its first try.
    expect(flaky.seen.length).toBe(300 + failed.length);
    // One CLIENT span per attempt: the retries are attempt 2, with their own span ids under the same parent.
    const retries = proxy.tel.spans.filter((s) => attrs(s)['tracemesh.attempt'] === 2);
    expect(retries.length).toBe(failed.length);
    const first = proxy.tel.spans.find((s) => s.spanId !== retries[0]?.spanId && s.traceId === retries[0]?.traceId);
    expect(first?.parentSpanId).toBe(retries[0]?.parentSpanId);
    expect(first?.spanId).not.toBe(retries[0]?.spanId);
    const upstreamParents = new Set(flaky.seen.map((r) => String(r.headers['traceparent']).split('-')[2]));
    expect(upstreamParents.size).toBe(flaky.seen.length);
  });

  it('stops at the retry budget in a full outage: upstream attempts ≤ requests × (1 + 20 %)', async () => {
    const held: http.ServerResponse[] = [];
    const down = await backend((_req, res) => held.push(res));
    const { proxy } = await outboundProxy(
      reviews([down]) +
        route(`    - name: api
      destinations: [{ service: reviews }]
      retries: { attempts: 3, retryOn: [5xx], backoff: { base: 1ms }, budget: { percent: 20, minRetriesPerSecond: 0 } }
`),
    );
    const agent = client(10);
    const waves = 5;
    const perWave = 10;
    let statuses: number[] = [];
    for (let wave = 0; wave < waves; wave++) {
      const before = down.seen.length;
      const pending = Array.from({ length: perWave }, () => send(agent, proxy.port));
      let done = 0;
      const all = Promise.all(pending.map((p) => p.then((a) => (done++, a))));
      await waitUntil('the wave to reach the backend', () => down.seen.length - before === perWave);
      // Answer 503 to whatever is held until every client has its answer.
      while (done < perWave) {
        for (const res of held.splice(0)) answer(503)(undefined as never, res, 0);
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
      statuses = statuses.concat((await all).map((a) => a.status));
    }
    expect(statuses).toEqual(Array(waves * perWave).fill(503));
    expect(down.seen.length).toBeGreaterThan(waves * perWave);
    expect(down.seen.length).toBeLessThanOrEqual(waves * perWave * 1.2);
    const flags = proxy.tel.spans.map((s) => String(attrs(s)['tracemesh.response_flags']));
    expect(flags.filter((f) => f.includes('URX')).length).toBe(waves * perWave);
  });

  it('gives up at the route timeout (504 UT) and retries a per-try timeout on another endpoint', async () => {
    const silent = await backend(() => {});
    const fine = await backend();
    const { proxy } = await outboundProxy(
      reviews([silent, fine]) +
        route(`    - name: api
      destinations: [{ service: reviews }]
      timeout: 2s
      retries: { attempts: 1, perTryTimeout: 100ms, retryOn: [reset], backoff: { base: 1ms } , budget: { percent: 100, minRetriesPerSecond: 1000 } }
`),
    );
    const agent = client();
    const answers = await sendMany(agent, proxy.port, 6, 1);
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    expect(fine.seen).toHaveLength(6);
    expect(silent.seen.length).toBeGreaterThan(0);
    const timedOut = proxy.tel.spans.filter((s) => String(attrs(s)['tracemesh.response_flags']).includes('UT'));
    expect(timedOut.length).toBe(silent.seen.length);
  });

  it('resends a kept body on every retry, and does not retry a body longer than MAX_RETRY_BODY_BYTES', async () => {
    const down = await backend(answer(503));
    const { proxy } = await outboundProxy(
      reviews([down]) +
        route(`    - name: api
      destinations: [{ service: reviews }]
      retries: { attempts: 2, retryOn: [5xx], backoff: { base: 1ms }, budget: { percent: 100, minRetriesPerSecond: 1000 } }
`),
    );
    const agent = client(1);
    const small = 'a'.repeat(10 * 1024);
    const retried = await send(agent, proxy.port, { method: 'POST', body: small });
    expect(retried.status).toBe(503);
    expect(down.seen.map((r) => r.body.length)).toEqual([small.length, small.length, small.length]);
    const large = 'b'.repeat(MAX_RETRY_BODY_BYTES + 1);
    const streamed = await send(agent, proxy.port, { method: 'POST', body: large });
    expect(streamed.status).toBe(503);
    expect(down.seen).toHaveLength(4);
    expect(down.seen[3]?.body).toBe(large);
    // Retries exhausted: the last attempt's answer went down with URX; the unretried one without.
    const flags = proxy.tel.spans.map((s) => attrs(s)['tracemesh.response_flags']);
    expect(flags).toEqual(['-', '-', 'URX', '-']);
  });

  it('retries a connect failure on another endpoint', async () => {
    const closed = await backend();
    const fine = await backend();
    const { proxy } = await outboundProxy(
      reviews([closed, fine]).replace(`port: ${closed.port}`, `port: ${await closedPort()}`) +
        route(`    - name: api
      destinations: [{ service: reviews }]
      retries: { attempts: 1, retryOn: [connect-failure], backoff: { base: 1ms }, budget: { percent: 100, minRetriesPerSecond: 1000 } }
`),
    );
    const answers = await sendMany(client(1), proxy.port, 6, 1);
    expect(answers.map((a) => a.status)).toEqual(Array(6).fill(200));
    expect(fine.seen).toHaveLength(6);
    const failed = proxy.tel.spans.filter((s) => attrs(s)['tracemesh.response_flags'] === 'UF');
    expect(failed.length).toBeGreaterThan(0);
    expect(failed.every((s) => attrs(s)['tracemesh.attempt'] === 1)).toBe(true);
    expect(proxy.tel.spans.filter((s) => attrs(s)['tracemesh.attempt'] === 2)).toHaveLength(failed.length);
  });

  it('answers 504 UT when the route timeout passes', async () => {
    const silent = await backend(() => {});
    const { proxy } = await outboundProxy(reviews([silent]) + route(`    - name: api\n      destinations: [{ service: reviews }]\n      timeout: 200ms\n`));
    const started = performance.now();
    const answer504 = await send(client(), proxy.port);
    expect(answer504.status).toBe(504);
    expect(answer504.headers[RESPONSE_FLAGS_HEADER]).toBe('UT');
    expect(performance.now() - started).toBeGreaterThanOrEqual(195);
  });
});

describe('route timeout over the whole response', () => {
  /** A backend that sends its head (content-length `size`) at once, then one byte every `everyMs`. */
  function trickle(size: number, everyMs: number): Handler {
    return (_req, res) => {
      res.writeHead(200, { 'content-length': String(size) });
      res.flushHeaders();
      let sent = 0;
      const timer = setInterval(() => {
        res.write('x');
        if (++sent === size) {
          clearInterval(timer);
          res.end();
        }
      }, everyMs);
      res.on('close', () => clearInterval(timer));
    };
  }

  interface Received {
    readonly status: number;
    readonly bodyBytes: number;
    /** The response arrived whole (its content-length reached). */
    readonly complete: boolean;
    /** When the head arrived and when the response ended or was cut, ms after the request went. */
    readonly headAtMs: number;
    readonly endAtMs: number;
  }

  /** One GET through the proxy on a connection of its own, read to its end or to its cut. */
  function receive(port: number): Promise<Received> {
    return new Promise((resolve, reject) => {
      const started = performance.now();
      const req = http.request({ agent: false, host: '127.0.0.1', port, path: '/', headers: { host: 'reviews:9080' } }, (res) => {
        const headAtMs = performance.now() - started;
        let bodyBytes = 0;
        res.on('data', (chunk: Buffer) => (bodyBytes += chunk.length));
        res.on('error', () => {}); // 'aborted' on a cut body: the outcome is read on 'close'
        res.on('close', () => resolve({ status: res.statusCode ?? 0, bodyBytes, complete: res.complete, headAtMs, endAtMs: performance.now() - started }));
      });
      req.setTimeout(10_000, () => req.destroy(new Error('request timed out')));
      req.on('error', reject);
      req.end();
    });
  }

  it('cuts a response whose body trickles past the route timeout, and flags its span UT', async () => {
    const slow = await backend(trickle(40, 25));
    const { proxy } = await outboundProxy(reviews([slow]) + route(`    - name: api\n      destinations: [{ service: reviews }]\n      timeout: 200ms\n`));
    const got = await receive(proxy.port);
    // The head came at once and went down; the body was cut at the timeout, well before its 40 × 25 ms.
    expect(got.status).toBe(200);
    expect(got.headAtMs).toBeLessThan(150);
    expect(got.complete).toBe(false);
    expect(got.bodyBytes).toBeGreaterThan(0);
    expect(got.bodyBytes).toBeLessThan(40);
    expect(got.endAtMs).toBeGreaterThanOrEqual(195);
    expect(got.endAtMs).toBeLessThan(900);
    await waitUntil('the span', () => proxy.tel.spans.length === 1);
    const span = attrs(proxy.tel.spans[0]);
    expect(span['tracemesh.response_flags']).toBe('UT');
    expect(span['http.response.status_code']).toBe(200);
  });

  it('leaves a trickled response that completes within the route timeout untouched', async () => {
    const slow = await backend(trickle(8, 20));
    const { proxy } = await outboundProxy(reviews([slow]) + route(`    - name: api\n      destinations: [{ service: reviews }]\n      timeout: 2s\n`));
    const got = await receive(proxy.port);
    expect(got).toMatchObject({ status: 200, bodyBytes: 8, complete: true });
    await waitUntil('the span', () => proxy.tel.spans.length === 1);
    expect(attrs(proxy.tel.spans[0])['tracemesh.response_flags']).toBe('-');
  });
});

describe('destinations', () => {
  it('ejects a backend answering 500 after 3 consecutive failures, and takes it back after the ejection time', async () => {
    const bad = await backend(answer(500));
    const good = await backend();
    const { proxy, built } = await outboundProxy(
      reviews([bad, good]) +
        subsets(0, '  outlierDetection: { consecutive5xx: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 50 }\n'),
    );
    const agent = client(1);
    await sendMany(agent, proxy.port, 6, 1);
    expect(bad.seen).toHaveLength(3);
    await sendMany(agent, proxy.port, 20, 1);
    expect(bad.seen).toHaveLength(3);
    expect(good.seen).toHaveLength(23);
    built.clock.now += 30_001;
    await sendMany(agent, proxy.port, 4, 1);
    expect(bad.seen.length).toBeGreaterThan(3);
  });

  it('marks exactly the attempt whose failure ejected its endpoint, and the attempts whose ejection maxEjectionPercent refused', async () => {
    const [bad1, bad2, good] = [await backend(answer(500)), await backend(answer(502)), await backend()];
    const { proxy } = await outboundProxy(
      reviews([bad1, bad2, good]) +
        subsets(0, '  outlierDetection: { consecutive5xx: 3, consecutiveGatewayErrors: 0, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 34 }\n'),
    );
    // Round robin, one at a time: bad1, bad2, good, bad1, …; bad1's third 500 ejects it (the first ejection is always allowed);
    // bad2's third 502 would make 2 of 3 ejected (67 % > 34 %): refused, and so is every later one.
    const answers = await sendMany(client(1), proxy.port, 12, 1);
    expect(answers.filter((a) => a.status === 200).length).toBeGreaterThan(0);
    await waitUntil('12 spans', () => proxy.tel.spans.length === 12);
    const spansOf = (b: Backend): ProxySpanRecord[] => proxy.tel.spans.filter((s) => attrs(s)['tracemesh.upstream.address'] === `127.0.0.1:${b.port}`);
    const ejected = proxy.tel.spans.filter((s) => attrs(s)['tracemesh.outlier.ejected'] === true);
    expect(ejected).toHaveLength(1);
    expect(ejected[0]).toBe(spansOf(bad1)[2]);
    expect(attrs(ejected[0])['tracemesh.outlier.reason']).toBe('consecutive-5xx');
    expect(spansOf(bad1)).toHaveLength(3);
    const bad2Spans = spansOf(bad2);
    expect(bad2Spans.length).toBeGreaterThanOrEqual(4);
    expect(bad2Spans.map((s) => attrs(s)['tracemesh.outlier.ejection_refused'] === true)).toEqual(bad2Spans.map((_, i) => i >= 2));
    expect(attrs(bad2Spans[2])['tracemesh.outlier.reason']).toBe('consecutive-5xx');
    for (const s of spansOf(good)) expect(Object.keys(attrs(s)).filter((k) => k.startsWith('tracemesh.outlier.'))).toEqual([]);
    // Two of three usable the whole time: never in panic.
    expect(proxy.tel.spans.some((s) => 'tracemesh.lb.panic' in attrs(s))).toBe(false);
  });

  it('marks picks made in panic mode when 3 of 4 endpoints fail their health checks', async () => {
    const failing = new Set<number>();
    const checked: Handler = (req, res, _n) => {
      const port = req.socket.localPort ?? 0;
      res.writeHead(req.url === '/healthz' && failing.has(port) ? 500 : 200, { 'content-length': '2' });
      res.end('ok');
    };
    const backends = [await backend(checked), await backend(checked), await backend(checked), await backend(checked)];
    for (const b of backends.slice(1)) failing.add(b.port);
    const { proxy, built } = await outboundProxy(
      reviews(backends) + subsets(0, '  healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 1 }\n'),
      7,
      true,
    );
    const destination = built.traffic.destinations.find((d) => d.name === 'reviews.default:9080')!;
    await waitUntil('panic', () => destination.status?.().panic === true);
    const answers = await sendMany(client(1), proxy.port, 8, 1);
    expect(answers.map((a) => a.status)).toEqual(Array(8).fill(200));
    await waitUntil('8 spans', () => proxy.tel.spans.length === 8);
    expect(proxy.tel.spans.map((s) => attrs(s)['tracemesh.lb.panic'])).toEqual(Array(8).fill(true));
    // Balanced over all four, the failing ones included.
    expect(new Set(proxy.tel.spans.map((s) => attrs(s)['tracemesh.upstream.address'])).size).toBe(4);

    // Two of four pass again: 50 % is not below the threshold, no panic.
    failing.delete(backends[1]!.port);
    await waitUntil('the end of panic', () => destination.status?.().panic === false);
    await sendMany(client(1), proxy.port, 4, 1);
    await waitUntil('12 spans', () => proxy.tel.spans.length === 12);
    expect(proxy.tel.spans.slice(8).some((s) => 'tracemesh.lb.panic' in attrs(s))).toBe(false);
  });

  it('answers 503 UO at maxRequests: N requests held open, the next is refused', async () => {
    const held: http.ServerResponse[] = [];
    let holding = true;
    const slow = await backend((req, res, n) => (holding ? held.push(res) : ok(req, res, n)));
    const { proxy } = await outboundProxy(reviews([slow]) + subsets(0, '  connectionPool: { maxRequests: 3 }\n'));
    const agent = client(8);
    const open = [send(agent, proxy.port), send(agent, proxy.port), send(agent, proxy.port)];
    await waitUntil('3 requests at the backend', () => held.length === 3);
    const refused = await send(agent, proxy.port);
    expect(refused.status).toBe(503);
    expect(refused.headers[RESPONSE_FLAGS_HEADER]).toBe('UO');
    expect(slow.seen).toHaveLength(3);
    expect(proxy.tel.spans.map((s) => attrs(s)['tracemesh.response_flags'])).toEqual(['UO']);
    holding = false;
    for (const res of held.splice(0)) ok(undefined as never, res, 0);
    expect((await Promise.all(open)).map((a) => a.status)).toEqual([200, 200, 200]);
    expect((await send(agent, proxy.port)).status).toBe(200);
  });

  it('queues a request at maxConnections (maxPendingRequests) and refuses beyond the queue', async () => {
    const held: http.ServerResponse[] = [];
    const slow = await backend((_req, res) => held.push(res));
    const { proxy, built } = await outboundProxy(reviews([slow]) + subsets(0, '  connectionPool: { maxConnections: 1, maxPendingRequests: 1 }\n'));
    const status = () => built.traffic.destinations.find((d) => d.name === 'reviews.default:9080')?.status?.();
    const agent = client(8);
    const first = send(agent, proxy.port);
    await waitUntil('the first request at the backend', () => held.length === 1);
    const queued = send(agent, proxy.port);
    await waitUntil('the second request queued', () => status()?.pendingRequests === 1);
    // The queue holds one: a third is refused at once.
    const refused = await send(agent, proxy.port);
    expect(refused.status).toBe(503);
    expect(refused.headers[RESPONSE_FLAGS_HEADER]).toBe('UO');
    expect(slow.seen).toHaveLength(1);
    // Releasing the one connection serves the queued request on it.
    ok(undefined as never, held.shift() as http.ServerResponse, 0);
    await waitUntil('the queued request at the backend', () => held.length === 1);
    expect(status()?.pendingRequests).toBe(0);
    ok(undefined as never, held.shift() as http.ServerResponse, 0);
    expect([(await first).status, (await queued).status]).toEqual([200, 200]);
    expect(proxy.pool.stats().open).toBe(1);
  });
});

describe('mirror', () => {
  it('sends a copy with the -shadow authority and the mirror header, discards its answer, and spans it', async () => {
    const main = await backend();
    const shadow = await backend(answer(500));
    const { proxy } = await outboundProxy(
      reviews([main, shadow]) +
        subsets(2) +
        route(`    - name: api
      destinations: [{ service: reviews, subset: v1 }]
      mirror: { service: reviews, subset: v2, percent: 100 }
`),
    );
    const agent = client();
    const answers = await sendMany(agent, proxy.port, 5, 1, (i) => ({ method: 'POST', body: `copy-${i}` }));
    expect(answers.map((a) => a.status)).toEqual(Array(5).fill(200));
    await waitUntil('5 copies at the mirror', () => shadow.seen.length === 5);
    expect(main.seen.map((r) => r.body)).toEqual(shadow.seen.map((r) => r.body));
    expect(shadow.seen[0]?.headers['host']).toBe('reviews-shadow:9080');
    expect(shadow.seen[0]?.headers['x-tracemesh-mirror']).toBe('1');
    expect(main.seen[0]?.headers['x-tracemesh-mirror']).toBeUndefined();
    await waitUntil('the mirror spans', () => proxy.tel.spans.filter((s) => attrs(s)['tracemesh.mirror'] === 'true').length === 5);
    const copies = proxy.tel.spans.filter((s) => attrs(s)['tracemesh.mirror'] === 'true');
    expect(copies.every((s) => attrs(s)['http.response.status_code'] === 500)).toBe(true);
    const mains = proxy.tel.spans.filter((s) => attrs(s)['tracemesh.mirror'] === undefined);
    expect(mains.every((s) => attrs(s)['tracemesh.mirrored_to'] === 'reviews.default:9080|v2')).toBe(true);
  });
});

describe('inbound rate limit', () => {
  it('answers 429 RL after exactly maxTokens requests, naming the limit', async () => {
    const app = await backend();
    const { traffic } = build(`apiVersion: tracemesh.dev/v1
kind: Service
metadata: { name: ${TEST_IDENTITY.service}, namespace: ${TEST_IDENTITY.namespace} }
spec:
  ports: [{ name: http, port: 9080, protocol: http }]
---
apiVersion: tracemesh.dev/v1
kind: RateLimit
metadata: { name: five-per-hour, namespace: ${TEST_IDENTITY.namespace} }
spec:
  target: { service: ${TEST_IDENTITY.service} }
  tokenBucket: { maxTokens: 5, fillInterval: 1h }
`);
    const target = { cluster: appCluster(TEST_IDENTITY.service, TEST_IDENTITY.namespace, TEST_IDENTITY.version, app.port), routeName: '' };
    const direction: HttpDirection = { direction: 'inbound', spanKind: 'server', route: () => target, traffic: undefined, rateLimits: () => traffic.rateLimits };
    const proxy = await startProxy(cleanup, { direction });
    const answers = await sendMany(client(), proxy.port, 8, 1, () => ({ host: 'app' }));
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 200, 200, 429, 429, 429]);
    expect(answers[5]?.headers['x-tracemesh-rate-limited']).toBe('five-per-hour');
    expect(answers[5]?.headers[RESPONSE_FLAGS_HEADER]).toBe('RL');
    expect(app.seen).toHaveLength(5);
    expect(attrs(proxy.tel.spans[5])['tracemesh.rate_limit']).toBe('five-per-hour');
  });
});

describe('the whole proxy', () => {
  /** A whole sidecar (productpage) with `yaml` as its static config; stopped after the test. */
  async function startSidecar(yaml: string): Promise<ReturnType<typeof testSidecar>> {
    const config = validMeshConfig(yaml, 'traffic-http1.yaml');
    const proxy = testSidecar('productpage', 1, { services: config.services, config });
    cleanup.add(() => proxy.stop());
    await proxy.start();
    return proxy;
  }

  it('applies the static config: routes outbound, shows destinations on /clusters and routes on /config_dump', async () => {
    const [v1, v2] = [await backend(), await backend()];
    const yaml = reviews([v1!, v2!]) + subsets(2) + route(`    - name: to-v2\n      destinations: [{ service: reviews, subset: v2 }]\n`);
    const proxy = await startSidecar(yaml);
    const answers = await sendMany(client(), proxy.outboundPort, 10, 2);
    expect(answers.map((a) => a.status)).toEqual(Array(10).fill(200));
    expect(v2!.seen).toHaveLength(10);
    expect(v2!.seen[0]?.headers['x-tracemesh-route']).toBe('to-v2');
    const admin = `http://127.0.0.1:${proxy.adminPort}`;
    const clusters = (await (await fetch(`${admin}/clusters`)).json()) as { destinations: Array<{ name: string; endpoints: Array<{ endpoint: string; state: string }> }> };
    const destination = clusters.destinations.find((d) => d.name === 'reviews.default:9080|v2');
    expect(destination?.endpoints).toEqual([expect.objectContaining({ endpoint: `127.0.0.1:${v2!.port}`, state: 'healthy' })]);
    const dump = (await (await fetch(`${admin}/config_dump`)).json()) as { routes: Array<{ name: string }> };
    expect(dump.routes.map((r) => r.name)).toEqual(['reviews']);
  });

  it('counts an outlier ejection in the metrics and shows it on /clusters', async () => {
    const failing = await backend(answer(500));
    const yaml =
      reviews([failing]) +
      subsets(0, '  outlierDetection: { consecutive5xx: 1, interval: 10s, baseEjectionTime: 5m, maxEjectionPercent: 100 }\n');
    const proxy = await startSidecar(yaml);
    expect((await send(client(), proxy.outboundPort)).status).toBe(500);
    const admin = `http://127.0.0.1:${proxy.adminPort}`;
    const metrics = await (await fetch(`${admin}/stats/prometheus`)).text();
    expect(metrics).toContain('tracemesh_outlier_ejections_total{destination="reviews.default:9080",reason="consecutive-5xx",result="ejected"} 1');
    const clusters = (await (await fetch(`${admin}/clusters`)).json()) as { destinations: Array<{ name: string; endpoints: Array<{ state: string }> }> };
    const state = clusters.destinations.find((d) => d.name === 'reviews.default:9080')?.endpoints[0]?.state ?? '';
    expect(state).toMatch(/^ejected until \d{4}-\d\d-\d\dT/);
  });
});
