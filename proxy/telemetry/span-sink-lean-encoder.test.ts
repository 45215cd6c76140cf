import { describe, expect, it } from 'vitest';
import { decodeTracesProto } from '../../collector/otlp/traces-proto.js';
import type { ProxySpanRecord } from './span-record.js';
import { encodeResource, encodeScope, encodeTraceRequest } from './span-sink-lean-encoder.js';
import { spanRecord } from './span-sink.test-helper.js';

const RESOURCE = { 'service.name': 'reviews', 'service.namespace': 'default', 'tracemesh.component': 'proxy', 'process.pid': 4242 };

function decode(spans: ProxySpanRecord[]) {
  const body = encodeTraceRequest(encodeResource(RESOURCE), encodeScope('tracemesh-proxy'), spans);
  const result = decodeTracesProto(body);
  expect(result.errors).toEqual([]);
  expect(result.rejected).toBe(0);
  return result.items;
}

const micros = (ms: number): bigint => BigInt(Math.round(ms * 1000)) * 1000n;

describe('lean OTLP encoder, read back by the collector decoder', () => {
  it('keeps ids, parent, trace state, kind, times (µs), status, flags, resource and scope', () => {
    const server = spanRecord(0, {
      parentSpanId: 'b7ad6b7169203331',
      traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      status: 'error',
      statusMessage: 'upstream connect error (UF)',
      startTimeMs: 1_722_000_000_123.457,
      endTimeMs: 1_722_000_000_125.001,
    });
    const client = spanRecord(1, { status: 'ok', sampled: false });
    const [a, b] = decode([server, client]);
    expect(a).toMatchObject({
      traceId: server.traceId,
      spanId: server.spanId,
      parentSpanId: 'b7ad6b7169203331',
      traceState: 'congo=t61rcWkgMzE,rojo=00f067aa0ba902b7',
      name: server.name,
      kind: 'Server',
      statusCode: 'Error',
      statusMessage: 'upstream connect error (UF)',
      startTimeUnixNano: 1_722_000_000_123_457_000n,
      endTimeUnixNano: 1_722_000_000_125_001_000n,
      // sampled, has-is-remote, is-remote (the parent came over the wire)
      flags: 0x301,
    });
    expect(b).toMatchObject({ kind: 'Client', parentSpanId: '', statusCode: 'Ok', statusMessage: '', flags: 0x100 });
    expect(b!.startTimeUnixNano).toBe(micros(client.startTimeMs));
    expect(a!.resource.serviceName).toBe('reviews');
    expect(a!.resource.attributes).toEqual([
      { key: 'service.name', value: 'reviews', type: 'string' },
      { key: 'service.namespace', value: 'default', type: 'string' },
      { key: 'tracemesh.component', value: 'proxy', type: 'string' },
      { key: 'process.pid', value: '4242', type: 'int' },
    ]);
    expect(a!.scope.name).toBe('tracemesh-proxy');
  });

  it('writes every attribute type, long and non-ASCII strings, and negative ints', () => {
    const long = 'x'.repeat(200);
    const huge = 'y'.repeat(20_000); // a three-byte length
    const span = spanRecord(2, {
      attributes: {
        's': 'plain',
        'unicode': 'naïve ☃ 日本 ' + 'é'.repeat(30), // 42 characters or fewer, but more than 42 bytes
        'long': long,
        'huge': huge,
        'int': 503,
        'zero': 0,
        'negative': -42,
        'big': 2 ** 40 + 1,
        'double': 0.75,
        'unsafe': 2 ** 60,
        'yes': true,
        'no': false,
        'empty': '',
      },
    });
    const [got] = decode([span]);
    const byKey = Object.fromEntries(got!.attributes.map((a) => [a.key, a]));
    expect(byKey).toEqual({
      s: { key: 's', value: 'plain', type: 'string' },
      unicode: { key: 'unicode', value: 'naïve ☃ 日本 ' + 'é'.repeat(30), type: 'string' },
      long: { key: 'long', value: long, type: 'string' },
      huge: { key: 'huge', value: huge, type: 'string' },
      int: { key: 'int', value: '503', type: 'int' },
      zero: { key: 'zero', value: '0', type: 'int' },
      negative: { key: 'negative', value: '-42', type: 'int' },
      big: { key: 'big', value: String(2 ** 40 + 1), type: 'int' },
      double: { key: 'double', value: '0.75', type: 'double' },
      unsafe: { key: 'unsafe', value: String(2 ** 60), type: 'double' },
      yes: { key: 'yes', value: 'true', type: 'bool' },
      no: { key: 'no', value: 'false', type: 'bool' },
      empty: { key: 'empty', value: '', type: 'string' },
    });
    expect(got!.attributes.map((a) => a.key)).toEqual(Object.keys(span.attributes));
  });

  it('encodes a batch larger than the writer starts with', () => {
    const spans = Array.from({ length: 600 }, (_, i) => spanRecord(i));
    const got = decode(spans);
    expect(got.map((s) => s.spanId)).toEqual(spans.map((s) => s.spanId));
  });

  it('falls back to Buffer decoding for ids that are not lowercase hex', () => {
    const span = spanRecord(3, { parentSpanId: 'B7AD6B7169203331' });
    const [got] = decode([span]);
    expect(got!.parentSpanId).toBe('b7ad6b7169203331');
    expect(got!.spanId).toBe(span.spanId);
  });
});
