/**
 * Traffic management on the HTTP/2 and gRPC path, measured over real
 * sockets: a real proxy direction (proxy/http2 fixture) whose traffic
 * config is built by createTrafficConfig from YAML validated by the real
 * validateMeshConfigText, grpc-js and node:http2 clients, and h2c backends
 * on 127.0.0.1:0 that speak gRPC framing by hand so each test decides what
 * every call answers.
 */
import * as grpc from '@grpc/grpc-js';
import http from 'node:http';
import type { IncomingHttpHeaders, ServerHttp2Stream } from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import type { MeshConfig } from '../../src/config/types.js';
import { RESPONSE_FLAGS_HEADER } from '../../proxy/errors-to-wire.js';
import type { HttpDirection } from '../../proxy/http-direction.js';
import { EchoClient, type CallResult, type EchoReply } from '../../proxy/http2/grpc-echo.test-helper.js';
import { answerPeerAddress, h2Call, h2Connect, loopbackSourceConnector, startH2Upstream, type H2Upstream } from '../../proxy/http2/h2-peers.test-helper.js';
import { startProxy, type RunningProxy } from '../../proxy/http2/proxy-fixture.test-helper.js';
import { createTrafficConfig } from '../../proxy/pipeline/traffic-config.js';
import { TrafficState } from '../../proxy/pipeline/traffic-state.js';
import type { TrafficConfig } from '../../proxy/pipeline/types.js';
import { appCluster } from '../../proxy/clusters/static-registry.js';
import { destinationPolicyYaml, routeYaml, serviceYaml, validMeshConfig, versionSubsetsYaml } from '../support/mesh-yaml.js';
import { Random } from '../support/fuzz/random.js';
import { outboundDirection } from '../support/outbound-direction.js';
import { waitUntil } from '../support/wait-until.js';

/** What a backend does with one call: answer OK, answer a gRPC status (trailers-only), or never answer. */
type Answer = 'ok' | number | 'hang';

interface GrpcBackend {
  readonly upstream: H2Upstream;
  readonly port: number;
  /** Calls received. */
  readonly calls: () => number;
  /** Streams held open by 'hang', answered OK by release(). */
  release(): void;
}

function grpcFrame(message: unknown): Buffer {
  const payload = Buffer.from(JSON.stringify(message));
  const frame = Buffer.alloc(5 + payload.length);
  frame.writeUInt32BE(payload.length, 1);
  payload.copy(frame, 5);
  return frame;
}

function answerOk(stream: ServerHttp2Stream, name: string): void {
  if (stream.closed || stream.destroyed) return;
  stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'x-backend': name }, { waitForTrailers: true });
  stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
  stream.end(grpcFrame({ text: name }));
}

const cleanups: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** A gRPC backend named `name` whose n-th call (1-based) gets `decide(n, headers)`; the answer goes once the request has ended. */
async function grpcBackend(name: string, decide: (n: number, headers: IncomingHttpHeaders) => Answer = () => 'ok', delayMs = 0): Promise<GrpcBackend> {
  let calls = 0;
  const held: ServerHttp2Stream[] = [];
  const timers = new Set<NodeJS.Timeout>();
  const answer = (stream: ServerHttp2Stream, what: Answer): void => {
    if (what === 'hang') held.push(stream);
    else if (what === 'ok') answerOk(stream, name);
    else if (!stream.closed) stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': String(what), 'grpc-message': `${name} says no` }, { endStream: true });
  };
  const upstream = await startH2Upstream((stream, headers) => {
    const n = ++calls;
    const what = decide(n, headers);
    stream.resume();
    stream.once('end', () => {
      if (delayMs === 0) answer(stream, what);
      else {
        const timer = setTimeout(() => {
          timers.delete(timer);
          answer(stream, what);
        }, delayMs);
        timers.add(timer);
      }
    });
  });
  cleanups.push(() => {
    for (const timer of timers) clearTimeout(timer);
  });
  const backend: GrpcBackend = {
    upstream,
    port: upstream.port,
    calls: () => calls,
    release: () => {
      for (const stream of held.splice(0)) answerOk(stream, name);
    },
  };
  cleanups.push(() => upstream.close());
  return backend;
}

function meshConfig(yaml: string): MeshConfig {
  return validMeshConfig(yaml, 'traffic-http2.test.yaml');
}

const ECHO_PORT = { name: 'grpc', port: 50051, protocol: 'grpc' };

/** The echo service (gRPC, port 50051) with one endpoint per backend, labelled version v1, v2…, and the given extra documents. */
function echoConfig(backends: readonly GrpcBackend[], documents: string): MeshConfig {
  return meshConfig(`${serviceYaml('echo', ECHO_PORT, backends.map((b) => b.port))}
---
${documents}`);
}

/** A Route for echo with `rules`, after subsets v1 and v2 of echo when `withSubsets`. */
function echoRoute(rules: string, withSubsets = false): string {
  const route = routeYaml('echo', rules);
  return withSubsets ? `${destinationPolicyYaml('echo', versionSubsetsYaml(2))}\n---\n${route}` : route;
}

