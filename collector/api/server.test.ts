import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { latestVersion, migrate, schemaVersion } from '../storage/migrations.js';
import { getJson, openTestStore, startTestApi } from '../../test/support/api-fixtures.js';
import type { TestApi, TestStore } from '../../test/support/api-fixtures.js';

let db: TestStore;
let api: TestApi;
let throwingApi: TestApi;

async function schemaIsCurrent(): Promise<boolean> {
  return (await schemaVersion(db.store)) === latestVersion();
}

beforeAll(async () => {
  // No schema yet: the API must say it is not ready and turn store failures into 503s.
  db = await openTestStore({ migrate: false });
  api = await startTestApi({ store: db.store, isReady: schemaIsCurrent });
  throwingApi = await startTestApi({
    store: db.store,
    isReady: () => {
      throw new Error('probe exploded');
    },
  });
});

afterAll(async () => {
  await api?.app.close();
  await throwingApi?.app.close();
  await db?.cleanup();
});

interface ErrorBody {
  error: { code: string; parameter?: string; message: string };
}

describe('before the schema exists', () => {
  it('/ready answers 503', async () => {
    expect(await getJson(`${api.url}/ready`)).toEqual({ status: 503, body: { status: 'not ready' } });
    expect(await getJson(`${throwingApi.url}/ready`)).toEqual({ status: 503, body: { status: 'not ready' } });
  });

  it('store failures are 503 with TM_ERR_STORE_QUERY, and the server keeps serving', async () => {
    for (const path of ['/api/v1/services', '/api/v1/graph', '/api/v1/red?service=frontend', '/api/v1/traces', '/api/v1/traces/abc']) {
      const { status, body } = await getJson(`${api.url}${path}`);
      expect(status, path).toBe(503);
      expect((body as ErrorBody).error.code).toBe('TM_ERR_STORE_QUERY');
      expect((body as ErrorBody).error.message.length).toBeGreaterThan(0);
    }
  });
});

