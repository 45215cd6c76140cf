import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, insertEdgeCalls, insertSpans, openTestStore, startTestApi } from '../../test/support/api-fixtures.js';
import type { SpanFixture, TestApi, TestStore } from '../../test/support/api-fixtures.js';

const MS = 1_000_000n;
const MINUTE = 60_000n * MS;
/** The API's pinned `now`: 30 s into the current minute, so every bucket below is known. */
const M0 = (BigInt(Date.now()) / 60_000n) * 60_000n * MS;
const NOW = M0 + 30_000n * MS;

let spanCounter = 0;
function span(service: string, name: string, kind: SpanFixture['kind'], startNanos: bigint, durationMs: bigint, error = false): SpanFixture {
  spanCounter += 1;
  const id = spanCounter.toString(16).padStart(16, '0');
  return {
    traceId: id.padStart(32, 'a'),
    spanId: id,
    name,
    kind,
    service,
    startNanos,
    durationNanos: durationMs * MS,
    status: error ? 'Error' : 'Unset',
  };
}

let db: TestStore;
let api: TestApi;

beforeAll(async () => {
  db = await openTestStore();
  await insertSpans(db.store, [
    // current minute: three requests, one failed
    span('frontend', 'GET /', 'Server', M0 + 1_000n * MS, 10n),
    span('frontend', 'GET /', 'Server', M0 + 2_000n * MS, 20n, true),
    span('frontend', 'GET /', 'Server', M0 + 29_999n * MS, 30n),
    // a minute ago: outbound calls only
    span('frontend', 'GET reviews', 'Client', M0 - MINUTE + 5n, 5n),
    span('frontend', 'GET reviews', 'Client', M0 - MINUTE + 6n, 7n, true),
    span('frontend', 'GET /cart', 'Server', M0 - 2n * MINUTE + 59_999n * MS, 100n),
    span('frontend', 'order.created', 'Consumer', M0 - 3n * MINUTE, 40n),
    span('frontend', 'render', 'Internal', M0 - 3n * MINUTE, 1n),
    // outside the default 15m window
    span('frontend', 'GET /old', 'Server', M0 - 20n * MINUTE, 70n),
    span('reviews', 'GET /reviews', 'Server', M0 + 3_000n * MS, 4n),
  ]);
  await insertEdgeCalls(db.store, [
    ...[10n, 20n, 30n, 40n].map((ms, i) => ({
      timeNanos: M0 - MINUTE + BigInt(i) * MS,
      client: 'user',
      server: 'frontend',
      connectionType: 'user' as const,
      clientDurationNanos: ms * MS,
      serverDurationNanos: ms * MS,
      failed: i === 0,
    })),
    { timeNanos: M0 + MS, client: 'frontend', server: 'reviews', clientDurationNanos: 12n * MS, serverDurationNanos: 10n * MS },
    { timeNanos: M0 - 5n * MINUTE, client: 'frontend', server: 'reviews', clientDurationNanos: 12n * MS, serverDurationNanos: 9n * MS },
    {
      timeNanos: M0 + 2n * MS,
      client: 'reviews',
      server: 'mysql',
      connectionType: 'virtual',
      clientDurationNanos: 3_500_000n,
      serverDurationNanos: 3_500_000n,
      failed: true,
    },
    { timeNanos: NOW - 60n * MINUTE, client: 'frontend', server: 'legacy', clientDurationNanos: 800n * MS, serverDurationNanos: 790n * MS },
  ]);
  api = await startTestApi({ store: db.store, isReady: () => true, now: () => NOW });
});

afterAll(async () => {
  await api?.app.close();
  await db?.cleanup();
});

describe('GET /api/v1/services', () => {
  it('lists every service with its operations, sorted', async () => {
    const { status, body } = await getJson(`${api.url}/api/v1/services`);
    expect(status).toBe(200);
    expect(body).toEqual({
      services: [
        { name: 'frontend', operations: ['GET /', 'GET /cart', 'GET /old', 'GET reviews', 'order.created', 'render'] },
        { name: 'reviews', operations: ['GET /reviews'] },
      ],
    });
  });

  it('narrows to a window with since', async () => {
    const { body } = await getJson(`${api.url}/api/v1/services?since=15m`);
    expect(body).toEqual({
      services: [
        { name: 'frontend', operations: ['GET /', 'GET /cart', 'GET reviews', 'order.created', 'render'] },
        { name: 'reviews', operations: ['GET /reviews'] },
      ],
    });
    const { body: recent } = await getJson(`${api.url}/api/v1/services?since=10s`);
    expect(recent).toEqual({ services: [{ name: 'frontend', operations: ['GET /'] }, { name: 'reviews', operations: ['GET /reviews'] }] });
  });
});

