/**
 * The lean SpanSink, for the benchmark comparison with the SDK sink: the same
 * bounded queue (span-sink-batcher.ts), but each batch is encoded straight
 * from our records to OTLP protobuf (span-sink-lean-encoder.ts) and sent with
 * @grpc/grpc-js as raw bytes (identity serializers) to the collector's
 * TraceService/Export. No ReadableSpan objects, no SDK serializer, no
 * retrying transport: a failed batch is counted and the next one goes.
 */
import { Client, Metadata, credentials } from '@grpc/grpc-js';
import type { ServiceError } from '@grpc/grpc-js';
import type { ProxySpanRecord, SpanSink } from './span-record.js';
import { BatchingSpanSink } from './span-sink-batcher.js';
import type { SpanBatchExporter, SpanSinkStats } from './span-sink-batcher.js';
import { LeanProtoWriter, encodeResource, encodeScope, encodeTraceRequest } from './span-sink-lean-encoder.js';
import { queueOptionsOf } from './span-sink-options.js';
import type { SpanSinkOptions } from './span-sink-options.js';
import { PROXY_SCOPE_NAME, parseCollectorUrl, proxyResourceAttributes } from './span-sink-resource.js';

export const TRACE_EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

function passBuffer(value: Buffer): Buffer {
  return value;
}

class LeanGrpcExporter implements SpanBatchExporter {
  private readonly client: Client;
  private readonly writer = new LeanProtoWriter();
  private readonly resource: Buffer;
  private readonly scope: Buffer;

  constructor(address: string, secure: boolean, resource: Buffer, scope: Buffer) {
    this.client = new Client(address, secure ? credentials.createSsl() : credentials.createInsecure(), {
      'grpc.primary_user_agent': 'tracemesh-proxy',
    });
    this.resource = resource;
    this.scope = scope;
  }

  export(spans: ProxySpanRecord[], timeoutMs: number): Promise<void> {
    const body = encodeTraceRequest(this.writer, this.resource, this.scope, spans);
    return new Promise((resolve, reject) => {
      this.client.makeUnaryRequest(
        TRACE_EXPORT_PATH,
        passBuffer,
        passBuffer,
        body,
        new Metadata(),
        { deadline: Date.now() + timeoutMs },
        (err: ServiceError | null) => {
          // The response is ExportTraceServiceResponse; a partial success is still a success (OTLP: do not retry).
          if (err === null) resolve();
          else reject(err);
        },
      );
    });
  }

  async shutdown(): Promise<void> {
    this.client.close();
  }
}

/** The lean SpanSink: our protobuf encoder over grpc-js, behind the same bounded, counting queue. */
export function createLeanSpanSink(options: SpanSinkOptions): SpanSink & { readonly stats: SpanSinkStats } {
  const queue = queueOptionsOf(options);
  const collector = parseCollectorUrl(options.collectorUrl);
  const resource = encodeResource(proxyResourceAttributes(options.identity, options.resourceAttributes));
  const exporter = new LeanGrpcExporter(collector.address, collector.secure, resource, encodeScope(PROXY_SCOPE_NAME));
  return new BatchingSpanSink(exporter, queue);
}
