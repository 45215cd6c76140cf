import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { MetricPoint, MetricPointBase, ResourceInfo, ScopeInfo, SpanRecord } from '../model.js';
import { SpoolLoader } from '../pipeline/loader.js';
import { Spool } from '../pipeline/spool.js';
import { applyRetention, latestVersion, loadMigrations, migrate, schemaVersion, splitStatements } from './migrations.js';
import { RowBinaryWriter } from './row-binary.js';
import { metricRow, metricTable, nanosText, spanRow } from './rows.js';
import { writeSpanRowBinary } from './span-row-binary.js';
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

describe('otel_traces rows in RowBinary', () => {
  const richSpan = (name: string, traceId: string): SpanRecord => ({
    traceId, spanId: '00f067aa0ba902b7', parentSpanId: '53995c3f42cd8ad8', traceState: 'k=v', name, kind: 'Client',
    startTimeUnixNano: NOW + 123n, endTimeUnixNano: NOW + 5_000_123n, statusCode: 'Error', statusMessage: 'boom ☃',
    attributes: [
      { key: 'http.status_code', value: '503', type: 'int' },
      { key: 'tags', value: '["a","b"]', type: 'array' },
      { key: 'plain', value: 'naïve', type: 'string' },
    ],
    events: [
      { timeUnixNano: NOW + 1000n, name: 'retry', attributes: [{ key: 'n', value: '2', type: 'int' }] },
      { timeUnixNano: NOW + 2000n, name: 'empty', attributes: [] },
    ],
    links: [{ traceId: '5b8efff798038103d269b633813fc60c', spanId: 'eee19b7ec3c1b174', traceState: '', attributes: [{ key: 'why', value: 'batch', type: 'string' }] }],
    flags: 1, resource, scope,
  });

  it('reads back exactly what the JSON rows give, for a span with every kind of column', async () => {
    const jsonTrace = '11111111111111111111111111111111';
    const binaryTrace = '22222222222222222222222222222222';
    await store.insertJsonEachRow('otel_traces', Buffer.from(spanRow(richSpan('rich', jsonTrace))), 'rich-json');
    const writer = new RowBinaryWriter(16);
    writeSpanRowBinary(writer, richSpan('rich', binaryTrace));
    const file = path.join(dir, 'rich.rowbinary');
    writeFileSync(file, writer.take());
    await store.insertFile('otel_traces', file, 'rich-binary');
    const read = async (traceId: string) =>
      (await store.query<Record<string, unknown>>(
        `SELECT * EXCEPT (TraceId), toString(toUnixTimestamp64Nano(Timestamp)) AS ns, arrayMap(t -> toString(toUnixTimestamp64Nano(t)), Events.Timestamp) AS ets
         FROM otel_traces WHERE TraceId = {t:String}`,
        { t: traceId },
      ))[0];
    const fromJson = await read(jsonTrace);
    expect(fromJson).toBeDefined();
    expect(await read(binaryTrace)).toEqual(fromJson);
  });

  it('keeps strings whole across every varint length boundary', async () => {
    const lengths = [0, 1, 127, 128, 16_383, 16_384, 70_000];
    const writer = new RowBinaryWriter(16);
    for (const length of lengths) {
      const span = richSpan(`len-${length}`, '33333333333333333333333333333333');
      span.spanId = length.toString(16).padStart(16, '0');
      span.statusMessage = 'é'.repeat(Math.floor(length / 2)) + 'x'.repeat(length % 2);
      writeSpanRowBinary(writer, span);
    }
    const file = path.join(dir, 'lengths.rowbinary');
    writeFileSync(file, writer.take());
    await store.insertFile('otel_traces', file, 'lengths');
    const rows = await store.query<{ SpanName: string; bytes: string; ok: number }>(
      "SELECT SpanName, toString(length(StatusMessage)) AS bytes, StatusMessage = concat(repeat('é', intDiv(length(StatusMessage), 2)), repeat('x', length(StatusMessage) % 2)) AS ok FROM otel_traces WHERE TraceId = '33333333333333333333333333333333' ORDER BY length(StatusMessage)",
    );
    expect(rows.map((r) => [r.SpanName, Number(r.bytes), r.ok])).toEqual(lengths.map((n) => [`len-${n}`, Math.floor(n / 2) * 2 + (n % 2), 1]));
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
    const writer = new RowBinaryWriter(64);
    writeSpanRowBinary(writer, span);
    await earlier.write(segment, 'otel_traces', [writer.take()]);
    // The same rows loaded once already (say the process died before removing the file).
    const file = earlier.oldest()!;
    await store.insertFile(file.table, file.path, `${file.segmentId}.${file.table}`);

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