describe('GET /api/v1/graph', () => {
  it('gives nodes and client -> server edges with counts and client-side latency', async () => {
    const { status, body } = await getJson(`${api.url}/api/v1/graph`);
    expect(status).toBe(200);
    expect(body).toEqual({
      nodes: [{ name: 'frontend' }, { name: 'mysql' }, { name: 'reviews' }, { name: 'user' }],
      edges: [
        { client: 'frontend', server: 'reviews', requests: 2, errors: 0, p50Ms: 12, p99Ms: 12 },
        { client: 'reviews', server: 'mysql', requests: 1, errors: 1, p50Ms: 3.5, p99Ms: 3.5 },
        { client: 'user', server: 'frontend', requests: 4, errors: 1, p50Ms: 20, p99Ms: 40 },
      ],
    });
  });

  it('honours since', async () => {
    const { body: wide } = await getJson(`${api.url}/api/v1/graph?since=2h`);
    expect((wide as { edges: Array<{ server: string }> }).edges.map((e) => e.server)).toEqual(['legacy', 'reviews', 'mysql', 'frontend']);
    const { body: narrow } = await getJson(`${api.url}/api/v1/graph?since=10s`);
    expect(narrow).toEqual({
      nodes: [{ name: 'frontend' }, { name: 'mysql' }, { name: 'reviews' }],
      edges: [
        { client: 'frontend', server: 'reviews', requests: 1, errors: 0, p50Ms: 12, p99Ms: 12 },
        { client: 'reviews', server: 'mysql', requests: 1, errors: 1, p50Ms: 3.5, p99Ms: 3.5 },
      ],
    });
  });
});

interface RedBody {
  series: Array<{ time: string; requests: number; errors: number; p50Ms: number; p99Ms: number }>;
}

function zero(time: bigint): RedBody['series'][number] {
  return { time: time.toString(), requests: 0, errors: 0, p50Ms: 0, p99Ms: 0 };
}

describe('GET /api/v1/red', () => {
  it('gives one point per minute over 15m, empty minutes as zeros, server and consumer spans by default', async () => {
    const { status, body } = await getJson(`${api.url}/api/v1/red?service=frontend`);
    expect(status).toBe(200);
    const series = (body as RedBody).series;
    expect(series).toHaveLength(15);
    const expected = Array.from({ length: 15 }, (_, i) => zero(M0 - BigInt(14 - i) * MINUTE));
    expected[14] = { time: M0.toString(), requests: 3, errors: 1, p50Ms: 20, p99Ms: 30 };
    expected[12] = { time: (M0 - 2n * MINUTE).toString(), requests: 1, errors: 0, p50Ms: 100, p99Ms: 100 };
    expected[11] = { time: (M0 - 3n * MINUTE).toString(), requests: 1, errors: 0, p50Ms: 40, p99Ms: 40 };
    expect(series).toEqual(expected);
  });

  it('selects span kinds and an operation', async () => {
    const client = (await getJson(`${api.url}/api/v1/red?service=frontend&kind=client&since=3m`)).body as RedBody;
    expect(client.series).toEqual([
      zero(M0 - 2n * MINUTE),
      { time: (M0 - MINUTE).toString(), requests: 2, errors: 1, p50Ms: 5, p99Ms: 7 },
      zero(M0),
    ]);
    const all = (await getJson(`${api.url}/api/v1/red?service=frontend&kind=all&since=4m`)).body as RedBody;
    expect(all.series.map((p) => p.requests)).toEqual([2, 1, 2, 3]);
    const cart = (await getJson(`${api.url}/api/v1/red?service=frontend&operation=GET%20%2Fcart&since=4m`)).body as RedBody;
    expect(cart.series.map((p) => p.requests)).toEqual([0, 1, 0, 0]);
    const unknown = (await getJson(`${api.url}/api/v1/red?service=nobody&since=2m`)).body as RedBody;
    expect(unknown.series).toEqual([zero(M0 - MINUTE), zero(M0)]);
  });

  it('aligns larger steps to multiples of the step since the epoch', async () => {
    const step = 5n * MINUTE;
    const last = (NOW / step) * step;
    const { body } = await getJson(`${api.url}/api/v1/red?service=frontend&since=15m&step=5m`);
    const series = (body as RedBody).series;
    expect(series.map((p) => p.time)).toEqual([last - 2n * step, last - step, last].map(String));
    expect(series.reduce((sum, p) => sum + p.requests, 0)).toBe(5);
    expect(series.reduce((sum, p) => sum + p.errors, 0)).toBe(1);
    const day = (await getJson(`${api.url}/api/v1/red?service=frontend&since=1d&step=1m`)).body as RedBody;
    expect(day.series).toHaveLength(1440);
    const hour = (await getJson(`${api.url}/api/v1/red?service=frontend&since=1h&step=1h`)).body as RedBody;
    expect(hour.series).toHaveLength(1);
    expect(hour.series[0]?.time).toBe(((NOW / (60n * MINUTE)) * 60n * MINUTE).toString());
  });
});
