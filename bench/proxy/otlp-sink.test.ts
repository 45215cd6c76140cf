import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import { BasicTracerProvider, SimpleSpanProcessor } from '@opentelemetry/sdk-trace-base';
import { afterEach, describe, expect, it } from 'vitest';
import { craftRequest } from '../../test/support/otlp-craft.js';
import { countSpans, startOtlpSink } from './otlp-sink.js';
import type { OtlpSink } from './otlp-sink.js';

const id = (n: number, bytes: number): Buffer => Buffer.alloc(bytes, n);

describe('countSpans', () => {
  it('counts the spans of an ExportTraceServiceRequest without decoding them', () => {
    const spans = [1, 2, 3].map((n) => ({ traceId: id(n, 16), spanId: id(n, 8), name: `span ${n}` }));
    expect(countSpans(Buffer.from(craftRequest('reviews', spans)))).toBe(3);
    expect(countSpans(Buffer.alloc(0))).toBe(0);
  });

  it('throws on bytes that are not a protobuf message', () => {
    const good = Buffer.from(craftRequest('reviews', [{ traceId: id(1, 16), spanId: id(1, 8), name: 'x' }]));
    expect(() => countSpans(good.subarray(0, good.length - 3))).toThrow();
    expect(() => countSpans(Buffer.from([0x0f]))).toThrow(/wire type/);
  });
});

describe('OTLP sink', () => {
  let sink: OtlpSink | undefined;
  let provider: BasicTracerProvider | undefined;
  afterEach(async () => {
    await provider?.shutdown();
    await sink?.close();
    provider = undefined;
    sink = undefined;
  });

  it('accepts the OpenTelemetry SDK gRPC exporter and counts every span it sends', async () => {
    sink = await startOtlpSink();
    provider = new BasicTracerProvider({
      resource: resourceFromAttributes({ 'service.name': 'bench' }),
      spanProcessors: [new SimpleSpanProcessor(new OTLPTraceExporter({ url: `http://127.0.0.1:${sink.port}` }))],
    });
    for (const scope of ['proxy', 'app']) {
      const tracer = provider.getTracer(scope);
      for (let i = 0; i < 3; i++) tracer.startSpan(`op ${i}`).end();
    }
    await provider.forceFlush();
    expect(sink.stats.spans).toBe(6);
    expect(sink.stats.traceExports).toBeGreaterThan(0);
    expect(sink.stats.malformed).toBe(0);
  });
});
