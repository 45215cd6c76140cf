import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricPoint, MetricPointBase, ResourceInfo, ScopeInfo, SpanRecord } from '../model.js';
import { SpoolLoader } from '../pipeline/loader.js';
import { Spool } from '../pipeline/spool.js';
import { applyRetention, latestVersion, loadMigrations, migrate, schemaVersion, splitStatements } from './migrations.js';
import { metricRow, metricTable, nanosText, spanRow } from './rows.js';
import { openStore } from './store.js';
import type { Store } from './store.js';

let dir: string;
let store: Store;

beforeAll(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-storage-'));
  store = openStore({ kind: 'chdb', dataDir: path.join(dir, 'clickhouse') });
});

afterAll(async () => {
  await store?.close();
  rmSync(dir, { recursive: true, force: true });
});

const resource: ResourceInfo = { serviceName: 'store-test', attributes: [{ key: 'service.name', value: 'store-test', type: 'string' }], schemaUrl: '' };
const scope: ScopeInfo = { name: 'scope', version: '2', attributes: [{ key: 'lib', value: 'x', type: 'string' }], droppedAttributesCount: 1, schemaUrl: 'https://s' };
const NOW = BigInt(Date.now()) * 1_000_000n;

function base(name: string): MetricPointBase {
  return {
    resource, scope, metricName: name, metricDescription: 'd', metricUnit: 'ms',
    attributes: [{ key: 'route', value: '/a', type: 'string' }],
    startTimeUnixNano: NOW - 1_000_000_000n, timeUnixNano: NOW, flags: 0,
    exemplars: [{ filteredAttributes: [], timeUnixNano: NOW, value: 1.5, spanId: '00f067aa0ba902b7', traceId: '4bf92f3577b34da6a3ce929d0e0e4736' }],
  };
}

describe('schema migrations', () => {
  it('splits statements on line-ending semicolons and drops comment lines', () => {
    expect(splitStatements('-- c\nCREATE TABLE a (x String DEFAULT \';\');\n\nSELECT 1;\n')).toEqual(["CREATE TABLE a (x String DEFAULT ';')", 'SELECT 1']);
  });

  it('applies every version once, records it, and is a no-op the second time', async () => {
    const first = await migrate(store);
    expect(first).toEqual(loadMigrations().map((m) => m.version));
    expect(await schemaVersion(store)).toBe(latestVersion());
    expect(await migrate(store)).toEqual([]);
    const tables = await store.query<{ name: string }>("SELECT name FROM system.tables WHERE database = currentDatabase() ORDER BY name");
    expect(tables.map((t) => t.name)).toEqual(expect.arrayContaining([
      'otel_traces', 'otel_traces_trace_id_ts', 'otel_traces_trace_id_ts_mv',
      'otel_metrics_gauge', 'otel_metrics_sum', 'otel_metrics_histogram', 'otel_metrics_exponential_histogram', 'otel_metrics_summary',
      'tracemesh_red_1m', 'tracemesh_red_1m_mv', 'tracemesh_edges_1m', 'tracemesh_edges_1m_mv', 'tracemesh_edge_calls', 'tracemesh_schema_versions',
    ]));
  });

  it('sets the retention as a TTL on every data table, and changes it only when it differs', async () => {
    await applyRetention(store, 3 * 86_400);
    const ttl = async () =>
      store.query<{ name: string; engine_full: string }>(
        "SELECT name, engine_full FROM system.tables WHERE database = currentDatabase() AND name IN ('otel_traces', 'otel_metrics_sum', 'tracemesh_edges_1m') ORDER BY name",
      );
    for (const row of await ttl()) expect(row.engine_full, row.name).toContain('toIntervalSecond(259200)');
    await applyRetention(store, 3 * 86_400);
    await applyRetention(store, 86_400);
    for (const row of await ttl()) {
      expect(row.engine_full, row.name).toContain('toIntervalSecond(86400)');
      expect(row.engine_full).not.toContain('259200');
    }
  });
});

