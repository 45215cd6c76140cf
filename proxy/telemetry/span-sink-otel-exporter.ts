/**
 * The export half of the SDK span sink (span-sink-otel.ts): the OTLP/gRPC
 * trace exporter (@opentelemetry/exporter-trace-otlp-grpc) sends the
 * batches. This module is the only one that loads the SDK for spans, and it
 * is imported only when the first batch of an 'otel' sink leaves.
 *
 * Why no Tracer: the hot path has already chosen the span's ids (they went
 * out in traceparent), its times and its status. A Tracer would allocate a
 * full SDK Span per request, generate ids we would throw away, and hand the
 * span to a BatchSpanProcessor that drops without counting. Instead the
 * queue holds our plain records, and only at export time each becomes a
 * ReadableSpan-shaped view, which is all the exporter's serializer reads.
 */
import { SpanKind, SpanStatusCode } from '@opentelemetry/api';
import type { Attributes, HrTime, Link, SpanContext, SpanStatus, TraceState } from '@opentelemetry/api';
import type { InstrumentationScope } from '@opentelemetry/core';
import { OTLPTraceExporter } from '@opentelemetry/exporter-trace-otlp-grpc';
import { resourceFromAttributes } from '@opentelemetry/resources';
import type { Resource } from '@opentelemetry/resources';
import type { ReadableSpan, TimedEvent } from '@opentelemetry/sdk-trace-base';
import type { ProxySpanRecord } from './span-record.js';
import type { SpanBatchExporter } from './span-sink-batcher.js';
import { PROXY_SCOPE_NAME, hrTimeFromMs } from './span-sink-resource.js';
import type { ResourceAttributeValue } from './span-sink-resource.js';

const NO_LINKS: Link[] = [];
const NO_EVENTS: TimedEvent[] = [];
const TRACE_FLAG_SAMPLED = 1;

/** tracestate exactly as received: the API's parser would re-order or drop entries it dislikes. */
class ReceivedTraceState implements TraceState {
  constructor(private readonly raw: string) {}
  serialize(): string {
    return this.raw;
  }
  get(key: string): string | undefined {
    for (const member of this.raw.split(',')) {
      const eq = member.indexOf('=');
      if (eq > 0 && member.slice(0, eq).trim() === key) return member.slice(eq + 1).trim();
    }
    return undefined;
  }
  set(key: string, value: string): TraceState {
    const rest = this.raw.split(',').filter((m) => m.trim() !== '' && m.slice(0, m.indexOf('=')).trim() !== key);
    return new ReceivedTraceState([`${key}=${value}`, ...rest].join(','));
  }
  unset(key: string): TraceState {
    return new ReceivedTraceState(this.raw.split(',').filter((m) => m.slice(0, m.indexOf('=')).trim() !== key).join(','));
  }
}

/** A ProxySpanRecord seen as the SDK's ReadableSpan. Built at export time, one per exported span. */
class RecordedSpan implements ReadableSpan {
  readonly name: string;
  readonly kind: SpanKind;
  readonly parentSpanContext: SpanContext | undefined;
  readonly startTime: HrTime;
  readonly endTime: HrTime;
  readonly duration: HrTime;
  readonly status: SpanStatus;
  readonly attributes: Attributes;
  readonly links: Link[] = NO_LINKS;
  readonly events: TimedEvent[] = NO_EVENTS;
  readonly ended = true;
  readonly droppedAttributesCount = 0;
  readonly droppedEventsCount = 0;
  readonly droppedLinksCount = 0;
  private readonly context: SpanContext;

  constructor(
    record: ProxySpanRecord,
    readonly resource: Resource,
    readonly instrumentationScope: InstrumentationScope,
  ) {
    const traceFlags = record.sampled ? TRACE_FLAG_SAMPLED : 0;
    this.context = {
      traceId: record.traceId,
      spanId: record.spanId,
      traceFlags,
      ...(record.traceState !== '' && { traceState: new ReceivedTraceState(record.traceState) }),
    };
    // Every parent the proxy knows came over the wire (traceparent/b3): it is remote.
    this.parentSpanContext =
      record.parentSpanId === '' ? undefined : { traceId: record.traceId, spanId: record.parentSpanId, traceFlags, isRemote: true };
    this.name = record.name;
    this.kind = record.kind === 'server' ? SpanKind.SERVER : SpanKind.CLIENT;
    this.startTime = hrTimeFromMs(record.startTimeMs);
    this.endTime = hrTimeFromMs(record.endTimeMs);
    this.duration = hrTimeFromMs(record.endTimeMs - record.startTimeMs);
    this.status =
      record.status === 'error'
        ? { code: SpanStatusCode.ERROR, message: record.statusMessage }
        : { code: record.status === 'ok' ? SpanStatusCode.OK : SpanStatusCode.UNSET };
    this.attributes = record.attributes;
  }

  spanContext(): SpanContext {
    return this.context;
  }
}

/** The exporter's callback API as a promise; the error keeps its gRPC `code` for timeout counting. */
class OtelBatchExporter implements SpanBatchExporter<ProxySpanRecord[]> {
  private readonly exporter: OTLPTraceExporter;

  constructor(
    collectorUrl: string,
    timeoutMs: number,
    private readonly resource: Resource,
    private readonly scope: InstrumentationScope,
  ) {
    // One export is in flight at a time (the batcher's loop); the SDK's own
    // concurrency limit is a second fence should an abandoned one still run.
    this.exporter = new OTLPTraceExporter({ url: collectorUrl, timeoutMillis: timeoutMs, concurrencyLimit: 4 });
  }

  export(spans: ProxySpanRecord[]): Promise<void> {
    const readable = new Array<ReadableSpan>(spans.length);
    for (let i = 0; i < spans.length; i++) readable[i] = new RecordedSpan(spans[i] as ProxySpanRecord, this.resource, this.scope);
    return new Promise((resolve, reject) => {
      this.exporter.export(readable, (result) => {
        if (result.code === 0) resolve();
        else reject(result.error ?? new Error('OTLP trace export failed'));
      });
    });
  }

  shutdown(): Promise<void> {
    return this.exporter.shutdown();
  }
}

/** The SDK's OTLP/gRPC trace exporter behind the SpanBatchExporter interface. */
export function createOtelBatchExporter(
  collectorUrl: string,
  timeoutMs: number,
  resourceAttributes: Record<string, ResourceAttributeValue>,
): SpanBatchExporter<ProxySpanRecord[]> {
  const scope: InstrumentationScope = { name: PROXY_SCOPE_NAME };
  return new OtelBatchExporter(collectorUrl, timeoutMs, resourceFromAttributes(resourceAttributes), scope);
}