/** A TrafficConfig built from `config` (closed after the test), health checks off unless asked for. */
function trafficOf(config: MeshConfig, random?: () => number, healthChecks = false): TrafficConfig {
  const traffic = createTrafficConfig(config, 'test', new TrafficState(), { healthChecks, ...(random === undefined ? {} : { random }) });
  cleanups.push(() => traffic.close());
  return traffic;
}

/** A plain HTTP/2 session to the proxy (destroyed after the test). */
function plainSession(proxy: RunningProxy, from?: string): ReturnType<typeof h2Connect> {
  const session = h2Connect(proxy.port, from);
  cleanups.push(() => void session.destroy());
  return session;
}

/** One plain HTTP/2 GET / to echo:50051 through the proxy, on a session of its own. */
function plainEchoCall(proxy: RunningProxy): ReturnType<typeof h2Call> {
  return h2Call(plainSession(proxy), { ':method': 'GET', ':path': '/', ':authority': 'echo:50051' });
}

/** The call failed with gRPC status `code` and the proxy's response flag `flag`. */
function expectRefused(result: CallResult<EchoReply>, code: grpc.status, flag: string): void {
  expect(result.status.code).toBe(code);
  expect(result.status.metadata.get(RESPONSE_FLAGS_HEADER)).toEqual([flag]);
}

async function outboundProxy(config: MeshConfig, random?: () => number, healthChecks = false): Promise<{ proxy: RunningProxy; client: EchoClient; traffic: TrafficConfig }> {
  const traffic = trafficOf(config, random, healthChecks);
  const proxy = await startProxy({ direction: outboundDirection(traffic) });
  cleanups.push(() => proxy.close());
  const client = new EchoClient(proxy.port, 'echo:50051');
  cleanups.push(() => client.close());
  return { proxy, client, traffic };
}

/** `count` unary calls, `concurrency` at a time. */
async function calls(client: EchoClient, count: number, concurrency: number, metadata?: () => grpc.Metadata): Promise<CallResult<EchoReply>[]> {
  const results: CallResult<EchoReply>[] = [];
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < count) {
      next++;
      results.push(await client.unary({ text: 'x' }, metadata?.() ?? new grpc.Metadata()));
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
  return results;
}