describe('after migrating', () => {
  beforeAll(async () => {
    await migrate(db.store);
  });

  it('/ready answers 200', async () => {
    expect(await getJson(`${api.url}/ready`)).toEqual({ status: 200, body: { status: 'ready' } });
  });

  it('answers empty results on an empty store', async () => {
    expect(await getJson(`${api.url}/api/v1/services`)).toEqual({ status: 200, body: { services: [] } });
    expect(await getJson(`${api.url}/api/v1/graph`)).toEqual({ status: 200, body: { nodes: [], edges: [] } });
    expect(await getJson(`${api.url}/api/v1/traces`)).toEqual({ status: 200, body: { traces: [] } });
    const red = await getJson(`${api.url}/api/v1/red?service=frontend&since=5m`);
    expect(red.status).toBe(200);
    expect((red.body as { series: unknown[] }).series).toHaveLength(5);
  });

  it('answers 404 with an error body for an unknown endpoint', async () => {
    const { status, body } = await getJson(`${api.url}/api/v2/traces`);
    expect(status).toBe(404);
    expect(body).toEqual({ error: { code: 'TM_ERR_API_NOT_FOUND', message: 'no such endpoint: GET /api/v2/traces' } });
  });

  it('refuses a request body over the limit', async () => {
    const post = await fetch(`${api.url}/api/v1/traces`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x'.repeat(100_000) });
    expect(post.status).toBe(413);
    expect(((await post.json()) as ErrorBody).error.code).toBe('TM_ERR_API_BAD_PARAM');
  });
});

describe('bad parameters', () => {
  const cases: Array<[path: string, parameter: string, message: RegExp]> = [
    ['/api/v1/traces?limit=0', 'limit', /^limit: '0' is out of range \(1-1000\)$/],
    ['/api/v1/traces?limit=1001', 'limit', /^limit: '1001' is out of range \(1-1000\)$/],
    ['/api/v1/traces?limit=ten', 'limit', /^limit: 'ten' is not a whole number$/],
    ['/api/v1/traces?limit=1.5', 'limit', /^limit: '1.5' is not a whole number$/],
    ['/api/v1/traces?limit=-3', 'limit', /^limit: '-3' is not a whole number$/],
    ['/api/v1/traces?since=15x', 'since', /^since: '15x' is not a duration/],
    ['/api/v1/traces?since=1.5h', 'since', /^since: '1.5h' is not a duration/],
    ['/api/v1/traces?since=31d', 'since', /^since: '31d' is out of range \(1ns-30d\)$/],
    ['/api/v1/traces?since=0s', 'since', /^since: '0s' is out of range/],
    ['/api/v1/traces?minDuration=fast', 'minDuration', /^minDuration: 'fast' is not a duration/],
    ['/api/v1/traces?maxDuration=-1ms', 'maxDuration', /^maxDuration: '-1ms' is not a duration/],
    ['/api/v1/traces?minDuration=400d', 'minDuration', /^minDuration: '400d' is out of range \(0s-365d\)$/],
    ['/api/v1/traces?minDuration=5ms&maxDuration=1ms', 'maxDuration', /^maxDuration: '1ms' is less than minDuration '5ms'$/],
    ['/api/v1/traces?status=failed', 'status', /^status: 'failed' is not one of error, ok, unset$/],
    ['/api/v1/traces?service=', 'service', /^service: is empty/],
    [`/api/v1/traces?operation=${'x'.repeat(300)}`, 'operation', /^operation: is longer than 256 characters$/],
    ['/api/v1/traces?services=frontend', 'services', /^services: unknown parameter \(allowed: service, operation, minDuration, maxDuration, status, since, limit, attr\.KEY\)$/],
    ['/api/v1/traces?service=a&service=b', 'service', /^service: given more than once$/],
    ['/api/v1/traces?attr.=x', 'attr.', /^attr\.: needs an attribute key/],
    ['/api/v1/traces?attr.k=1&attr.k=2', 'attr.k', /^attr\.k: given more than once$/],
    [`/api/v1/traces?${Array.from({ length: 17 }, (_, i) => `attr.k${i}=v`).join('&')}`, 'attr.k16', /^attr\.k16: too many attribute filters/],
    ['/api/v1/services?since=soon', 'since', /^since: 'soon' is not a duration/],
    ['/api/v1/services?since=40d', 'since', /^since: '40d' is out of range/],
    ['/api/v1/services?limit=5', 'limit', /^limit: unknown parameter \(allowed: since\)$/],
    ['/api/v1/graph?since=', 'since', /^since: is empty/],
    ['/api/v1/graph?since=1y', 'since', /^since: '1y' is not a duration/],
    ['/api/v1/graph?service=frontend', 'service', /^service: unknown parameter/],
    ['/api/v1/red', 'service', /^service: is required$/],
    ['/api/v1/red?service=frontend&step=90s', 'step', /^step: '90s' is not a whole number of minutes$/],
    ['/api/v1/red?service=frontend&step=30s', 'step', /^step: '30s' is out of range \(1m-30d\)$/],
    ['/api/v1/red?service=frontend&step=1m&since=30d', 'step', /^step: '1m' gives 43200 points over since=30d \(at most 1440/],
    ['/api/v1/red?service=frontend&kind=both', 'kind', /^kind: 'both' is not one of server, client, all$/],
    ['/api/v1/red?service=frontend&since=yesterday', 'since', /^since: 'yesterday' is not a duration/],
    ['/api/v1/red?service=frontend&limit=5', 'limit', /^limit: unknown parameter/],
    ['/api/v1/traces/abcdefg', 'traceId', /^traceId: 'abcdefg' is not a trace id \(1-32 hex digits\)$/],
    [`/api/v1/traces/${'a'.repeat(150)}`, 'traceId', /^traceId: is not a trace id \(1-32 hex digits\)$/],
    ['/api/v1/traces/%zz', 'traceId', /^traceId: is not a trace id/],
    ['/api/v1/traces/abc?x=1', 'x', /^x: unknown parameter \(this endpoint takes no parameters\)$/],
    ['/ready?verbose=1', 'verbose', /^verbose: unknown parameter/],
  ];

  it.each(cases)('%s -> 400 naming %s', async (path, parameter, message) => {
    const { status, body } = await getJson(`${api.url}${path}`);
    expect(status).toBe(400);
    const error = (body as ErrorBody).error;
    expect(error.code).toBe('TM_ERR_API_BAD_PARAM');
    expect(error.parameter).toBe(parameter);
    expect(error.message).toMatch(message);
  });

  it('accepts every documented duration form', async () => {
    for (const since of ['250ms', '15m', '1h', '2d', '30d']) {
      expect((await getJson(`${api.url}/api/v1/traces?since=${since}`)).status, since).toBe(200);
    }
    expect((await getJson(`${api.url}/api/v1/traces?limit=1000&status=error&minDuration=0ms&maxDuration=1h`)).status).toBe(200);
    expect((await getJson(`${api.url}/api/v1/red?service=x&since=30d&step=30m`)).status).toBe(200);
  });
});
