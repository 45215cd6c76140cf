/**
 * Active health checks on the HTTP/2 path (telemetry/health-check-trace.ts):
 * an inbound GET carrying x-tracemesh-health-check reaches the app with the
 * header and an unsampled traceparent, and the proxy records no span for it
 * (its request metric stays). Real inbound proxy, real h2c app, recording
 * telemetry; "no span" is read once the request metric shows the exchange
 * finished (both come from the same finishHttpObservation call).
 */
import type { ClientHttp2Session, OutgoingHttpHeaders } from 'node:http2';
import { afterEach, describe, expect, it } from 'vitest';
import { HEALTH_CHECK_HEADER } from '../telemetry/attributes.js';
import { waitUntil } from '../../test/support/wait-until.js';
import { h2Call, h2Connect, startH2Upstream, type H2Upstream } from './h2-peers.test-helper.js';
import { inboundDirection, startProxy, type RunningProxy } from './proxy-fixture.test-helper.js';
import { TEST_IDENTITY } from './telemetry.test-helper.js';

const TRACE_ID = '4bf92f3577b34da6a3ce929d0e0e4736';
const PARENT_ID = '00f067aa0ba902b7';
const UNSAMPLED = /^00-[0-9a-f]{32}-[0-9a-f]{16}-00$/;

describe('inbound HTTP/2 health checks', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function inbound(): Promise<{ app: H2Upstream; proxy: RunningProxy; client: ClientHttp2Session }> {
    const app = await startH2Upstream((stream) => {
      stream.respond({ ':status': 200 });
      stream.end('ok');
    });
    cleanups.push(() => app.close());
    const proxy = await startProxy({ direction: inboundDirection(TEST_IDENTITY, app.port) });
    cleanups.push(() => proxy.close());
    const client = h2Connect(proxy.port);
    cleanups.push(() => void client.destroy());
    return { app, proxy, client };
  }

  /** One call, then a wait until the proxy has finished its exchange. */
  async function call(proxy: RunningProxy, client: ClientHttp2Session, headers: OutgoingHttpHeaders, body?: string): Promise<number> {
    const before = proxy.telemetry.requests.length;
    const res = await h2Call(client, { ':authority': 'productpage:9080', ...headers }, body);
    await waitUntil('the exchange to finish', () => proxy.telemetry.requests.length === before + 1);
    return Number(res.headers?.[':status'] ?? 0);
  }

  it('forwards a check unsampled with no span, and traces the next stream on the session', async () => {
    const { app, proxy, client } = await inbound();
    expect(await call(proxy, client, { ':method': 'GET', ':path': '/healthz', [HEALTH_CHECK_HEADER]: '1', traceparent: `00-${TRACE_ID}-${PARENT_ID}-01` })).toBe(200);
    expect(app.requests[0]?.[HEALTH_CHECK_HEADER]).toBe('1');
    expect(app.requests[0]?.['traceparent']).toMatch(UNSAMPLED);
    expect(app.requests[0]?.['traceparent']).not.toContain(TRACE_ID);
    expect(proxy.spans).toEqual([]);

    expect(await call(proxy, client, { ':method': 'GET', ':path': '/page' })).toBe(200);
    expect(proxy.spans).toHaveLength(1);
    const span = proxy.spans[0];
    expect(span?.kind).toBe('server');
    expect(app.requests[1]?.['traceparent']).toBe(`00-${span?.traceId}-${span?.spanId}-01`);
    // The check stays in the request metric.
    expect(proxy.telemetry.requests.map((r) => r.labels.responseCode)).toEqual(['200', '200']);
  });

  it('traces a stream with the mark that is not a GET', async () => {
    const { app, proxy, client } = await inbound();
    expect(await call(proxy, client, { ':method': 'POST', ':path': '/orders', [HEALTH_CHECK_HEADER]: '1' }, 'hi')).toBe(200);
    expect(proxy.spans).toHaveLength(1);
    expect(app.requests[0]?.['traceparent']).toMatch(/-01$/);
  });
});