describe('traffic management on the HTTP/2 / gRPC path', () => {
  it('splits gRPC calls 80/20 between subsets within 3 points over 1,000 calls', async () => {
    const v1 = await grpcBackend('v1');
    const v2 = await grpcBackend('v2');
    const config = echoConfig(
      [v1, v2],
      echoRoute(`    - name: canary
      destinations:
        - { service: echo, subset: v1, weight: 80 }
        - { service: echo, subset: v2, weight: 20 }`, true),
    );
    // Seeded, so the weighted choices are repeatable.
    const rng = new Random(7);
    const { client, proxy } = await outboundProxy(config, () => rng.float());
    const results = await calls(client, 1_000, 20);
    expect(results.filter((r) => r.status.code !== grpc.status.OK)).toEqual([]);
    expect(v1.calls() + v2.calls()).toBe(1_000);
    expect(Math.abs(v1.calls() / 1_000 - 0.8)).toBeLessThanOrEqual(0.03);
    // Each call's span names the rule and the subset it went to.
    const spans = await proxy.spansAfter(0, 1_000);
    const bySubset = new Map<unknown, number>();
    for (const span of spans) bySubset.set(span.attributes['tracemesh.subset'], (bySubset.get(span.attributes['tracemesh.subset']) ?? 0) + 1);
    expect(bySubset.get('v1')).toBe(v1.calls());
    expect(bySubset.get('v2')).toBe(v2.calls());
    expect(spans.every((s) => s.attributes['tracemesh.route'] === 'canary')).toBe(true);
    // The next hop learns the rule's name.
    expect(v1.upstream.requests[0]?.['x-tracemesh-route']).toBe('canary');
  });

  it('routes on a gRPC metadata header', async () => {
    const v1 = await grpcBackend('v1');
    const v2 = await grpcBackend('v2');
    const config = echoConfig(
      [v1, v2],
      echoRoute(`    - name: jason
      match: [{ headers: { end-user: { exact: jason } } }]
      destinations: [{ service: echo, subset: v2 }]
    - name: everyone
      destinations: [{ service: echo, subset: v1 }]`, true),
    );
    const { client } = await outboundProxy(config);
    const jason = (): grpc.Metadata => {
      const md = new grpc.Metadata();
      md.set('end-user', 'jason');
      return md;
    };
    const asJason = await calls(client, 10, 2, jason);
    const others = await calls(client, 10, 2);
    expect(asJason.map((r) => r.value?.text)).toEqual(Array(10).fill('v2'));
    expect(others.map((r) => r.value?.text)).toEqual(Array(10).fill('v1'));
    expect([v1.calls(), v2.calls()]).toEqual([10, 10]);
  });

  it('masks a backend that answers UNAVAILABLE to every third call with retries, one span per attempt', async () => {
    const flaky = await grpcBackend('flaky', (n) => (n % 3 === 0 ? grpc.status.UNAVAILABLE : 'ok'));
    const config = echoConfig(
      [flaky],
      echoRoute(`    - name: retried
      destinations: [{ service: echo }]
      retries:
        attempts: 2
        retryOn: [gateway-error]
        backoff: { base: 1ms, max: 5ms }
        budget: { percent: 100, minRetriesPerSecond: 1000 }`),
    );
    const { client, proxy } = await outboundProxy(config);
    const results = await calls(client, 300, 1);
    expect(results.filter((r) => r.status.code !== grpc.status.OK)).toEqual([]);
    // Every third call at the backend failed and was tried again: 300 answers took 449 or 450 calls.
    expect(flaky.calls()).toBeGreaterThanOrEqual(449);
    const retries = flaky.calls() - 300;
    const spans = await proxy.spansAfter(0, 300 + retries);
    const firsts = spans.filter((s) => s.attributes['tracemesh.attempt'] === 1);
    const seconds = spans.filter((s) => s.attributes['tracemesh.attempt'] === 2);
    expect(firsts).toHaveLength(300);
    expect(seconds).toHaveLength(retries);
    // A retried call: two sibling spans in one trace, the failed one an error with UNAVAILABLE.
    const second = seconds[0]!;
    const first = spans.find((s) => s.traceId === second.traceId && s.attributes['tracemesh.attempt'] === 1)!;
    expect(first.spanId).not.toBe(second.spanId);
    expect(first.parentSpanId).toBe(second.parentSpanId);
    expect(first.attributes['rpc.grpc.status_code']).toBe(grpc.status.UNAVAILABLE);
    expect(first.status).toBe('error');
    expect(second.attributes['rpc.grpc.status_code']).toBe(grpc.status.OK);
    // Each attempt sent its own span id upstream.
    const sentParents = flaky.upstream.requests.map((h) => String(h['traceparent']).split('-')[2]);
    expect(sentParents).toContain(first.spanId);
    expect(sentParents).toContain(second.spanId);
  });

  it('stops retrying at the retry budget during a full outage', async () => {
    // Slow enough that all the calls are in flight together when the first answers come back.
    const down = await grpcBackend('down', () => grpc.status.UNAVAILABLE, 50);
    const config = echoConfig(
      [down],
      echoRoute(`    - name: retried
      destinations: [{ service: echo }]
      retries:
        attempts: 3
        retryOn: [5xx]
        backoff: { base: 1ms, max: 2ms }
        budget: { percent: 20, minRetriesPerSecond: 1 }`),
    );
    const { client, proxy } = await outboundProxy(config);
    const requests = 50;
    const started = Date.now();
    const results = await calls(client, requests, requests);
    const elapsedS = (Date.now() - started) / 1000;
    expect(results.every((r) => r.status.code === grpc.status.UNAVAILABLE)).toBe(true);
    // Without a budget 50 × (1 + 3) = 200 calls. The budget lets retries in
    // flight be at most 20 % of the active requests (plus a minimum of 1 per
    // second from a bucket that starts full). The calls fail in waves: of the
    // 50 first tries at most 10 are retried, and the rest end with URX; those
    // ≤ 10 retries are then the active requests, allowing ≤ 2 more, and so
    // on: at most 50 × (0.2 + 0.04 + …) = 50 × 0.2 / 0.8 = 12.5 retries.
    expect(down.calls()).toBeGreaterThan(requests);
    expect(down.calls()).toBeLessThanOrEqual(requests / 0.8 + 1 + Math.ceil(elapsedS));
    const spans = await proxy.spansAfter(0, down.calls());
    const refused = spans.filter((s) => String(s.attributes['tracemesh.response_flags']).includes('URX'));
    expect(refused.length).toBeGreaterThan(0);
  });

  it('aborts with a fault gRPC status, and a plain HTTP/2 caller gets its HTTP status', async () => {
    const backend = await grpcBackend('never');
    const config = echoConfig(
      [backend],
      echoRoute(`    - name: broken
      destinations: [{ service: echo }]
      fault: { abort: { grpcStatus: RESOURCE_EXHAUSTED } }`),
    );
    const { client, proxy } = await outboundProxy(config);
    const result = await client.unary({ text: 'x' });
    expectRefused(result, grpc.status.RESOURCE_EXHAUSTED, 'FI');
    const plain = await plainEchoCall(proxy);
    expect(plain.headers?.[':status']).toBe(429);
    expect(backend.calls()).toBe(0);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('FI');
  });

  it('times out a call at the route timeout: DEADLINE_EXCEEDED for gRPC, 504 for plain HTTP/2', async () => {
    const slow = await grpcBackend('slow', () => 'hang');
    const config = echoConfig(
      [slow],
      echoRoute(`    - name: bounded
      destinations: [{ service: echo }]
      timeout: 150ms`),
    );
    const { client, proxy } = await outboundProxy(config);
    const started = Date.now();
    const result = await client.unary({ text: 'x' });
    expectRefused(result, grpc.status.DEADLINE_EXCEEDED, 'UT');
    expect(Date.now() - started).toBeGreaterThanOrEqual(140);
    const plain = await plainEchoCall(proxy);
    expect(plain.headers?.[':status']).toBe(504);
    expect(plain.headers?.[RESPONSE_FLAGS_HEADER]).toBe('UT');
    slow.release();
  });

  it('retries a try that exceeds its per-try timeout on another attempt', async () => {
    const backend = await grpcBackend('sometimes-slow', (n) => (n === 1 ? 'hang' : 'ok'));
    const config = echoConfig(
      [backend],
      echoRoute(`    - name: per-try
      destinations: [{ service: echo }]
      timeout: 2s
      retries: { attempts: 1, perTryTimeout: 100ms, retryOn: [reset], budget: { percent: 100 } }`),
    );
    const { client, proxy } = await outboundProxy(config);
    const result = await client.unary({ text: 'x' });
    expect(result.status.code).toBe(grpc.status.OK);
    expect(backend.calls()).toBe(2);
    const spans = await proxy.spansAfter(0, 2);
    expect(spans.map((s) => [s.attributes['tracemesh.attempt'], s.attributes['tracemesh.response_flags']])).toEqual([
      [1, 'UT'],
      [2, '-'],
    ]);
    backend.release();
  });

  it('answers UNAVAILABLE with flag UO once maxRequests calls are in flight', async () => {
    const held = await grpcBackend('held', (n) => (n <= 2 ? 'hang' : 'ok'));
    const config = echoConfig([held], destinationPolicyYaml('echo', '  connectionPool: { maxRequests: 2 }'));
    const { client } = await outboundProxy(config);
    const open = [client.unary({ text: 'a' }), client.unary({ text: 'b' })];
    await waitUntil('2 calls at the backend', () => held.calls() === 2);
    const refused = await client.unary({ text: 'c' });
    expectRefused(refused, grpc.status.UNAVAILABLE, 'UO');
    expect(held.calls()).toBe(2);
    held.release();
    const answered = await Promise.all(open);
    expect(answered.map((r) => r.status.code)).toEqual([grpc.status.OK, grpc.status.OK]);
    // The finished calls gave their places back: the next two pass together.
    const after = await Promise.all([client.unary({ text: 'd' }), client.unary({ text: 'e' })]);
    expect(after.map((r) => r.status.code)).toEqual([grpc.status.OK, grpc.status.OK]);
  });

  it('holds maxPendingRequests calls while a session is being opened, refuses more with UO, and fails them at connectTimeout', async () => {
    // Accepts TCP and never says a word: the HTTP/2 session never gets the server's SETTINGS.
    const sockets = new Set<net.Socket>();
    const silent = net.createServer((socket) => {
      sockets.add(socket);
      socket.on('error', () => {});
    });
    await new Promise<void>((resolve) => silent.listen(0, '127.0.0.1', resolve));
    cleanups.push(
      () =>
        new Promise<void>((resolve) => {
          for (const socket of sockets) socket.destroy();
          silent.close(() => resolve());
        }),
    );
    const port = (silent.address() as net.AddressInfo).port;
    const config = meshConfig(`${serviceYaml('echo', ECHO_PORT, [port], false)}
---
${destinationPolicyYaml('echo', '  connectionPool: { maxPendingRequests: 1, connectTimeout: 300ms }')}`);
    const { client } = await outboundProxy(config);
    const started = Date.now();
    const waiting = client.unary({ text: 'a' });
    await waitUntil('the proxy to connect to the silent backend', () => sockets.size > 0);
    const refused = await client.unary({ text: 'b' });
    expectRefused(refused, grpc.status.UNAVAILABLE, 'UO');
    const timedOut = await waiting;
    expectRefused(timedOut, grpc.status.UNAVAILABLE, 'UF');
    expect(timedOut.status.details).toContain('connect timeout after 300 ms');
    expect(Date.now() - started).toBeGreaterThanOrEqual(290);
  });

  it('sends a mirror copy with a -shadow authority and discards its answer', async () => {
    const live = await grpcBackend('live');
    const shadow = await grpcBackend('shadow', () => grpc.status.INTERNAL);
    const config = echoConfig(
      [live, shadow],
      MIRRORED_TO_V2,
    );
    const { client, proxy } = await outboundProxy(config);
    const counted = countMirrors(proxy);
    const result = await client.unary({ text: 'copy me' });
    expect(result.status.code).toBe(grpc.status.OK);
    expect(result.value?.text).toBe('live');
    const spans = await proxy.spansAfter(0, 2);
    expect(counted).toEqual(['echo.default:50051|v2 sent']);
    await waitUntil('the copy at the shadow', () => shadow.calls() === 1);
    const copy = shadow.upstream.requests[0]!;
    expect(copy[':authority']).toBe('echo-shadow:50051');
    expect(copy['x-tracemesh-mirror']).toBe('1');
    const main = spans.find((s) => s.attributes['tracemesh.mirror'] === undefined)!;
    const mirror = spans.find((s) => s.attributes['tracemesh.mirror'] === 'true')!;
    expect(main.attributes['tracemesh.mirrored_to']).toBe('echo.default:50051|v2');
    expect(mirror.traceId).toBe(main.traceId);
    expect(mirror.attributes['rpc.grpc.status_code']).toBe(grpc.status.INTERNAL);
  });

  it('drops a mirror copy whose destination has no endpoint, counts the drop, and answers the call', async () => {
    const live = await grpcBackend('live');
    const config = echoConfig(
      [live],
      MIRRORED_TO_V2,
    );
    const { client, proxy } = await outboundProxy(config);
    const counted = countMirrors(proxy);
    const result = await client.unary({ text: 'copy me' });
    expect(result.status.code).toBe(grpc.status.OK);
    const [main] = await proxy.spansAfter(0, 1);
    expect(main!.attributes['tracemesh.mirrored_to']).toBeUndefined();
    expect(counted).toEqual(['echo.default:50051|v2 dropped']);
  });
});

