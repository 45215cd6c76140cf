import { randomBytes } from 'node:crypto';
import { expect } from 'vitest';
import { eventually } from './collector-harness.js';
import type { RunningCollector } from './collector-harness.js';

const SPANS_PER_BATCH = 25;

export interface Batch {
  body: string;
  spanIds: string[];
}

/** One OTLP/JSON request of 25 spans with fresh ids, for `service`. */
export function makeBatch(service: string, sequence: number): Batch {
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
    resourceSpans: [{ resource: { attributes: [{ key: 'service.name', value: { stringValue: service } }] }, scopeSpans: [{ scope: { name: 't' }, spans }] }],
  });
  return { body, spanIds };
}

export interface OutageOptions {
  service: string;
  /** How long the store is away. */
  outageMs: number;
  /** Pause between requests while it is away: the steady sending rate. */
  intervalMs: number;
  /** Called once while the store is away and requests are being refused (if they are). */
  whileRefusing?: () => Promise<void>;
}

export interface OutageReport {
  acknowledged: number;
  refusedDuringOutage: number;
  acceptedDuringOutage: number;
}

/**
 * Steady OTLP/HTTP sending while the store is taken away for real (its
 * otel_traces table detached, so every insert fails) and brought back; refused
 * batches are retried like a well-behaved sender would. Asserts that every
 * acknowledged span is stored exactly once, in the table and in the views fed
 * by it.
 */
export async function runStoreOutage(running: RunningCollector, options: OutageOptions): Promise<OutageReport> {
  const { collector } = running;
  const store = collector.store;
  const acknowledged = new Set<string>();
  const refused: Batch[] = [];
  let sequence = 0;
  let calledWhileRefusing = false;
  const send = async (batch: Batch): Promise<{ status: number; retryAfter: string | null; body: string }> => {
    const res = await fetch(`${running.httpUrl}/v1/traces`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: batch.body });
    return { status: res.status, retryAfter: res.headers.get('retry-after'), body: await res.text() };
  };
  const sendOne = async (): Promise<number> => {
    const batch = makeBatch(options.service, sequence++);
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
  await eventually(async () => (collector.spool.fileCount === 0 && collector.pipeline.bufferedBytes === 0 ? true : undefined), 'the spool to drain');
  const failedBefore = collector.loader.stats.failedAttempts;

  await store.command('DETACH TABLE otel_traces');
  const outageEnds = Date.now() + options.outageMs;
  let refusedDuringOutage = 0;
  let acceptedDuringOutage = 0;
  while (Date.now() < outageEnds) {
    const status = await sendOne();
    if (status === 200) acceptedDuringOutage++;
    else {
      refusedDuringOutage++;
      if (!calledWhileRefusing && options.whileRefusing !== undefined) {
        calledWhileRefusing = true;
        await options.whileRefusing();
      }
    }
    await new Promise((resolve) => setTimeout(resolve, options.intervalMs));
  }
  expect(collector.loader.stats.failedAttempts).toBeGreaterThan(failedBefore);
  expect(collector.loader.healthy).toBe(false);
  await store.command('ATTACH TABLE otel_traces');

  for (const batch of refused.splice(0)) {
    await eventually(async () => ((await send(batch)).status === 200 ? true : undefined), 'a refused batch to be accepted after the store returned');
    for (const id of batch.spanIds) acknowledged.add(id);
  }

  const expected = acknowledged.size;
  const counts = await eventually(async () => {
    const [row] = await store.query<{ rows: string; distinct: string }>(
      'SELECT count() AS rows, uniqExact(SpanId) AS distinct FROM otel_traces WHERE ServiceName = {s:String}',
      { s: options.service },
    );
    return Number(row!.rows) >= expected && collector.spool.fileCount === 0 ? row : undefined;
  }, `${expected} spans stored`, 60_000);
  expect(Number(counts.rows)).toBe(expected);
  expect(Number(counts.distinct)).toBe(expected);

  const stored = await store.query<{ SpanId: string }>('SELECT SpanId FROM otel_traces WHERE ServiceName = {s:String}', { s: options.service });
  const storedIds = new Set(stored.map((r) => r.SpanId));
  const missing = [...acknowledged].filter((id) => !storedIds.has(id));
  expect(missing).toEqual([]);

  // The views fed by the same inserts counted every span exactly once too.
  const [red] = await store.query<{ requests: string }>('SELECT sum(Requests) AS requests FROM tracemesh_red_1m WHERE ServiceName = {s:String}', { s: options.service });
  expect(Number(red!.requests)).toBe(expected);
  const [edges] = await store.query<{ requests: string }>('SELECT sum(Requests) AS requests FROM tracemesh_edges_1m WHERE Server = {s:String}', { s: options.service });
  expect(Number(edges!.requests)).toBe(expected);
  expect(collector.loader.healthy).toBe(true);
  return { acknowledged: expected, refusedDuringOutage, acceptedDuringOutage };
}
