import { afterEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { eventually } from '../../test/support/collector-harness.js';
import type { ProxySpanRecord } from './span-record.js';
import { BatchingSpanSink, spanQueueOptions } from './span-sink-batcher.js';
import type { SpanBatchExporter, SpanQueueOptions } from './span-sink-batcher.js';
import { spanRecord } from './span-sink.test-helper.js';
import { RecordQueue } from './span-store-records.js';

type Mode = 'ok' | 'reject' | 'deadline' | 'hang' | 'throw';

/** An exporter whose answer the test chooses; it remembers every batch. */
class FakeExporter implements SpanBatchExporter<ProxySpanRecord[]> {
  mode: Mode = 'ok';
  batches: ProxySpanRecord[][] = [];
  shutdowns = 0;
  private hanging: Array<() => void> = [];

  export(spans: ProxySpanRecord[]): Promise<void> {
    this.batches.push(spans);
    switch (this.mode) {
      case 'ok':
        return Promise.resolve();
      case 'reject':
        return Promise.reject(new Error('connection refused'));
      case 'deadline':
        return Promise.reject(Object.assign(new Error('deadline exceeded'), { code: 4 }));
      case 'throw':
        throw new Error('exporter bug');
      case 'hang':
        return new Promise((resolve) => this.hanging.push(resolve));
    }
  }

  release(): void {
    for (const resolve of this.hanging.splice(0)) resolve();
  }

  async shutdown(): Promise<void> {
    this.shutdowns++;
    this.release();
  }

  get exportedCount(): number {
    return this.batches.reduce((n, b) => n + b.length, 0);
  }
}

const sinks: Array<BatchingSpanSink<ProxySpanRecord[]>> = [];

function sinkWith(exporter: FakeExporter, options: Partial<SpanQueueOptions>): BatchingSpanSink<ProxySpanRecord[]> {
  const queue = spanQueueOptions({ scheduledDelayMs: 60_000, ...options });
  const sink = new BatchingSpanSink(exporter, queue, new RecordQueue(queue.maxQueueSize, queue.maxExportBatchSize));
  sinks.push(sink);
  return sink;
}

afterEach(async () => {
  await Promise.all(sinks.splice(0).map((s) => s.shutdown()));
});

describe('BatchingSpanSink', () => {
  it('sends full batches on its own and the rest on forceFlush', async () => {
    const exporter = new FakeExporter();
    const sink = sinkWith(exporter, { maxQueueSize: 100, maxExportBatchSize: 4 });
    for (let i = 0; i < 10; i++) sink.record(spanRecord(i));
    await eventually(async () => (exporter.batches.length === 2 ? true : undefined), 'two full batches');
    expect(sink.stats.queued).toBe(2);
    await sink.forceFlush();
    expect(exporter.batches.map((b) => b.length)).toEqual([4, 4, 2]);
    expect(exporter.batches.flat().map((s) => s.name)).toEqual(Array.from({ length: 10 }, (_, i) => `GET /items/${i}`));
    expect(sink.stats).toMatchObject({ queued: 0, exportedSpans: 10 });
    expect(sink.droppedSpans).toBe(0);
  });

  it('sends a partial batch after scheduledDelayMs', async () => {
    const exporter = new FakeExporter();
    const sink = sinkWith(exporter, { maxExportBatchSize: 100, scheduledDelayMs: 20 });
    for (let i = 0; i < 3; i++) sink.record(spanRecord(i));
    expect(exporter.batches).toHaveLength(0);
    await eventually(async () => (exporter.exportedCount === 3 ? true : undefined), 'the timer to send 3 spans');
    expect(sink.stats.exportedSpans).toBe(3);
  });

  it('holds at most maxQueueSize spans and counts the rest as dropped (queue full)', async () => {
    const exporter = new FakeExporter();
    exporter.mode = 'hang';
    const sink = sinkWith(exporter, { maxQueueSize: 10, maxExportBatchSize: 5 });
    for (let i = 0; i < 30; i++) sink.record(spanRecord(i));
    expect(sink.stats).toMatchObject({ queued: 10, droppedQueueFull: 20 });
    expect(sink.droppedSpans).toBe(20);
    // One export leaves (and hangs); the queue has room for five more, no more.
    await eventually(async () => (exporter.batches.length === 1 ? true : undefined), 'the first export');
    for (let i = 0; i < 30; i++) sink.record(spanRecord(i));
    expect(sink.stats).toMatchObject({ queued: 10, droppedQueueFull: 45 });
    exporter.mode = 'ok';
    exporter.release();
    await sink.forceFlush();
    expect(sink.stats).toMatchObject({ queued: 0, exportedSpans: 15, droppedQueueFull: 45 });
  });

  it('counts a rejected export as dropped (export failed) and goes on with the next batch', async () => {
    const exporter = new FakeExporter();
    exporter.mode = 'reject';
    const messages: string[] = [];
    const sink = sinkWith(exporter, { maxExportBatchSize: 3, log: (m) => messages.push(m) });
    for (let i = 0; i < 7; i++) sink.record(spanRecord(i));
    await sink.forceFlush();
    expect(sink.stats).toMatchObject({ droppedExportFailed: 7, exportedSpans: 0, queued: 0 });
    expect(sink.droppedSpans).toBe(7);
    exporter.mode = 'ok';
    sink.record(spanRecord(8));
    await sink.forceFlush();
    expect(sink.stats).toMatchObject({ droppedExportFailed: 7, exportedSpans: 1 });
    // One message when failing starts, one when it ends: not one per batch.
    expect(messages).toHaveLength(2);
    expect(messages[0]).toMatch(/span export failed: connection refused/);
    expect(messages[1]).toMatch(/recovered/);
  });

  it('counts an exporter that throws instead of rejecting as export failed', async () => {
    const exporter = new FakeExporter();
    exporter.mode = 'throw';
    const sink = sinkWith(exporter, { maxExportBatchSize: 2 });
    for (let i = 0; i < 4; i++) sink.record(spanRecord(i));
    await sink.forceFlush();
    expect(sink.stats).toMatchObject({ droppedExportFailed: 4, queued: 0 });
  });

  it('counts an export that outlives exportTimeoutMs, or a gRPC DEADLINE_EXCEEDED, as dropped (timeout)', async () => {
    const exporter = new FakeExporter();
    exporter.mode = 'hang';
    const sink = sinkWith(exporter, { maxExportBatchSize: 2, exportTimeoutMs: 20 });
    for (let i = 0; i < 3; i++) sink.record(spanRecord(i));
    await sink.forceFlush();
    expect(sink.stats).toMatchObject({ droppedExportTimeout: 3, queued: 0 });
    exporter.mode = 'deadline';
    sink.record(spanRecord(4));
    await sink.forceFlush();
    expect(sink.stats).toMatchObject({ droppedExportTimeout: 4, droppedExportFailed: 0 });
    expect(sink.droppedSpans).toBe(4);
  });

  it('shutdown flushes, closes the exporter once, is safe twice, and counts spans recorded afterwards', async () => {
    const exporter = new FakeExporter();
    const sink = sinkWith(exporter, { maxExportBatchSize: 100 });
    for (let i = 0; i < 5; i++) sink.record(spanRecord(i));
    const first = sink.shutdown();
    const second = sink.shutdown();
    expect(second).toBe(first);
    await first;
    await sink.shutdown();
    expect(exporter.exportedCount).toBe(5);
    expect(exporter.shutdowns).toBe(1);
    sink.record(spanRecord(6));
    expect(sink.stats).toMatchObject({ exportedSpans: 5, droppedAtShutdown: 1, queued: 0 });
    expect(sink.droppedSpans).toBe(1);
  });

  it('shutdown gives up after shutdownTimeoutMs and counts what was left', async () => {
    const exporter = new FakeExporter();
    exporter.mode = 'hang';
    const sink = sinkWith(exporter, { maxExportBatchSize: 2, exportTimeoutMs: 600_000, shutdownTimeoutMs: 30 });
    for (let i = 0; i < 5; i++) sink.record(spanRecord(i));
    await sink.shutdown();
    // The first batch of 2 is still out when the deadline passes; the 3 queued are lost.
    expect(sink.stats.droppedAtShutdown).toBe(3);
    expect(sink.stats.queued).toBe(0);
    expect(exporter.shutdowns).toBe(1);
  });

  it('shutdown without any span is immediate and safe', async () => {
    const exporter = new FakeExporter();
    const sink = sinkWith(exporter, {});
    await sink.shutdown();
    await sink.shutdown();
    expect(exporter.batches).toHaveLength(0);
    expect(sink.droppedSpans).toBe(0);
  });

  it('rejects bad options with an error naming the option', () => {
    const bad: Array<[Partial<SpanQueueOptions>, RegExp]> = [
      [{ maxQueueSize: 0 }, /maxQueueSize/],
      [{ maxQueueSize: 10, maxExportBatchSize: 11 }, /maxExportBatchSize/],
      [{ scheduledDelayMs: 1.5 }, /scheduledDelayMs/],
      [{ exportTimeoutMs: -1 }, /exportTimeoutMs/],
      [{ shutdownTimeoutMs: Number.NaN }, /shutdownTimeoutMs/],
    ];
    for (const [options, message] of bad) {
      let caught: unknown;
      try {
        spanQueueOptions(options);
      } catch (err) {
        caught = err;
      }
      expect(isTracemeshError(caught, 'TM_ERR_CONFIG_INVALID'), JSON.stringify(options)).toBe(true);
      expect((caught as Error).message).toMatch(message);
    }
  });
});