/** Every call goes to subset v1, a copy of it to subset v2. */
const MIRRORED_TO_V2 = echoRoute(
  `    - name: mirrored
      destinations: [{ service: echo, subset: v1 }]
      mirror: { service: echo, subset: v2, percent: 100 }`,
  true,
);

/** The proxy's recordMirror calls, as "destination sent|dropped" (the recording telemetry does not keep them). */
function countMirrors(proxy: RunningProxy): string[] {
  const counted: string[] = [];
  proxy.telemetry.metrics.recordMirror = (destination, sent) => void counted.push(`${destination} ${sent ? 'sent' : 'dropped'}`);
  return counted;
}

/**
 * A backend on one port for both kinds of client: h2c gRPC calls (answered
 * OK, named `name`) and the proxy's active health checks, which are HTTP/1
 * GETs (answered `checkStatus()`). The first bytes of a connection decide:
 * the HTTP/2 preface is piped to an h2c gRPC backend, anything else to an
 * HTTP/1 server (each on a port of its own behind this one).
 */
async function checkedGrpcBackend(name: string, checkStatus: () => number): Promise<{ port: number }> {
  const h2 = await grpcBackend(name);
  const h1 = http.createServer((_req, res) => {
    res.writeHead(checkStatus(), { 'content-length': '2' });
    res.end('ok');
  });
  await new Promise<void>((resolve) => h1.listen(0, '127.0.0.1', resolve));
  const h1Port = (h1.address() as net.AddressInfo).port;
  const sockets = new Set<net.Socket>();
  const track = (socket: net.Socket): void => {
    sockets.add(socket);
    socket.on('error', () => socket.destroy());
    socket.once('close', () => sockets.delete(socket));
  };
  const server = net.createServer((socket) => {
    track(socket);
    socket.once('data', (first: Buffer) => {
      const upstream = net.connect(first.toString('latin1', 0, 3) === 'PRI' ? h2.port : h1Port, '127.0.0.1');
      track(upstream);
      upstream.write(first);
      socket.pipe(upstream);
      upstream.pipe(socket);
      upstream.once('close', () => socket.destroy());
      socket.once('close', () => upstream.destroy());
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanups.push(
    () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        h1.closeAllConnections();
        h1.close();
        server.close(() => resolve());
      }),
  );
  return { port: (server.address() as net.AddressInfo).port };
}

describe('load-balancing and outlier decisions on the spans (HTTP/2, gRPC)', () => {
  it('marks exactly the try whose failure ejected its endpoint, and the tries whose ejection maxEjectionPercent refused', async () => {
    const bad1 = await grpcBackend('bad1', () => grpc.status.UNAVAILABLE);
    const bad2 = await grpcBackend('bad2', () => grpc.status.UNAVAILABLE);
    const good = await grpcBackend('good');
    const config = echoConfig(
      [bad1, bad2, good],
      destinationPolicyYaml('echo', '  outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 3, interval: 1s, baseEjectionTime: 30s, maxEjectionPercent: 34 }\n  subsets: []'),
    );
    const { client, proxy } = await outboundProxy(config);
    // Round robin, one call at a time: bad1's third UNAVAILABLE (a gateway error) ejects it, the first ejection
    // always being allowed; bad2's third would leave 2 of 3 ejected (67 % > 34 %): refused, and every later one too.
    await calls(client, 12, 1);
    const spans = await proxy.spansAfter(0, 12);
    const spansOf = (b: GrpcBackend): typeof spans => spans.filter((s) => s.attributes['tracemesh.upstream.address'] === `127.0.0.1:${b.port}`);
    const ejected = spans.filter((s) => s.attributes['tracemesh.outlier.ejected'] === true);
    expect(ejected).toHaveLength(1);
    expect(spansOf(bad1)).toHaveLength(3);
    expect(ejected[0]).toBe(spansOf(bad1)[2]);
    expect(ejected[0]!.attributes['tracemesh.outlier.reason']).toBe('consecutive-gateway');
    const bad2Spans = spansOf(bad2);
    expect(bad2Spans.length).toBeGreaterThanOrEqual(4);
    expect(bad2Spans.map((s) => s.attributes['tracemesh.outlier.ejection_refused'] === true)).toEqual(bad2Spans.map((_, i) => i >= 2));
    for (const s of spansOf(good)) expect(Object.keys(s.attributes).filter((k) => k.startsWith('tracemesh.outlier.'))).toEqual([]);
    expect(spans.some((s) => 'tracemesh.lb.panic' in s.attributes)).toBe(false);
  });

  it('marks calls balanced in panic mode when 3 of 4 endpoints fail their health checks', async () => {
    const failing = [false, true, true, true];
    const backends = await Promise.all(failing.map((_, i) => checkedGrpcBackend(`b${i}`, () => (failing[i] ? 500 : 200))));
    const config = meshConfig(`${serviceYaml('echo', ECHO_PORT, backends.map((b) => b.port))}
---
${destinationPolicyYaml('echo', '  healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 1 }\n  subsets: []')}`);
    const { client, proxy, traffic } = await outboundProxy(config, undefined, true);
    const destination = traffic.destinations.find((d) => d.name === 'echo.default:50051')!;
    await waitUntil('panic', () => destination.status?.().panic === true);
    const results = await calls(client, 8, 1);
    expect(results.map((r) => r.status.code)).toEqual(Array(8).fill(grpc.status.OK));
    const spans = await proxy.spansAfter(0, 8);
    expect(spans.map((s) => s.attributes['tracemesh.lb.panic'])).toEqual(Array(8).fill(true));
    expect(new Set(spans.map((s) => s.attributes['tracemesh.upstream.address'])).size).toBe(4);

    // Two of four pass again: 50 % is not below the threshold, no panic.
    failing[1] = false;
    await waitUntil('the end of panic', () => destination.status?.().panic === false);
    await calls(client, 4, 1);
    const later = await proxy.spansAfter(8, 4);
    expect(later.some((s) => 'tracemesh.lb.panic' in s.attributes)).toBe(false);
  });
});

describe('the route timeout over the whole response (HTTP/2, gRPC)', () => {
  /**
   * A backend that answers every stream's head at once, then sends `count`
   * chunks (gRPC frames for a gRPC call) one every `everyMs`, then ends
   * (grpc-status 0 in trailers for gRPC).
   */
  async function trickleBackend(count: number, everyMs: number): Promise<H2Upstream> {
    const timers = new Set<NodeJS.Timeout>();
    const upstream = await startH2Upstream((stream, headers) => {
      const grpcCall = String(headers['content-type'] ?? '').startsWith('application/grpc');
      stream.resume();
      stream.respond({ ':status': 200, 'content-type': grpcCall ? 'application/grpc' : 'application/octet-stream' }, { waitForTrailers: grpcCall });
      if (grpcCall) stream.once('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      let sent = 0;
      const timer = setInterval(() => {
        if (stream.closed || stream.destroyed) return;
        stream.write(grpcCall ? grpcFrame({ text: `part ${sent}` }) : 'x');
        if (++sent === count) {
          clearInterval(timer);
          timers.delete(timer);
          stream.end();
        }
      }, everyMs);
      timers.add(timer);
      stream.once('close', () => {
        clearInterval(timer);
        timers.delete(timer);
      });
    });
    cleanups.push(() => upstream.close());
    cleanups.push(() => {
      for (const timer of timers) clearInterval(timer);
    });
    return upstream;
  }

  function trickleConfig(upstream: H2Upstream, timeout: string): MeshConfig {
    return meshConfig(`${serviceYaml('echo', ECHO_PORT, [upstream.port])}
---
${echoRoute(`    - name: bounded
      destinations: [{ service: echo }]
      timeout: ${timeout}`)}`);
  }

  it('resets a plain HTTP/2 response whose body trickles past the route timeout, and flags its span UT', async () => {
    const upstream = await trickleBackend(40, 25);
    const { proxy } = await outboundProxy(trickleConfig(upstream, '200ms'));
    const started = performance.now();
    const got = await plainEchoCall(proxy);
    expect(got.headers?.[':status']).toBe(200);
    expect(got.rstCode).toBe(2); // NGHTTP2_INTERNAL_ERROR: the client knows the body is not whole
    expect(got.body.length).toBeGreaterThan(0);
    expect(got.body.length).toBeLessThan(40);
    expect(performance.now() - started).toBeGreaterThanOrEqual(195);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UT');
    expect(span?.attributes['http.response.status_code']).toBe(200);
  });

  it('ends a gRPC stream cut by the route timeout with DEADLINE_EXCEEDED, after the messages sent in time', async () => {
    const upstream = await trickleBackend(40, 25);
    const { proxy, client } = await outboundProxy(trickleConfig(upstream, '200ms'));
    const result = await client.serverStream({ text: 'x' });
    expect(result.status.code).toBe(grpc.status.DEADLINE_EXCEEDED);
    expect(result.value?.length).toBeGreaterThan(0);
    expect(result.value?.length).toBeLessThan(40);
    const [span] = await proxy.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('UT');
    expect(span?.attributes['rpc.grpc.status_code']).toBe(grpc.status.DEADLINE_EXCEEDED);
  });

  it('leaves responses that complete within the route timeout untouched', async () => {
    const upstream = await trickleBackend(5, 20);
    const { proxy, client } = await outboundProxy(trickleConfig(upstream, '2s'));
    const result = await client.serverStream({ text: 'x' });
    expect(result.status.code).toBe(grpc.status.OK);
    expect(result.value).toHaveLength(5);
    const plain = await plainEchoCall(proxy);
    expect(plain.headers?.[':status']).toBe(200);
    expect(plain.rstCode).toBe(0);
    expect(plain.body.toString()).toBe('xxxxx');
    const spans = await proxy.spansAfter(0, 2);
    expect(spans.map((s) => s.attributes['tracemesh.response_flags'])).toEqual(['-', '-']);
  });
});

describe('route rules on plain HTTP/2', () => {
  /** A plain h2 backend that answers 200 with what it received, or `status` for the n-th request. */
  async function h2Backend(statusOf: (n: number) => number = () => 200): Promise<{ upstream: H2Upstream; bodies: number[] }> {
    const bodies: number[] = [];
    const upstream = await startH2Upstream((stream, headers) => {
      let size = 0;
      stream.on('data', (chunk: Buffer) => (size += chunk.length));
      stream.once('end', () => {
        bodies.push(size);
        const status = statusOf(bodies.length);
        if (stream.closed) return;
        stream.respond({ ':status': status, 'x-seen-path': String(headers[':path']), 'x-seen-authority': String(headers[':authority']), 'x-internal': 'secret' });
        stream.end(JSON.stringify({ size, tag: headers['x-tag'] ?? null }));
      });
    });
    cleanups.push(() => upstream.close());
    return { upstream, bodies };
  }

  function webConfig(port: number, rules: string): MeshConfig {
    return meshConfig(`${serviceYaml('web', { name: 'h2', port: 8080, protocol: 'http2' }, [port])}
---
${routeYaml('web', rules)}`);
  }

  async function webProxy(config: MeshConfig): Promise<{ proxy: RunningProxy; session: ReturnType<typeof h2Connect> }> {
    const proxy = await startProxy({ direction: outboundDirection(trafficOf(config)) });
    cleanups.push(() => proxy.close());
    return { proxy, session: plainSession(proxy) };
  }

  it('redirects, rewrites path and authority, edits headers, delays, and answers NR when no rule matches', async () => {
    const backend = await h2Backend();
    const config = webConfig(
      backend.upstream.port,
      `    - name: old
      match: [{ path: { prefix: /old/ } }]
      redirect: { path: /new, code: 308 }
    - name: api
      match: [{ path: { prefix: /api/ } }]
      rewrite: { pathPrefix: /, host: web-internal }
      headers:
        request: { set: { x-tag: tagged } }
        response: { remove: [x-internal], add: { x-route-seen: api } }
      fault: { delay: { fixed: 120ms } }
      destinations: [{ service: web }]`,
    );
    const { proxy, session } = await webProxy(config);
    const moved = await h2Call(session, { ':method': 'GET', ':path': '/old/page?q=1', ':authority': 'web:8080' });
    expect(moved.headers?.[':status']).toBe(308);
    expect(moved.headers?.['location']).toBe('http://web:8080/new?q=1');
    const started = Date.now();
    const res = await h2Call(session, { ':method': 'GET', ':path': '/api/items?x=1', ':authority': 'web:8080' });
    expect(Date.now() - started).toBeGreaterThanOrEqual(110);
    expect(res.headers?.[':status']).toBe(200);
    expect(res.headers?.['x-seen-path']).toBe('/items?x=1');
    expect(res.headers?.['x-seen-authority']).toBe('web-internal');
    expect(res.headers?.['x-internal']).toBeUndefined();
    expect(res.headers?.['x-route-seen']).toBe('api');
    expect(JSON.parse(res.body.toString())).toEqual({ size: 0, tag: 'tagged' });
    const none = await h2Call(session, { ':method': 'GET', ':path': '/elsewhere', ':authority': 'web:8080' });
    expect(none.headers?.[':status']).toBe(404);
    expect(none.headers?.[RESPONSE_FLAGS_HEADER]).toBe('NR');
    expect(backend.bodies).toHaveLength(1);
    const spans = await proxy.spansAfter(0, 3);
    const delayed = spans.find((s) => s.attributes['tracemesh.route'] === 'api');
    expect(delayed?.attributes['tracemesh.fault.delay_ms']).toBe(120);
  });

  it('keeps each client\'s tries on sessions from its own address when the pool\'s connector keeps it', async () => {
    const up = await startH2Upstream(answerPeerAddress);
    cleanups.push(() => up.close());
    const config = webConfig(up.port, `    - name: all
      destinations: [{ service: web }]`);
    const connector = loopbackSourceConnector();
    const proxy = await startProxy({ direction: outboundDirection(trafficOf(config)), connector });
    cleanups.push(() => proxy.close());
    const answers: string[] = [];
    for (const from of ['127.0.0.2', '127.0.0.3']) {
      const client = plainSession(proxy, from);
      const res = await h2Call(client, { ':method': 'GET', ':path': '/', ':authority': 'web:8080' });
      expect(res.headers?.[':status']).toBe(200);
      answers.push(res.body.toString());
    }
    expect(answers).toEqual(['127.0.0.2', '127.0.0.3']);
    expect(connector.connectedFor).toEqual(['127.0.0.2', '127.0.0.3']);
    const sessions = proxy.pool.stats().sessions.map((s) => `${s.destination} ${s.source}`).sort();
    expect(sessions).toEqual(['web.default:8080 127.0.0.2', 'web.default:8080 127.0.0.3']);
  });

  it('retries a request with its buffered body, and not one whose body is over 64 KiB', async () => {
    // Every odd request fails with 503.
    const backend = await h2Backend((n) => (n % 2 === 1 ? 503 : 200));
    const config = webConfig(
      backend.upstream.port,
      `    - name: retried
      destinations: [{ service: web }]
      retries: { attempts: 1, retryOn: [gateway-error], budget: { percent: 100, minRetriesPerSecond: 100 } }`,
    );
    const { proxy, session } = await webProxy(config);
    const small = Buffer.alloc(10 * 1024, 7);
    const ok = await h2Call(session, { ':method': 'POST', ':path': '/', ':authority': 'web:8080' }, small);
    expect(ok.headers?.[':status']).toBe(200);
    expect(JSON.parse(ok.body.toString()).size).toBe(small.length);
    expect(backend.bodies).toEqual([small.length, small.length]);
    const large = Buffer.alloc(100 * 1024, 7);
    const failed = await h2Call(session, { ':method': 'POST', ':path': '/', ':authority': 'web:8080' }, large);
    expect(failed.headers?.[':status']).toBe(503);
    expect(backend.bodies).toEqual([small.length, small.length, large.length]);
    const spans = await proxy.spansAfter(0, 3);
    expect(spans.map((s) => s.attributes['tracemesh.attempt'])).toEqual([1, 2, 1]);
  });
});

describe('inbound rate limits on the HTTP/2 / gRPC path', () => {
  it('refuses past the bucket: RESOURCE_EXHAUSTED for gRPC, 429 for plain HTTP/2, flag RL', async () => {
    const app = await grpcBackend('app');
    const config = echoConfig(
      [app],
      `apiVersion: tracemesh.dev/v1
kind: RateLimit
metadata: { name: echo-limit }
spec:
  target: { service: echo }
  tokenBucket: { maxTokens: 3, tokensPerFill: 1, fillInterval: 1h }`,
    );
    const traffic = trafficOf(config);
    const identity = { service: 'echo', namespace: 'default', version: 'v1' };
    const cluster = appCluster(identity.service, identity.namespace, identity.version, app.port);
    const direction: HttpDirection = {
      direction: 'inbound',
      spanKind: 'server',
      route: () => ({ cluster, routeName: '' }),
      traffic: undefined,
      rateLimits: () => traffic.rateLimits,
    };
    const proxy = await startProxy({ direction, identity });
    cleanups.push(() => proxy.close());
    const client = new EchoClient(proxy.port, 'echo:50051');
    cleanups.push(() => client.close());
    const admitted = await calls(client, 3, 1);
    expect(admitted.map((r) => r.status.code)).toEqual([0, 0, 0]);
    const refused = await client.unary({ text: 'x' });
    expectRefused(refused, grpc.status.RESOURCE_EXHAUSTED, 'RL');
    expect(refused.status.metadata.get('x-tracemesh-rate-limited')).toEqual(['echo-limit']);
    const plain = await plainEchoCall(proxy);
    expect(plain.headers?.[':status']).toBe(429);
    expect(plain.headers?.['x-tracemesh-rate-limited']).toBe('echo-limit');
    expect(app.calls()).toBe(3);
    const spans = await proxy.spansAfter(0, 5);
    expect(spans.filter((s) => s.attributes['tracemesh.rate_limit'] === 'echo-limit')).toHaveLength(2);
  });
});
