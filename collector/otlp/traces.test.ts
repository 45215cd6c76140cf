import { describe, it, expect } from 'vitest';
import { SpanKind, SpanStatusCode, TraceFlags, context, trace, type HrTime } from '@opentelemetry/api';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, InMemorySpanExporter, SimpleSpanProcessor, type ReadableSpan } from '@opentelemetry/sdk-trace-base';
import { JsonTraceSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import type { Attribute, SpanRecord } from '../model.js';
import { decodeTracesProto } from './traces-proto.js';
import { decodeTracesJson } from './traces-json.js';

function nanos(t: HrTime): bigint {
  return BigInt(t[0]) * 1_000_000_000n + BigInt(t[1]);
}

const KIND_NAMES = ['Internal', 'Server', 'Client', 'Producer', 'Consumer'] as const;

/** Real SDK spans: every attribute value type, events, links, error status, every kind, a parent. */
async function sdkSpans(): Promise<ReadableSpan[]> {
  const exporter = new InMemorySpanExporter();
  const provider = new BasicTracerProvider({
    resource: resourceFromAttributes({
      'service.name': 'checkout',
      'deployment.environment': 'test',
      'host.cpus': 8,
      'process.runtime.flag': true,
    }),
    spanProcessors: [new SimpleSpanProcessor(exporter)],
  });
  const tracer = provider.getTracer('tm-test', '1.2.3', { schemaUrl: 'https://opentelemetry.io/schemas/1.26.0' });

  const start: HrTime = [1_700_000_000, 123_456_789];
  const root = tracer.startSpan('GET /checkout', {
    kind: SpanKind.SERVER,
    startTime: start,
    attributes: {
      'str': 'hello wörld ✓',
      'empty.str': '',
      'bool.t': true,
      'bool.f': false,
      'int': 42,
      'int.neg': -7,
      'int.big': 2 ** 40 + 3,
      'int.unsafe': 2 ** 60,
      'double': 3.25,
      'double.neg': -0.5,
      'double.nan': NaN,
      'double.inf': Infinity,
      'arr.str': ['a', 'b"q', ''],
      'arr.bool': [true, false],
      'arr.int': [1, -2, 3],
      'arr.double': [1.5, -2.25],
      'arr.empty': [],
    },
  });
  root.addEvent('cache.miss', { 'cache.key': 'user:1', 'attempt': 2 }, [1_700_000_000, 500_000_000]);
  root.addEvent('no-attrs', undefined, [1_700_000_000, 600_000_001]);
  root.setStatus({ code: SpanStatusCode.ERROR, message: 'payment declined' });
  const rootCtx = trace.setSpan(context.active(), root);

  const children: Array<ReturnType<typeof tracer.startSpan>> = [];
  const kinds = [SpanKind.INTERNAL, SpanKind.CLIENT, SpanKind.PRODUCER, SpanKind.CONSUMER];
  for (let i = 0; i < kinds.length; i++) {
    const child = tracer.startSpan(
      `child-${i}`,
      {
        kind: kinds[i],
        startTime: [1_700_000_000, 200_000_000 + i],
        links:
          i === 1
            ? [
                { context: root.spanContext(), attributes: { 'link.reason': 'retry-of', 'link.n': 1 } },
                {
                  context: {
                    traceId: '0af7651916cd43dd8448eb211c80319c',
                    spanId: 'b7ad6b7169203331',
                    traceFlags: TraceFlags.SAMPLED,
                    isRemote: true,
                  },
                },
              ]
            : [],
      },
      rootCtx,
    );
    if (i === 0) child.setStatus({ code: SpanStatusCode.OK });
    children.push(child);
  }
  for (let i = 0; i < children.length; i++) children[i]!.end([1_700_000_000, 300_000_000 + i * 7]);
  root.end([1_700_000_001, 987_654_321]);
  await provider.forceFlush();
  return exporter.getFinishedSpans();
}

/**
 * A ReadableSpan's attributes in our stored form (the SDK's integers become
 * OTLP ints). `json`: the SDK's JSON serializer writes NaN and Infinity with
 * JSON.stringify, i.e. as null, which reads as an empty AnyValue.
 */
function expectedAttributes(attrs: Record<string, unknown>, json: boolean): Attribute[] {
  return Object.keys(attrs).map((key) => {
    const v = attrs[key];
    if (typeof v === 'string') return { key, value: v, type: 'string' };
    if (typeof v === 'boolean') return { key, value: String(v), type: 'bool' };
    if (typeof v === 'number') {
      if (json && !Number.isFinite(v)) return { key, value: '', type: 'string' };
      return Number.isInteger(v) ? { key, value: BigInt(v).toString(), type: 'int' } : { key, value: String(v), type: 'double' };
    }
    if (Array.isArray(v)) return { key, value: JSON.stringify(v), type: 'array' };
    throw new Error(`unexpected attribute ${key}`);
  });
}

function expectedSpan(s: ReadableSpan, json: boolean): Omit<SpanRecord, 'resource' | 'scope'> {
  const ctx = s.spanContext();
  return {
    traceId: ctx.traceId,
    spanId: ctx.spanId,
    parentSpanId: s.parentSpanContext?.spanId ?? '',
    traceState: '',
    name: s.name,
    kind: KIND_NAMES[s.kind]!,
    startTimeUnixNano: nanos(s.startTime),
    endTimeUnixNano: nanos(s.endTime),
    statusCode: (['Unset', 'Ok', 'Error'] as const)[s.status.code],
    statusMessage: s.status.message ?? '',
    attributes: expectedAttributes(s.attributes, json),
    events: s.events.map((e) => ({ timeUnixNano: nanos(e.time), name: e.name, attributes: expectedAttributes(e.attributes ?? {}, json) })),
    links: s.links.map((l) => ({
      traceId: l.context.traceId,
      spanId: l.context.spanId,
      traceState: '',
      attributes: expectedAttributes(l.attributes ?? {}, json),
    })),
    // The exporter sets HAS_IS_REMOTE (0x100) on top of the W3C trace flags.
    flags: (ctx.traceFlags & 0xff) | 0x100 | (s.parentSpanContext?.isRemote ? 0x200 : 0),
  };
}

function withoutContext(r: SpanRecord): Omit<SpanRecord, 'resource' | 'scope'> {
  const { resource: _resource, scope: _scope, ...rest } = r;
  return rest;
}

const decoders = [
  ['protobuf', (spans: ReadableSpan[]) => decodeTracesProto(ProtobufTraceSerializer.serializeRequest(spans)!)],
  ['JSON', (spans: ReadableSpan[]) => decodeTracesJson(JsonTraceSerializer.serializeRequest(spans)!)],
] as const;

describe.each(decoders)('traces round trip through the OpenTelemetry JS %s serializer', (name, decode) => {
  const json = name === 'JSON';
  it('returns every field of every span exactly', async () => {
    const spans = await sdkSpans();
    expect(spans).toHaveLength(5);
    const result = decode(spans);
    expect(result.rejected).toBe(0);
    expect(result.errors).toEqual([]);
    expect(result.items.map(withoutContext)).toEqual(spans.map((s) => expectedSpan(s, json)));

    const root = result.items.find((s) => s.parentSpanId === '')!;
    expect(root.kind).toBe('Server');
    expect(root.startTimeUnixNano).toBe(1_700_000_000_123_456_789n);
    expect(root.endTimeUnixNano).toBe(1_700_000_001_987_654_321n);
    expect(root.statusCode).toBe('Error');
    expect(root.statusMessage).toBe('payment declined');
    const attr = (key: string) => root.attributes.find((a) => a.key === key);
    expect(attr('int.neg')).toEqual({ key: 'int.neg', value: '-7', type: 'int' });
    expect(attr('int.unsafe')).toEqual({ key: 'int.unsafe', value: '1152921504606846976', type: 'int' });
    if (!json) {
      expect(attr('double.nan')).toEqual({ key: 'double.nan', value: 'NaN', type: 'double' });
      expect(attr('double.inf')).toEqual({ key: 'double.inf', value: 'Infinity', type: 'double' });
    }
    expect(attr('arr.str')).toEqual({ key: 'arr.str', value: '["a","b\\"q",""]', type: 'array' });
    expect(attr('arr.double')).toEqual({ key: 'arr.double', value: '[1.5,-2.25]', type: 'array' });
    expect(new Set(result.items.map((s) => s.kind))).toEqual(new Set(['Server', 'Internal', 'Client', 'Producer', 'Consumer']));
    const linked = result.items.find((s) => s.links.length === 2)!;
    expect(linked.links[1]).toEqual({ traceId: '0af7651916cd43dd8448eb211c80319c', spanId: 'b7ad6b7169203331', traceState: '', attributes: [] });
  });

  it('gives every span the resource and scope of its ResourceSpans/ScopeSpans', async () => {
    const spans = await sdkSpans();
    const result = decode(spans);
    const first = result.items[0]!;
    expect(first.resource).toEqual({
      serviceName: 'checkout',
      attributes: [
        { key: 'service.name', value: 'checkout', type: 'string' },
        { key: 'deployment.environment', value: 'test', type: 'string' },
        { key: 'host.cpus', value: '8', type: 'int' },
        { key: 'process.runtime.flag', value: 'true', type: 'bool' },
      ],
      schemaUrl: '',
    });
    expect(first.scope).toEqual({
      name: 'tm-test',
      version: '1.2.3',
      attributes: [],
      droppedAttributesCount: 0,
      schemaUrl: 'https://opentelemetry.io/schemas/1.26.0',
    });
    for (const s of result.items) {
      expect(s.resource).toBe(first.resource);
      expect(s.scope).toBe(first.scope);
    }
  });

  it('decodes kvlist and bytes values and mixed arrays written by the real serializer', async () => {
    const [span] = await sdkSpans();
    // The tracing SDK drops these value types, but the OTLP serializer writes them
    // (logs use them): feed it a span carrying them to check our decoding of its bytes.
    const odd = Object.assign(Object.create(Object.getPrototypeOf(span)), span, {
      attributes: {
        'kv': { a: 1, b: 'x', nested: { c: [true, 2.5] }, big: 2 ** 60 },
        'bytes': new Uint8Array([0, 1, 2, 250, 255]),
        'mixed': ['s', 1, 2.5, false, new Uint8Array([104, 105])],
      },
      events: [],
      links: [],
    }) as ReadableSpan;
    const result = decode([odd]);
    expect(result.rejected).toBe(0);
    expect(result.items[0]!.attributes).toEqual([
      { key: 'kv', value: '{"a":1,"b":"x","nested":{"c":[true,2.5]},"big":"1152921504606846976"}', type: 'kvlist' },
      { key: 'bytes', value: 'AAEC+v8=', type: 'bytes' },
      { key: 'mixed', value: '["s",1,2.5,false,"aGk="]', type: 'array' },
    ]);
  });
});

describe('traces with no spans', () => {
  it('decodes an empty protobuf body and an empty JSON object to nothing', () => {
    expect(decodeTracesProto(new Uint8Array(0))).toEqual({ items: [], rejected: 0, errors: [] });
    expect(decodeTracesJson('{}')).toEqual({ items: [], rejected: 0, errors: [] });
    expect(decodeTracesJson('{"resourceSpans":[]}')).toEqual({ items: [], rejected: 0, errors: [] });
  });
});
