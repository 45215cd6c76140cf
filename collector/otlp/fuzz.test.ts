import { describe, it, expect } from 'vitest';
import { SpanKind, SpanStatusCode, context, trace } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { AggregationType, MeterProvider, MetricReader } from '@opentelemetry/sdk-metrics';
import {
  JsonMetricsSerializer,
  JsonTraceSerializer,
  ProtobufMetricsSerializer,
  ProtobufTraceSerializer,
} from '@opentelemetry/otlp-transformer';
import { TracemeshError } from '../../src/lib/errors.js';
import type { DecodeResult, SpanRecord } from '../model.js';
import { decodeMetricsJson } from './metrics-json.js';
import { decodeMetricsProto } from './metrics-proto.js';
import { decodeTracesJson } from './traces-json.js';
import { decodeTracesProto } from './traces-proto.js';

const ITERATIONS = 2_000;

/** mulberry32: a small seeded PRNG, so a failure replays exactly. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** One random damage: bit flips, byte overwrites, truncation, a deleted or duplicated slice, inserted junk. */
function mutate(base: Uint8Array, rnd: () => number): Uint8Array {
  const int = (n: number) => Math.floor(rnd() * n);
  const b = Uint8Array.from(base);
  switch (int(6)) {
    case 0: {
      const flips = 1 + int(4);
      for (let i = 0; i < flips; i++) b[int(b.length)]! ^= 1 << int(8);
      return b;
    }
    case 1: {
      const writes = 1 + int(3);
      for (let i = 0; i < writes; i++) b[int(b.length)] = int(256);
      return b;
    }
    case 2:
      return b.subarray(0, int(b.length));
    case 3: {
      const at = int(b.length);
      const len = 1 + int(16);
      return Uint8Array.from([...b.subarray(0, at), ...b.subarray(Math.min(b.length, at + len))]);
    }
    case 4: {
      const at = int(b.length);
      const len = 1 + int(32);
      return Uint8Array.from([...b.subarray(0, at + len), ...b.subarray(at, at + len), ...b.subarray(at + len)]);
    }
    default: {
      const at = int(b.length);
      const junk = Array.from({ length: 1 + int(8) }, () => int(256));
      return Uint8Array.from([...b.subarray(0, at), ...junk, ...b.subarray(at)]);
    }
  }
}

