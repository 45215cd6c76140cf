import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getJson, insertSpans, openTestStore, startTestApi } from '../../test/support/api-fixtures.js';
import type { SpanFixture, TestApi, TestStore } from '../../test/support/api-fixtures.js';

const MS = 1_000_000n;
const NOW = (BigInt(Date.now()) / 1000n) * 1000n * MS;
/** Trace A starts here, 5 minutes before the API's pinned `now`, with nanosecond digits set. */
const BASE = NOW - 300_000n * MS + 123_456_789n;

const TRACE_A = '0af7651916cd43dd8448eb211c80319c';
const TRACE_B = '000000000000000000000000000abc7f';
const TRACE_C = '5b8efff798038103d269b633813fc60c';
const TRACE_D = 'e1a2b3c4d5e6f708192a3b4c5d6e7f80';

const ROOT_A: SpanFixture = {
  traceId: TRACE_A,
  spanId: 'b7ad6b7169203331',
  name: 'GET /products',
  kind: 'Server',
  service: 'frontend',
  startNanos: BASE,
  durationNanos: 50_000_123n,
  status: 'Ok',
  attributes: [
    { key: 'http.request.method', value: 'GET', type: 'string' },
    { key: 'http.response.status_code', value: '200', type: 'int' },
    { key: 'tracemesh.bytes.max', value: '9223372036854775807', type: 'int' },
    { key: 'tracemesh.retry.ratio', value: '0.25', type: 'double' },
    { key: 'tracemesh.score', value: 'NaN', type: 'double' },
    { key: 'tracemesh.limit', value: '-Infinity', type: 'double' },
    { key: 'tracemesh.sampled', value: 'true', type: 'bool' },
    { key: 'tracemesh.tags', value: '["canary",3,true,"18446744073709551615"]', type: 'array' },
    { key: 'tracemesh.route', value: '{"name":"products","weight":90}', type: 'kvlist' },
    { key: 'tracemesh.digest', value: 'AQID/w==', type: 'bytes' },
    { key: '__proto__', value: 'plain', type: 'string' },
  ],
  resourceAttributes: [
    { key: 'host.name', value: 'node-1', type: 'string' },
    { key: 'process.pid', value: '4242', type: 'int' },
  ],
  events: [
    { timeNanos: BASE + 1_000_001n, name: 'cache miss', attributes: [{ key: 'cache.retries', value: '2', type: 'int' }] },
    { timeNanos: BASE + 40_000_000n, name: 'rendered' },
  ],
  links: [{ traceId: TRACE_C, spanId: '00f067aa0ba902b7', traceState: 'vendor=1', attributes: [{ key: 'link.reason', value: 'batch', type: 'string' }] }],
};

const CLIENT_A: SpanFixture = {
  traceId: TRACE_A,
  spanId: 'c1ad6b7169203331',
  parentSpanId: ROOT_A.spanId,
  name: 'GET reviews',
  kind: 'Client',
  service: 'frontend',
  startNanos: BASE + MS,
  durationNanos: 30n * MS,
  status: 'Error',
  statusMessage: 'upstream returned 504',
};

const SERVER_A: SpanFixture = {
  traceId: TRACE_A,
  spanId: 'd2ad6b7169203331',
  parentSpanId: CLIENT_A.spanId,
  name: 'GET /reviews',
  kind: 'Server',
  service: 'reviews',
  startNanos: BASE + 2n * MS,
  durationNanos: 25n * MS,
  status: 'Error',
  statusMessage: 'deadline exceeded',
  attributes: [{ key: 'http.response.status_code', value: '504', type: 'int' }],
};

const ROOT_B: SpanFixture = {
  traceId: TRACE_B,
  spanId: 'a1b2c3d4e5f60718',
  name: 'POST /ratings',
  kind: 'Server',
  service: 'ratings',
  startNanos: BASE + 120_000n * MS,
  durationNanos: 5n * MS,
  attributes: [{ key: 'http.request.method', value: 'POST', type: 'string' }],
  resourceAttributes: [{ key: 'deployment.environment', value: 'staging', type: 'string' }],
};

/** Two hours old: outside the default 15m window. */
const ROOT_C: SpanFixture = {
  traceId: TRACE_C,
  spanId: '00f067aa0ba902b7',
  name: 'POST /checkout',
  kind: 'Server',
  service: 'checkout',
  startNanos: NOW - 7_200_000n * MS,
  durationNanos: 120n * MS,
};

/** A trace whose root never arrived: its earliest span stands in. */
const ORPHAN_D1: SpanFixture = {
  traceId: TRACE_D,
  spanId: '1111111111111111',
  parentSpanId: 'ffffffffffffffff',
  name: 'process order',
  kind: 'Consumer',
  service: 'worker',
  startNanos: BASE + 60_000n * MS,
  durationNanos: 20n * MS,
};

