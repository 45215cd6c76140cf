import { describe, expect, it } from 'vitest';
import { decodeTracesProto } from '../../collector/otlp/traces-proto.js';
import type { AttributeValue, ProxySpanRecord, SpanAttributeWriter } from './span-record.js';
import { STORED, STORE_FULL } from './span-sink-batcher.js';
import { encodeResource, encodeScope, exportRequestHead } from './span-sink-lean-encoder.js';
import { spanRecord } from './span-sink.test-helper.js';
import { EncodedSpanQueue } from './span-store-encoded.js';
import type { EncodedSpans } from './span-store-encoded.js';

const RESOURCE = encodeResource({ 'service.name': 'reviews' });
const SCOPE = encodeScope('tracemesh-proxy');

/** A record that hands its attributes over through writeAttributes, as the HTTP path's do. */
function writerRecord(i: number, attributes: ReadonlyArray<readonly [string, AttributeValue]>): ProxySpanRecord {
  const base = spanRecord(i, { attributes: Object.fromEntries(attributes) });
  return {
    ...base,
    writeAttributes(w: SpanAttributeWriter): void {
      for (const [key, value] of attributes) {
        if (typeof value === 'string') w.string(key, value);
        else w.int(key, value as number);
      }
    },
  };
}

function decode(batch: EncodedSpans) {
  const result = decodeTracesProto(Buffer.concat([exportRequestHead(RESOURCE, SCOPE, batch.length), batch.bytes]));
  expect(result.errors).toEqual([]);
  expect(result.rejected).toBe(0);
  return result.items;
}

function attributesOf(span: { attributes: Array<{ key: string; value: string; type: string }> }): Record<string, string | number> {
  return Object.fromEntries(span.attributes.map((a) => [a.key, a.type === 'int' ? Number(a.value) : a.value]));
}

const BASE: Array<[string, AttributeValue]> = [
  ['http.request.method', 'GET'],
  ['url.path', '/reviews/1'],
  ['server.port', 9080],
  ['tracemesh.request_id', 'id-0'],
  ['http.response.status_code', 200],
  ['tracemesh.response_flags', '-'],
];

describe('EncodedSpanQueue', () => {
  it('encodes each span as recorded; repeated attributes copied from the previous span read back the same', () => {
    const queue = new EncodedSpanQueue(100, 100);
    const records: ProxySpanRecord[] = [
      writerRecord(0, BASE),
      writerRecord(1, BASE), // every attribute repeats
      writerRecord(2, BASE.map(([k, v]) => (k === 'tracemesh.request_id' ? [k, 'id-2'] : [k, v]))), // one in the middle changes
      writerRecord(3, BASE.filter(([k]) => k !== 'url.path')), // one fewer: positions shift
      writerRecord(4, [...BASE, ['error.type', '503']]), // one more at the end
      writerRecord(5, BASE.map(([k, v]) => (k === 'http.response.status_code' ? [k, '200'] : [k, v]))), // same text, other type
      spanRecord(6, { attributes: { 'tracemesh.direction': 'inbound', 'http.request.method': 'GET' } }), // no writeAttributes in between
      writerRecord(7, BASE),
      writerRecord(8, [['url.path', 'x'.repeat(300)], ...BASE.slice(1)]), // a long value: two-byte lengths
      writerRecord(9, [['url.path', 'x'.repeat(300)], ...BASE.slice(1)]),
      writerRecord(10, Array.from({ length: 80 }, (_, k) => [`a${k}`, k] as [string, number])), // more than the cache follows
      writerRecord(11, Array.from({ length: 80 }, (_, k) => [`a${k}`, k] as [string, number])),
      writerRecord(12, [['big', 'y'.repeat(20_000)], ...BASE]), // a block too large to keep
      writerRecord(13, [['big', 'y'.repeat(20_000)], ...BASE]),
    ];
    for (const r of records) expect(queue.add(r)).toBe(STORED);
    expect(queue.size).toBe(records.length);
    const batch = queue.take();
    expect(batch.count).toBe(records.length);
    expect(queue.size).toBe(0);
    const got = decode(batch);
    expect(got.map((s) => s.spanId)).toEqual(records.map((r) => r.spanId));
    got.forEach((span, i) => {
      const want = records[i]!.attributes;
      expect(attributesOf(span), `span ${i}`).toEqual(want);
      expect(span.attributes.map((a) => a.key), `span ${i} order`).toEqual(Object.keys(want));
    });
    expect(got[5]!.attributes.find((a) => a.key === 'http.response.status_code')?.type).toBe('string');
    expect(got[4]!.attributes.find((a) => a.key === 'http.response.status_code')?.type).toBe('int');
  });

  it('seals a batch when it is full and hands out the oldest first', () => {
    const queue = new EncodedSpanQueue(100, 3);
    const records = Array.from({ length: 7 }, (_, i) => writerRecord(i, BASE));
    for (const r of records) queue.add(r);
    expect(queue.size).toBe(7);
    const first = queue.take();
    const second = queue.take();
    const rest = queue.take();
    expect([first.count, second.count, rest.count]).toEqual([3, 3, 1]);
    expect([...decode(first), ...decode(second), ...decode(rest)].map((s) => s.spanId)).toEqual(records.map((r) => r.spanId));
    expect(queue.size).toBe(0);
    expect(queue.bytes).toBe(0);
  });

  it('holds at most maxQueueSize spans and at most maxQueueBytes of them', () => {
    const bySpans = new EncodedSpanQueue(5, 2);
    const outcomes = Array.from({ length: 8 }, (_, i) => bySpans.add(writerRecord(i, BASE)));
    expect(outcomes).toEqual([STORED, STORED, STORED, STORED, STORED, STORE_FULL, STORE_FULL, STORE_FULL]);
    bySpans.take();
    expect(bySpans.add(writerRecord(9, BASE))).toBe(STORED);

    const byBytes = new EncodedSpanQueue(1000, 10, 4096);
    const huge = [['url.path', 'z'.repeat(1500)] as [string, string]];
    const results = Array.from({ length: 5 }, (_, i) => byBytes.add(writerRecord(i, huge)));
    expect(results.slice(0, 2)).toEqual([STORED, STORED]);
    expect(results.slice(2)).toContain(STORE_FULL);
    expect(byBytes.bytes).toBeLessThanOrEqual(4096);
    // What was refused left nothing behind: the batch decodes to the spans stored.
    const stored = results.filter((r) => r === STORED).length;
    expect(decode(byBytes.take())).toHaveLength(stored);
  });

  it('reuses a delivered batch buffer for later spans, and clear() forgets everything', () => {
    const queue = new EncodedSpanQueue(100, 2);
    queue.add(writerRecord(0, BASE));
    queue.add(writerRecord(1, BASE));
    const first = queue.take();
    const storage = first.storage;
    queue.release(first);
    // The encoder moved on to a fresh buffer when `first` was sealed; it takes the released one at the next seal.
    queue.add(writerRecord(2, BASE));
    queue.add(writerRecord(3, BASE));
    const second = queue.take();
    expect(second.storage).not.toBe(storage);
    queue.add(writerRecord(4, BASE));
    queue.add(writerRecord(5, BASE));
    const third = queue.take();
    expect(third.storage).toBe(storage);
    expect(decode(third).map((s) => s.name)).toEqual(['GET /items/4', 'GET /items/5']);
    queue.add(writerRecord(6, BASE));
    queue.clear();
    expect(queue.size).toBe(0);
    expect(queue.bytes).toBe(0);
  });
});
