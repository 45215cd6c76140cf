/**
 * Active health checks on the HTTP/1 path (telemetry/health-check-trace.ts):
 * an inbound GET carrying x-tracemesh-health-check reaches the app with the
 * header and an unsampled traceparent, and the proxy records no span for it
 * (its request metric stays); everything else is traced as before. Real
 * inbound proxy, real node:http app, recording telemetry. "No span" is read
 * once the request metric shows the exchange finished (both come from the
 * same finishHttpObservation call), so a span would already be there.
 */
import type { IncomingHttpHeaders } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { HEALTH_CHECK_HEADER } from '../telemetry/attributes.js';
import { waitUntil } from '../../test/support/wait-until.js';
import { Cleanup, inboundDirection, outboundDirection, rawExchange, readResponses, responsesComplete, service, startProxy, startUpstream, type TestProxy } from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const UNSAMPLED = /^00-([0-9a-f]{32})-([0-9a-f]{16})-00$/;

async function app(): Promise<{ port: number; seen: IncomingHttpHeaders[] }> {
  const seen: IncomingHttpHeaders[] = [];
  const upstream = await startUpstream(cleanup, (req, res) => {
    seen.push(req.headers);
    req.resume();
    req.on('end', () => {
      res.setHeader('content-length', '2');
      res.end('ok');
    });
  });
  return { port: upstream.port, seen };
}

/** Sends `heads` on one connection and waits for their answers and for the proxy to finish every exchange. */
async function exchange(proxy: TestProxy, heads: string[]): Promise<number[]> {
  const before = proxy.tel.requests.length;
  const result = await rawExchange(proxy.port, heads, responsesComplete(heads.length));
  await waitUntil(`${heads.length} finished exchange(s)`, () => proxy.tel.requests.length === before + heads.length);
  return readResponses(result.text).responses.map((r) => r.status);
}

const CHECK = `GET /healthz HTTP/1.1\r\nHost: reviews.default:9080\r\n${HEALTH_CHECK_HEADER}: 1\r\nConnection: keep-alive\r\n\r\n`;

describe('inbound HTTP/1 health checks', () => {
  it('forwards a check unsampled and records no span for it, while the next request on the connection is traced', async () => {
    const { port, seen } = await app();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port) });
    const statuses = await exchange(proxy, [CHECK, 'GET /page HTTP/1.1\r\nHost: reviews.default:9080\r\n\r\n']);
    expect(statuses).toEqual([200, 200]);

    // The check: the app has the mark and a traceparent with flags 00, so its own SDK records nothing either.
    expect(seen[0]?.[HEALTH_CHECK_HEADER]).toBe('1');
    expect(seen[0]?.['traceparent']).toMatch(UNSAMPLED);
    // The traffic: one SERVER span, and the app continues it sampled.
    expect(proxy.tel.spans).toHaveLength(1);
    const span = proxy.tel.spans[0];
    expect(span?.kind).toBe('server');
    expect(span?.attributes['url.path']).toBe('/page');
    expect(seen[1]?.['traceparent']).toBe(`00-${span?.traceId}-${span?.spanId}-01`);
    expect(seen[1]?.[HEALTH_CHECK_HEADER]).toBeUndefined();

    // Both stay in the request metric (as Istio counts checks through the listener).
    expect(proxy.tel.requests.map((r) => [r.labels.direction, r.labels.responseCode])).toEqual([
      ['inbound', '200'],
      ['inbound', '200'],
    ]);
  });

  it('does not continue a sampled context the check carries, in any letter case of the mark, and answers B3 unsampled', async () => {
    const { port, seen } = await app();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port) });
    await exchange(proxy, [
      `GET /healthz HTTP/1.1\r\nHost: app\r\nX-TraceMesh-Health-Check: yes\r\ntraceparent: 00-${TRACE_ID}-${PARENT_ID}-01\r\nb3: ${TRACE_ID}-${PARENT_ID}-1\r\n\r\n`,
    ]);
    expect(proxy.tel.spans).toEqual([]);
    const [, traceId, spanId] = UNSAMPLED.exec(String(seen[0]?.['traceparent'])) ?? [];
    expect(traceId).toBeDefined();
    expect(traceId).not.toBe(TRACE_ID);
    expect(seen[0]?.['b3']).toBe(`${traceId}-${spanId}-0`);
  });

  it('traces a request with the mark that is not a GET (the mark cannot hide writes)', async () => {
    const { port, seen } = await app();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port) });
    await exchange(proxy, [`POST /orders HTTP/1.1\r\nHost: app\r\n${HEALTH_CHECK_HEADER}: 1\r\nContent-Length: 2\r\n\r\nhi`]);
    expect(proxy.tel.spans).toHaveLength(1);
    expect(seen[0]?.['traceparent']).toBe(`00-${proxy.tel.spans[0]?.traceId}-${proxy.tel.spans[0]?.spanId}-01`);
  });

  it('leaves outbound requests with the mark traced (the checker does not go through the outbound path)', async () => {
    const { port, seen } = await app();
    const proxy = await startProxy(cleanup, { direction: outboundDirection([service('reviews', 9080, [{ port }])]) });
    await exchange(proxy, [CHECK]);
    expect(proxy.tel.spans.map((s) => s.kind)).toEqual(['client']);
    expect(seen[0]?.['traceparent']).toMatch(/-01$/);
  });

  it('with tracing off, adds no trace context to a check (trace fields pass untouched)', async () => {
    const { port, seen } = await app();
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port), tracing: false });
    await exchange(proxy, [CHECK]);
    expect(proxy.tel.spans).toEqual([]);
    expect(seen[0]?.['traceparent']).toBeUndefined();
  });
});