async function traceRequests(): Promise<{ proto: Uint8Array; json: Uint8Array }> {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({ 'service.name': 'fuzz', 'n': 1 }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('fuzz', '1');
  for (let i = 0; i < 4; i++) {
    const parent = tracer.startSpan(`p${i}`, { kind: SpanKind.SERVER, attributes: { s: 'x', i, d: 1.5, b: true, a: [1, 2] } });
    parent.addEvent('e', { k: 'v' });
    parent.setStatus({ code: SpanStatusCode.ERROR, message: 'm' });
    const child = tracer.startSpan('c', { kind: SpanKind.CLIENT, links: [{ context: parent.spanContext(), attributes: { l: 1 } }] }, trace.setSpan(context.active(), parent));
    child.end();
    parent.end();
  }
  await provider.forceFlush();
  const spans = exporter.getFinishedSpans();
  return { proto: ProtobufTraceSerializer.serializeRequest(spans)!, json: JsonTraceSerializer.serializeRequest(spans)! };
}

class Reader extends MetricReader {
  protected override onForceFlush(): Promise<void> {
    return Promise.resolve();
  }
  protected override onShutdown(): Promise<void> {
    return Promise.resolve();
  }
}

async function metricRequests(): Promise<{ proto: Uint8Array; json: Uint8Array }> {
  const reader = new Reader();
  const provider = new MeterProvider({
    readers: [reader],
    views: [{ instrumentName: 'exp', aggregation: { type: AggregationType.EXPONENTIAL_HISTOGRAM } }],
  });
  const meter = provider.getMeter('fuzz');
  meter.createCounter('c').add(3, { a: 'b' });
  meter.createGauge('g').record(1.5);
  meter.createHistogram('h').record(12, { x: 1 });
  meter.createHistogram('exp').record(0.25);
  const { resourceMetrics } = await reader.collect();
  await provider.shutdown();
  return { proto: ProtobufMetricsSerializer.serializeRequest(resourceMetrics)!, json: JsonMetricsSerializer.serializeRequest(resourceMetrics)! };
}

interface Tally {
  thrown: number;
  partial: number;
  clean: number;
}

/** Decodes `body`; only TM_ERR_OTLP_MALFORMED may come out, and whatever is accepted must be well-formed. */
function check(decode: () => DecodeResult<unknown>, tally: Tally, checkItem: (item: unknown) => void): void {
  let result: DecodeResult<unknown>;
  try {
    result = decode();
  } catch (err) {
    if (!(err instanceof TracemeshError) || err.code !== 'TM_ERR_OTLP_MALFORMED') throw err;
    expect(err.message.length).toBeGreaterThan(0);
    tally.thrown++;
    return;
  }
  expect(result.errors.length).toBeLessThanOrEqual(Math.min(10, result.rejected));
  for (const item of result.items) checkItem(item);
  if (result.rejected > 0) tally.partial++;
  else tally.clean++;
}

function checkSpan(item: unknown): void {
  const s = item as SpanRecord;
  expect(s.traceId).toMatch(/^[0-9a-f]{32}$/);
  expect(s.spanId).toMatch(/^[0-9a-f]{16}$/);
  expect(s.parentSpanId).toMatch(/^([0-9a-f]{16})?$/);
  expect(s.endTimeUnixNano >= s.startTimeUnixNano).toBe(true);
  for (const l of s.links) expect(l.traceId).toMatch(/^[0-9a-f]{32}$/);
}

function checkPoint(item: unknown): void {
  expect(typeof (item as { timeUnixNano: bigint }).timeUnixNano).toBe('bigint');
}

describe('damaged requests only ever give TM_ERR_OTLP_MALFORMED or valid records', () => {
  it(`traces, protobuf and JSON, ${ITERATIONS} mutations each`, async () => {
    const { proto, json } = await traceRequests();
    const rnd = prng(0x7ace);
    const protoTally: Tally = { thrown: 0, partial: 0, clean: 0 };
    const jsonTally: Tally = { thrown: 0, partial: 0, clean: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const p = mutate(proto, rnd);
      check(() => decodeTracesProto(p), protoTally, checkSpan);
      const j = mutate(json, rnd);
      check(() => decodeTracesJson(j), jsonTally, checkSpan);
    }
    // The mutations reach both the request-level and the span-level checks.
    expect(protoTally.thrown).toBeGreaterThan(100);
    expect(protoTally.partial).toBeGreaterThan(50);
    expect(jsonTally.thrown).toBeGreaterThan(100);
    expect(jsonTally.partial).toBeGreaterThan(10);
  });

  it(`metrics, protobuf and JSON, ${ITERATIONS} mutations each`, async () => {
    const { proto, json } = await metricRequests();
    const rnd = prng(0x3e7c);
    const protoTally: Tally = { thrown: 0, partial: 0, clean: 0 };
    const jsonTally: Tally = { thrown: 0, partial: 0, clean: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const p = mutate(proto, rnd);
      check(() => decodeMetricsProto(p), protoTally, checkPoint);
      const j = mutate(json, rnd);
      check(() => decodeMetricsJson(j), jsonTally, checkPoint);
    }
    expect(protoTally.thrown).toBeGreaterThan(100);
    expect(protoTally.partial).toBeGreaterThan(10);
    expect(jsonTally.thrown).toBeGreaterThan(100);
  });

  it('random bytes', () => {
    const rnd = prng(42);
    const tally: Tally = { thrown: 0, partial: 0, clean: 0 };
    for (let i = 0; i < ITERATIONS; i++) {
      const body = Uint8Array.from({ length: Math.floor(rnd() * 200) }, () => Math.floor(rnd() * 256));
      check(() => decodeTracesProto(body), tally, checkSpan);
      check(() => decodeMetricsProto(body), tally, checkPoint);
    }
    expect(tally.thrown).toBeGreaterThan(ITERATIONS);
  });
});