const ORPHAN_D2: SpanFixture = {
  traceId: TRACE_D,
  spanId: '2222222222222222',
  parentSpanId: ORPHAN_D1.spanId,
  name: 'INSERT orders',
  kind: 'Client',
  service: 'worker',
  startNanos: BASE + 60_005n * MS,
  durationNanos: 8n * MS,
};

let db: TestStore;
let api: TestApi;

beforeAll(async () => {
  db = await openTestStore();
  await insertSpans(db.store, [SERVER_A, ROOT_A, CLIENT_A, ROOT_C]);
  await insertSpans(db.store, [ROOT_B, ORPHAN_D2, ORPHAN_D1]);
  api = await startTestApi({ store: db.store, isReady: () => true, now: () => NOW });
});

afterAll(async () => {
  await api?.app.close();
  await db?.cleanup();
});

interface SearchBody {
  traces: Array<{ traceId: string; rootService: string; rootName: string; startTimeUnixNano: string; durationNanos: string; spanCount: number; errorCount: number }>;
}

async function search(query: string): Promise<string[]> {
  const { status, body } = await getJson(`${api.url}/api/v1/traces${query}`);
  expect(status).toBe(200);
  return (body as SearchBody).traces.map((t) => t.traceId);
}

describe('GET /api/v1/traces/{traceId}', () => {
  it('gives every span by start time with exact nanosecond times and typed attributes', async () => {
    const { status, body } = await getJson(`${api.url}/api/v1/traces/${TRACE_A}`);
    expect(status).toBe(200);
    expect(body).toEqual({
      traceId: TRACE_A,
      spans: [
        {
          traceId: TRACE_A,
          spanId: ROOT_A.spanId,
          parentSpanId: '',
          name: 'GET /products',
          kind: 'Server',
          serviceName: 'frontend',
          startTimeUnixNano: BASE.toString(),
          durationNanos: '50000123',
          statusCode: 'Ok',
          statusMessage: '',
          attributes: {
            'http.request.method': 'GET',
            'http.response.status_code': 200,
            'tracemesh.bytes.max': '9223372036854775807',
            'tracemesh.retry.ratio': 0.25,
            'tracemesh.score': 'NaN',
            'tracemesh.limit': '-Infinity',
            'tracemesh.sampled': true,
            'tracemesh.tags': ['canary', 3, true, '18446744073709551615'],
            'tracemesh.route': { name: 'products', weight: 90 },
            'tracemesh.digest': 'AQID/w==',
            ['__proto__']: 'plain',
          },
          resourceAttributes: { 'service.name': 'frontend', 'host.name': 'node-1', 'process.pid': 4242 },
          events: [
            { timeUnixNano: (BASE + 1_000_001n).toString(), name: 'cache miss', attributes: { 'cache.retries': 2 } },
            { timeUnixNano: (BASE + 40_000_000n).toString(), name: 'rendered', attributes: {} },
          ],
          links: [{ traceId: TRACE_C, spanId: '00f067aa0ba902b7', traceState: 'vendor=1', attributes: { 'link.reason': 'batch' } }],
        },
        {
          traceId: TRACE_A,
          spanId: CLIENT_A.spanId,
          parentSpanId: ROOT_A.spanId,
          name: 'GET reviews',
          kind: 'Client',
          serviceName: 'frontend',
          startTimeUnixNano: (BASE + MS).toString(),
          durationNanos: '30000000',
          statusCode: 'Error',
          statusMessage: 'upstream returned 504',
          attributes: {},
          resourceAttributes: { 'service.name': 'frontend' },
          events: [],
          links: [],
        },
        {
          traceId: TRACE_A,
          spanId: SERVER_A.spanId,
          parentSpanId: CLIENT_A.spanId,
          name: 'GET /reviews',
          kind: 'Server',
          serviceName: 'reviews',
          startTimeUnixNano: (BASE + 2n * MS).toString(),
          durationNanos: '25000000',
          statusCode: 'Error',
          statusMessage: 'deadline exceeded',
          attributes: { 'http.response.status_code': 504 },
          resourceAttributes: { 'service.name': 'reviews' },
          events: [],
          links: [],
        },
      ],
    });
    // The raw text keeps the big int exact (no rounding through a JS number on either side).
    const text = await (await fetch(`${api.url}/api/v1/traces/${TRACE_A}`)).text();
    expect(text).toContain('"tracemesh.bytes.max":"9223372036854775807"');
    expect(text).toContain('"__proto__":"plain"');
  });

  it('takes ids case-insensitively and left-pads short ones', async () => {
    const upper = await getJson(`${api.url}/api/v1/traces/${TRACE_A.toUpperCase()}`);
    expect(upper.status).toBe(200);
    expect((upper.body as { traceId: string }).traceId).toBe(TRACE_A);
    const short = await getJson(`${api.url}/api/v1/traces/ABC7F`);
    expect(short.status).toBe(200);
    expect(short.body).toMatchObject({ traceId: TRACE_B, spans: [{ spanId: ROOT_B.spanId, name: 'POST /ratings' }] });
  });

  it('answers 404 for an unknown trace', async () => {
    const { status, body } = await getJson(`${api.url}/api/v1/traces/4bf92f3577b34da6a3ce929d0e0e4736`);
    expect(status).toBe(404);
    expect(body).toEqual({ error: { code: 'TM_ERR_API_NOT_FOUND', message: 'trace 4bf92f3577b34da6a3ce929d0e0e4736 not found' } });
  });

  it('rejects malformed ids and unknown parameters', async () => {
    for (const bad of ['xyz', '0af7651916cd43dd8448eb211c80319c0', '0af7-6519', '%20']) {
      const { status, body } = await getJson(`${api.url}/api/v1/traces/${bad}`);
      expect(status, bad).toBe(400);
      expect(body).toMatchObject({ error: { code: 'TM_ERR_API_BAD_PARAM', parameter: 'traceId' } });
      expect((body as { error: { message: string } }).error.message).toMatch(/^traceId: '.*' is not a trace id \(1-32 hex digits\)$/);
    }
    const unknown = await getJson(`${api.url}/api/v1/traces/${TRACE_A}?full=1`);
    expect(unknown.status).toBe(400);
    expect(unknown.body).toEqual({
      error: { code: 'TM_ERR_API_BAD_PARAM', parameter: 'full', message: 'full: unknown parameter (this endpoint takes no parameters)' },
    });
  });
});

