/**
 * Active health checks do not become traces (proxy/telemetry/
 * health-check-trace.ts), through the real parts: an outbound HTTP/1 proxy
 * whose DestinationPolicy checks every 100 ms, the checked endpoints being
 * inbound HTTP/1 proxies fronting node:http apps, as in explicit mode. Over
 * several intervals the checks reach the apps, unsampled, and no proxy
 * records a span for them, while requests sent through the same pair still
 * make their CLIENT and SERVER spans. The checker itself sends no trace
 * context. Waits are polls with deadlines on what the apps have seen.
 */
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, inboundDirection, rawExchange, readResponses, responsesComplete, startProxy, type TestProxy } from '../../proxy/http1/proxy-harness.test-helper.js';
import { HEALTH_CHECK_HEADER } from '../../proxy/pipeline/health-check.js';
import { RateLimitBuckets } from '../../proxy/pipeline/rate-limit.js';
import { createTrafficConfig } from '../../proxy/pipeline/traffic-config.js';
import { TrafficState } from '../../proxy/pipeline/traffic-state.js';
import { Random } from '../support/fuzz/random.js';
import { destinationPolicyYaml, serviceYaml, validMeshConfig } from '../support/mesh-yaml.js';
import { outboundDirection } from '../support/outbound-direction.js';
import { waitUntil } from '../support/wait-until.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const REVIEWS = { service: 'reviews', namespace: 'default', version: 'v1' };
const HEALTH_CHECK = '  healthCheck: { path: /healthz, interval: 100ms, timeout: 100ms, healthyThreshold: 1, unhealthyThreshold: 2 }\n  subsets: []';

interface App {
  readonly port: number;
  readonly checks: http.IncomingHttpHeaders[];
  readonly traffic: http.IncomingHttpHeaders[];
}

/** An app answering 200, keeping the headers of checks and of other requests apart. */
async function app(): Promise<App> {
  const checks: http.IncomingHttpHeaders[] = [];
  const traffic: http.IncomingHttpHeaders[] = [];
  const server = http.createServer((req, res) => {
    (req.headers[HEALTH_CHECK_HEADER] === undefined ? traffic : checks).push(req.headers);
    req.resume();
    res.writeHead(200, { 'content-length': '2' }).end('ok');
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  cleanup.add(async () => {
    server.closeAllConnections();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { port: (server.address() as AddressInfo).port, checks, traffic };
}

/** An outbound proxy for the reviews service at `endpointPorts`, its DestinationPolicy checking them. */
async function outbound(endpointPorts: number[]): Promise<TestProxy> {
  const yaml = `${serviceYaml('reviews', { name: 'http', port: 9080, protocol: 'http' }, endpointPorts)}\n---\n${destinationPolicyYaml('reviews', HEALTH_CHECK)}\n`;
  const rng = new Random(5);
  const traffic = createTrafficConfig(validMeshConfig(yaml, 'health-check-spans.yaml'), 'test', new TrafficState(new RateLimitBuckets()), {
    random: () => rng.float(),
    healthChecks: true,
  });
  cleanup.add(() => traffic.close());
  return startProxy(cleanup, { direction: outboundDirection(traffic) });
}

async function get(proxy: TestProxy, path: string): Promise<number> {
  const result = await rawExchange(proxy.port, [`GET ${path} HTTP/1.1\r\nHost: reviews:9080\r\n\r\n`], responsesComplete(1));
  return readResponses(result.text).responses[0]?.status ?? 0;
}

describe('DestinationPolicy health checks through an outbound and inbound pair', () => {
  it('make no span anywhere over several intervals, while traffic through the pair is traced', async () => {
    const apps = [await app(), await app()];
    const inbounds = [await startProxy(cleanup, { direction: inboundDirection(apps[0]!.port, REVIEWS), identity: REVIEWS }), await startProxy(cleanup, { direction: inboundDirection(apps[1]!.port, REVIEWS), identity: REVIEWS })];
    const caller = await outbound(inbounds.map((p) => p.port));
    const spans = (): number => caller.tel.spans.length + inbounds[0]!.tel.spans.length + inbounds[1]!.tel.spans.length;

    // A few intervals of checks on each endpoint (the first is spread over the first second).
    await waitUntil('4 checks at each app', () => apps.every((a) => a.checks.length >= 4), 10_000);
    // The inbound proxies finished those exchanges (their request metric counts the checks).
    await waitUntil('the checks in the inbound request metrics', () => inbounds.every((p) => p.tel.requests.length >= 4));
    expect(spans()).toBe(0);
    for (const a of apps) {
      for (const check of a.checks) {
        expect(check['traceparent']).toMatch(/^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/);
        expect(check['host']).toBe('reviews.default:9080');
      }
    }

    // Traffic through the same pair: one CLIENT span per request at the caller, one SERVER span at the endpoint that served it.
    for (let i = 0; i < 4; i++) expect(await get(caller, `/page/${i}`)).toBe(200);
    await waitUntil('4 SERVER spans', () => inbounds[0]!.tel.spans.length + inbounds[1]!.tel.spans.length === 4);
    expect(caller.tel.spans.map((s) => s.kind)).toEqual(['client', 'client', 'client', 'client']);
    const served = [...inbounds[0]!.tel.spans, ...inbounds[1]!.tel.spans];
    expect(served.every((s) => s.kind === 'server')).toBe(true);
    const clientIds = new Set(caller.tel.spans.map((s) => s.spanId));
    expect(served.every((s) => clientIds.has(s.parentSpanId))).toBe(true);
    const traffic = [...apps[0]!.traffic, ...apps[1]!.traffic];
    expect(traffic).toHaveLength(4);
    expect(traffic.every((h) => /-01$/.test(String(h['traceparent'])))).toBe(true);

    // And checks keep going without adding any.
    const checked = apps.map((a) => a.checks.length);
    await waitUntil('3 more checks at each app', () => apps.every((a, i) => a.checks.length >= (checked[i] as number) + 3), 10_000);
    await waitUntil('those in the inbound request metrics', () => inbounds.every((p, i) => p.tel.requests.length >= (checked[i] as number) + 3 + apps[i]!.traffic.length));
    expect(spans()).toBe(8);
  });

  it('the checker sends no trace context of its own', async () => {
    const direct = await app();
    await outbound([direct.port]);
    await waitUntil('2 checks at the app', () => direct.checks.length >= 2, 10_000);
    for (const check of direct.checks) {
      expect(Object.keys(check).sort()).toEqual(['connection', 'host', HEALTH_CHECK_HEADER]);
    }
  });
});