describe('rows the collector writes', () => {
  it('formats DateTime64(9) text without losing nanoseconds', () => {
    expect(nanosText(1_763_700_000_123_456_789n)).toBe('1763700000.123456789');
    expect(nanosText(5n)).toBe('0.000000005');
  });

  it('every metric kind inserts and reads back, NaN and infinities included', async () => {
    const points: MetricPoint[] = [
      { ...base('g'), kind: 'gauge', value: Number.NaN },
      { ...base('s'), kind: 'sum', value: 12, aggregationTemporality: 1, isMonotonic: true },
      { ...base('h'), kind: 'histogram', count: 3n, sum: 7, bucketCounts: [1n, 2n, 0n], explicitBounds: [1, Number.POSITIVE_INFINITY], min: 1, max: 5, aggregationTemporality: 2 },
      { ...base('e'), kind: 'exponential_histogram', count: 4n, sum: 9, scale: 3, zeroCount: 1n, positiveOffset: -2, positiveBucketCounts: [1n, 2n], negativeOffset: 0, negativeBucketCounts: [], min: 0, max: 4, aggregationTemporality: 1 },
      { ...base('q'), kind: 'summary', count: 10n, sum: 55, quantiles: [{ quantile: 0.5, value: 5 }, { quantile: 0.99, value: Number.NEGATIVE_INFINITY }] },
    ];
    for (const point of points) {
      await store.insertJsonEachRow(metricTable(point), Buffer.from(metricRow(point)), `metric-${point.kind}`);
    }
    const [gauge] = await store.query<{ v: string; ex: number[] }>("SELECT toString(Value) AS v, Exemplars.Value AS ex FROM otel_metrics_gauge WHERE MetricName = 'g'");
    expect(gauge).toEqual({ v: 'nan', ex: [1.5] });
    const [hist] = await store.query<{ b: string[]; e: Array<number | string> }>("SELECT BucketCounts AS b, arrayMap(x -> toString(x), ExplicitBounds) AS e FROM otel_metrics_histogram WHERE MetricName = 'h'");
    expect(hist).toEqual({ b: ['1', '2', '0'], e: ['1', 'inf'] });
    const [exp] = await store.query<Record<string, unknown>>("SELECT Scale, ZeroCount, PositiveOffset, PositiveBucketCounts FROM otel_metrics_exponential_histogram WHERE MetricName = 'e'");
    expect(exp).toEqual({ Scale: 3, ZeroCount: '1', PositiveOffset: -2, PositiveBucketCounts: ['1', '2'] });
    const [summary] = await store.query<Record<string, unknown>>("SELECT Count, ValueAtQuantiles.Quantile AS q, arrayMap(x -> toString(x), ValueAtQuantiles.Value) AS v, ScopeDroppedAttrCount, ScopeAttributes FROM otel_metrics_summary WHERE MetricName = 'q'");
    expect(summary).toEqual({ Count: '10', q: [0.5, 0.99], v: ['5', '-inf'], ScopeDroppedAttrCount: 1, ScopeAttributes: { lib: 'x' } });
  });
});

describe('a spool left by an earlier run', () => {
  it('is loaded on start, exactly once even when a file is loaded twice', async () => {
    const spoolDir = path.join(dir, 'spool');
    const earlier = new Spool(spoolDir);
    earlier.open();
    const span: SpanRecord = {
      traceId: 'aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa', spanId: 'bbbbbbbbbbbbbbbb', parentSpanId: '', traceState: '', name: 'replayed', kind: 'Server',
      startTimeUnixNano: NOW, endTimeUnixNano: NOW + 5n, statusCode: 'Unset', statusMessage: '',
      attributes: [{ key: 'quote', value: 'it\'s "quoted" \\ \u2028', type: 'string' }], events: [], links: [], flags: 1, resource, scope,
    };
    const segment = earlier.newSegmentId();
    await earlier.write(segment, 'otel_traces', [Buffer.from(spanRow(span))]);
    // The same rows loaded once already (say the process died before removing the file).
    const file = earlier.oldest()!;
    await store.insertJsonEachRowFile(file.table, file.path, `${file.segmentId}.${file.table}`);

    const spool = new Spool(spoolDir);
    spool.open();
    expect(spool.fileCount).toBe(1);
    const loader = new SpoolLoader(spool, store);
    loader.start();
    const deadline = Date.now() + 10_000;
    while (spool.fileCount > 0 && Date.now() < deadline) await new Promise((resolve) => setTimeout(resolve, 20));
    await loader.stop(0);
    expect(spool.fileCount).toBe(0);
    const rows = await store.query<{ SpanName: string; q: string }>("SELECT SpanName, SpanAttributes['quote'] AS q FROM otel_traces WHERE SpanName = 'replayed'");
    expect(rows).toEqual([{ SpanName: 'replayed', q: 'it\'s "quoted" \\ \u2028' }]);
  });
});
