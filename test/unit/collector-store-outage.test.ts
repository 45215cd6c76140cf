import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { DEFAULT_INGEST_OPTIONS } from '../../collector/pipeline/ingest.js';
import { eventually, startCollector } from '../support/collector-harness.js';
import type { RunningCollector } from '../support/collector-harness.js';

let running: RunningCollector;

beforeAll(async () => {
  // A small spool, so an outage of a few seconds fills it and the collector must push back.
  running = await startCollector({ ingest: { ...DEFAULT_INGEST_OPTIONS, flushIntervalMs: 50, spoolLimitBytes: 256 * 1024 } });
});

afterAll(async () => {
  await running?.stop();
});

const SPANS_PER_BATCH = 25;

interface Batch {
  body: string;
  spanIds: string[];
}

function makeBatch(sequence: number): Batch {
  const traceId = randomBytes(16).toString('hex');
  const spanIds: string[] = [];
  const spans = [];
  const start = BigInt(Date.now()) * 1_000_000n;
  for (let i = 0; i < SPANS_PER_BATCH; i++) {
    const spanId = randomBytes(8).toString('hex');
    spanIds.push(spanId);
    spans.push({
      traceId,
      spanId,
      name: `op-${i % 5}`,
      kind: 2,
      startTimeUnixNano: String(start + BigInt(i)),
      endTimeUnixNano: String(start + BigInt(i) + 1_000_000n),
      attributes: [
        { key: 'batch', value: { intValue: String(sequence) } },
        { key: 'padding', value: { stringValue: 'x'.repeat(200) } },
      ],
    });
  }
  const body = JSON.stringify({
    resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: 'outage-svc' } }] }, scopeSpans: [{ scope: { name: 't' }, spans }] }],
  });
  return { body, spanIds };
}

async function send(batch: Batch): Promise<{ status: number; retryAfter: string | null; body: string }> {
  const res = await fetch(`${running.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: batch.body });
  return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
}

describe('the store unavailable for a while under steady sending', () => {
  it('answers retryable errors while the spool is full, then stores every acknowledged span exactly once', async () => {
    const store = running.collector.store;
    const acknowledged = new Set<string>();
    const refused: Batch[] = [];
    let sequence = 0;
    const sendOne = async (): Promise<number> => {
      const batch = makeBatch(sequence++);
      const res = await send(batch);
      if (res.status === 200) for (const id of batch.spanIds) acknowledged.add(id);
      else if (res.status === 503) {
        expect(Number(res.retryAfter)).toBeGreaterThan(0);
        expect(JSON.parse(res.body)).toMatchObject({ code: 14, message: expect.stringContaining('spool is full') });
        refused.push(batch);
      } else throw new Error(`unexpected status ${res.status}: ${res.body}`);
      return res.status;
    };

    for (let i = 0; i < 3; i++) expect(await sendOne()).toBe(200);
    // Start the outage from a drained spool, so what follows is the outage's doing.
    await eventually(async () => (running.collector.spool.fileCount === 0 && running.collector.pipeline.bufferedBytes === 0 ? true : undefined), 'the spool to drain');

    await store.command('DETACH TABLE otel_traces');
    // Keep sending at a steady pace while the store is away: first the spool
    // takes the batches, then it is full and the collector refuses them.
    const outageStatuses: number[] = [];
    for (let i = 0; i < 80; i++) {
      outageStatuses.push(await sendOne());
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    expect(outageStatuses).toContain(200);
    expect(outageStatuses).toContain(503);
    expect(running.collector.loader.stats.failedAttempts).toBeGreaterThan(0);
    await store.command('ATTACH TABLE otel_traces');

    // A well-behaved sender retries what was refused.
    for (const batch of refused.splice(0)) {
      const res = await eventually(async () => {
        const r = await send(batch);
        return r.status === 200 ? r : undefined;
      }, 'a refused batch to be accepted after the store returned');
      expect(res.status).toBe(200);
      for (const id of batch.spanIds) acknowledged.add(id);
    }

    const expected = acknowledged.size;
    const counts = await eventually(async () => {
      const [row] = await store.query<{ rows: string; distinct: string }>(
        "SELECT count() AS rows, uniqExact(SpanId) AS distinct FROM otel_traces WHERE ServiceName = 'outage-svc'",
      );
      return Number(row!.rows) >= expected && running.collector.spool.fileCount === 0 ? row : undefined;
    }, `${expected} spans stored`, 30_000);
    expect(Number(counts.rows)).toBe(expected);
    expect(Number(counts.distinct)).toBe(expected);

    const stored = await store.query<{ SpanId: string }>("SELECT SpanId FROM otel_traces WHERE ServiceName = 'outage-svc'");
    const storedIds = new Set(stored.map((r) => r.SpanId));
    for (const id of acknowledged) expect(storedIds.has(id)).toBe(true);

    // The views fed by the same inserts counted every span exactly once too.
    const [red] = await store.query<{ requests: string }>("SELECT sum(Requests) AS requests FROM tracemesh_red_1m WHERE ServiceName = 'outage-svc'");
    expect(Number(red!.requests)).toBe(expected);
    const [edges] = await store.query<{ requests: string }>("SELECT sum(Requests) AS requests FROM tracemesh_edges_1m WHERE Server = 'outage-svc'");
    expect(Number(edges!.requests)).toBe(expected);
    expect(running.collector.loader.healthy).toBe(true);
  });
});
