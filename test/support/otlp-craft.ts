import { ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from '../../collector/otlp/wire.js';

export interface CraftedSpan {
  traceId: Buffer;
  spanId: Buffer;
  name: string;
  /** Writes trace_id as a varint instead of bytes. */
  wrongWireType?: boolean;
}

/** An ExportTraceServiceRequest written field by field, so broken spans can sit beside good ones. */
export function craftRequest(service: string, spans: CraftedSpan[], startUnixNano: bigint = BigInt(Date.now() - 60_000) * 1_000_000n): Uint8Array {
  const w = new ProtoWriter();
  w.fork(); // resource_spans
  w.fork(); // resource
  w.fork().tag(1, WIRE_LEN).string('service.name').fork().tag(1, WIRE_LEN).string(service).join(2).join(1);
  w.join(1);
  w.fork(); // scope_spans
  for (const span of spans) {
    w.fork();
    if (span.wrongWireType === true) w.tag(1, WIRE_VARINT).varint(7);
    else w.tag(1, WIRE_LEN).bytes(span.traceId);
    w.tag(2, WIRE_LEN).bytes(span.spanId);
    w.tag(5, WIRE_LEN).string(span.name);
    w.tag(6, WIRE_VARINT).varint(2);
    w.tag(7, WIRE_FIXED64).fixed64(startUnixNano);
    w.tag(8, WIRE_FIXED64).fixed64(startUnixNano + 1_000_000n);
    w.join(2);
  }
  w.join(2);
  w.join(1);
  return w.finish();
}