describe('GET /api/v1/traces', () => {
  it('summarises every matching trace from all its spans, newest first', async () => {
    const { status, body } = await getJson(`${api.url}/api/v1/traces`);
    expect(status).toBe(200);
    expect(body).toEqual({
      traces: [
        {
          traceId: TRACE_B,
          rootService: 'ratings',
          rootName: 'POST /ratings',
          startTimeUnixNano: ROOT_B.startNanos.toString(),
          durationNanos: '5000000',
          spanCount: 1,
          errorCount: 0,
        },
        {
          traceId: TRACE_D,
          rootService: 'worker',
          rootName: 'process order',
          startTimeUnixNano: ORPHAN_D1.startNanos.toString(),
          durationNanos: '20000000',
          spanCount: 2,
          errorCount: 0,
        },
        {
          traceId: TRACE_A,
          rootService: 'frontend',
          rootName: 'GET /products',
          startTimeUnixNano: BASE.toString(),
          durationNanos: '50000123',
          spanCount: 3,
          errorCount: 2,
        },
      ],
    });
  });

  it('filters on service, operation, status and span duration', async () => {
    expect(await search('?service=reviews')).toEqual([TRACE_A]);
    expect(await search('?service=nobody')).toEqual([]);
    expect(await search('?operation=INSERT%20orders')).toEqual([TRACE_D]);
    expect(await search('?service=frontend&operation=GET+reviews')).toEqual([TRACE_A]);
    expect(await search('?status=error')).toEqual([TRACE_A]);
    expect(await search('?minDuration=40ms')).toEqual([TRACE_A]);
    expect(await search('?maxDuration=10ms')).toEqual([TRACE_B, TRACE_D]);
    expect(await search('?minDuration=50000123ns&maxDuration=50000123ns')).toEqual([TRACE_A]);
    // One span must meet both bounds: A has 50ms, 30ms and 25ms spans.
    expect(await search('?minDuration=26ms&maxDuration=28ms')).toEqual([]);
    expect(await search('?minDuration=26ms&maxDuration=31ms')).toEqual([TRACE_A]);
  });

  it('matches attr.KEY=VALUE on span or resource attributes, all on one span', async () => {
    expect(await search('?attr.http.response.status_code=504')).toEqual([TRACE_A]);
    expect(await search('?attr.http.request.method=POST')).toEqual([TRACE_B]);
    expect(await search('?attr.deployment.environment=staging')).toEqual([TRACE_B]);
    expect(await search('?attr.deployment.environment=staging&attr.http.request.method=POST')).toEqual([TRACE_B]);
    expect(await search('?attr.tracemesh.sampled=true&attr.host.name=node-1')).toEqual([TRACE_A]);
    // The 504 is on the reviews span, not on a frontend one.
    expect(await search('?service=frontend&attr.http.response.status_code=504')).toEqual([]);
    // User text is a parameter, never SQL.
    expect(await search(`?attr.x=${encodeURIComponent("' OR 1=1 --")}&service=${encodeURIComponent("a'b\\")}`)).toEqual([]);
  });

  it('honours limit and since', async () => {
    expect(await search('?limit=1')).toEqual([TRACE_B]);
    expect(await search('?since=1m')).toEqual([]);
    expect(await search('?since=3h')).toEqual([TRACE_B, TRACE_D, TRACE_A, TRACE_C]);
    expect(await search('?since=3h&service=checkout')).toEqual([TRACE_C]);
  });
});
