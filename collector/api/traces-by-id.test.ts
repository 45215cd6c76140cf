import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSpan } from './span-json.js';
import { insertSpans, openTestStore } from '../../test/support/api-fixtures.js';
import type { SpanFixture, TestStore } from '../../test/support/api-fixtures.js';
import { getTrace } from './traces-by-id.js';

const MS = 1_000_000n;
/** The last UTC midnight: the trace starts just before it, so its spans fall in two daily partitions. */
const MIDNIGHT = (BigInt(Date.now()) / 86_400_000n) * 86_400_000n * MS;
const TRACE = '4bf92f3577b34da6a3ce929d0e0e4736';
const OTHER = '00000000000000000000000000c0ffee';

function span(spanId: string, parentSpanId: string, service: string, name: string, startNanos: bigint, extra: Partial<SpanFixture> = {}): SpanFixture {
  return { traceId: TRACE, spanId, parentSpanId, name, kind: 'Server', service, startNanos, durationNanos: 3n * MS, ...extra };
}

const ROOT = span('a000000000000001', '', 'frontend', 'GET /productpage', MIDNIGHT - 3n * MS + 7n, {
  durationNanos: 45n * MS,
  attributes: [{ key: 'http.response.status_code', value: '200', type: 'int' }],
  events: [{ timeNanos: MIDNIGHT - 2n * MS, name: 'routed', attributes: [{ key: 'retry', value: 'false', type: 'bool' }] }],
});
const CLIENT = span('a000000000000002', ROOT.spanId, 'frontend', 'GET', MIDNIGHT - 2n * MS, { kind: 'Client' });
const PRODUCT = span('a000000000000003', CLIENT.spanId, 'productpage', 'GET /productpage', MIDNIGHT + 1n * MS, {
  links: [{ traceId: OTHER, spanId: 'b000000000000001', traceState: 'k=v' }],
});
const REVIEWS = span('a000000000000004', PRODUCT.spanId, 'reviews', 'GET /reviews/{id}', MIDNIGHT + 5n * MS, {
  status: 'Error',
  statusMessage: 'deadline exceeded',
});
const RATINGS = span('a000000000000005', REVIEWS.spanId, 'ratings', 'GET /ratings/{id}', MIDNIGHT + 9n * MS);
/** Same start as RATINGS: the order between them comes from the span id. */
const MYSQL = span('a000000000000000', RATINGS.spanId, 'ratings', 'SELECT ratings', MIDNIGHT + 9n * MS, { kind: 'Client' });

function other(spanId: string, startNanos: bigint): SpanFixture {
  return { traceId: OTHER, spanId, name: 'GET /productpage', kind: 'Server', service: 'frontend', startNanos, durationNanos: MS };
}

/** What the API gives for one of these fixtures. */
function apiSpan(f: SpanFixture): ApiSpan {
  return {
    traceId: f.traceId,
    spanId: f.spanId,
    parentSpanId: f.parentSpanId ?? '',
    name: f.name,
    kind: f.kind ?? 'Internal',
    serviceName: f.service,
    startTimeUnixNano: f.startNanos.toString(),
    durationNanos: f.durationNanos.toString(),
    statusCode: f.status ?? 'Unset',
    statusMessage: f.statusMessage ?? '',
    attributes: f === ROOT ? { 'http.response.status_code': 200 } : {},
    resourceAttributes: { 'service.name': f.service },
    events: f === ROOT ? [{ timeUnixNano: (MIDNIGHT - 2n * MS).toString(), name: 'routed', attributes: { retry: false } }] : [],
    links: f === PRODUCT ? [{ traceId: OTHER, spanId: 'b000000000000001', traceState: 'k=v', attributes: {} }] : [],
  };
}

const EXPECTED = [ROOT, CLIENT, PRODUCT, REVIEWS, MYSQL, RATINGS].map(apiSpan);

let db: TestStore;

async function partsHolding(traceId: string): Promise<number> {
  const rows = await db.store.query<{ n: string }>('SELECT uniqExact(_part) AS n FROM otel_traces WHERE TraceId = {traceId:String}', { traceId });
  return Number(rows[0]?.n);
}

beforeAll(async () => {
  db = await openTestStore();
});

afterAll(async () => {
  await db?.store.command('SYSTEM START MERGES otel_traces').catch(() => undefined);
  await db?.cleanup();
});

describe('getTrace', () => {
  it('returns every span of a trace written by several inserts, before and after its parts are merged', async () => {
    // Each insert makes a part per daily partition it touches; no merge may join them before the first lookup.
    await db.store.command('SYSTEM STOP MERGES otel_traces');
    await insertSpans(db.store, [RATINGS, other('b000000000000001', MIDNIGHT - 4n * MS), ROOT, PRODUCT]);
    await insertSpans(db.store, [other('b000000000000002', MIDNIGHT + 2n * MS), CLIENT]);
    await insertSpans(db.store, [MYSQL, REVIEWS, other('b000000000000003', MIDNIGHT + 6n * MS)]);
    expect(await partsHolding(TRACE)).toBe(4);

    const before = await getTrace(db.store, TRACE);
    expect(before).toEqual({ traceId: TRACE, spans: EXPECTED });

    await db.store.command('SYSTEM START MERGES otel_traces');
    await db.store.command('OPTIMIZE TABLE otel_traces FINAL');
    // One part per day is left.
    expect(await partsHolding(TRACE)).toBe(2);

    const after = await getTrace(db.store, TRACE);
    expect(after).toEqual({ traceId: TRACE, spans: EXPECTED });
    expect(JSON.stringify(after)).toBe(JSON.stringify(before));
    // The other trace is still its own.
    expect((await getTrace(db.store, OTHER))?.spans.map((s) => s.spanId)).toEqual(['b000000000000001', 'b000000000000002', 'b000000000000003']);
  });

  it('is undefined for a trace that was never stored', async () => {
    expect(await getTrace(db.store, 'ffffffffffffffffffffffffffffffff')).toBeUndefined();
  });
});
