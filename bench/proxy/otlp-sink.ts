/**
 * Where the proxies send spans during the benchmark: an OTLP/gRPC server
 * that accepts Export calls (traces, metrics, logs) and discards them, so the
 * proxy pays the full cost of recording and exporting 100 % of its spans
 * while the load side (core 0) stays free of a collector's work. It counts
 * spans by walking the protobuf's length-delimited fields without decoding
 * them, so the report can show the spans the proxies really exported.
 *
 *   node dist/bench/proxy/otlp-sink.js     (as a child with an IPC channel)
 *
 * Prints `listening <port>` on stdout; answers the IPC message 'stats' with
 * SinkStats; exits on SIGTERM/SIGINT or when the parent goes away.
 */
import * as grpc from '@grpc/grpc-js';
import { realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { exportDefinition } from '../../collector/receivers/otlp-grpc.js';

export interface SinkStats {
  traceExports: number;
  spans: number;
  traceBytes: number;
  metricExports: number;
  logExports: number;
  /** Export bodies the span walker could not read (counted, still answered OK). */
  malformed: number;
}

const PATHS = {
  traces: '/opentelemetry.proto.collector.trace.v1.TraceService/Export',
  metrics: '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export',
  logs: '/opentelemetry.proto.collector.logs.v1.LogsService/Export',
} as const;

/** Large enough for any sane batch; a bigger one is an exporter bug the proxy should see. */
const MAX_MESSAGE_BYTES = 64 * 1024 * 1024;
/** An empty Export*ServiceResponse: every field default. */
const EMPTY_RESPONSE = Buffer.alloc(0);

const WIRE_VARINT = 0;
const WIRE_I64 = 1;
const WIRE_LEN = 2;
const WIRE_I32 = 5;

function readVarint(buf: Buffer, at: { pos: number }): number {
  let result = 0;
  let shift = 0;
  for (;;) {
    if (at.pos >= buf.length) throw new Error('truncated varint');
    const byte = buf[at.pos++]!;
    result += (byte & 0x7f) * 2 ** shift;
    if ((byte & 0x80) === 0) return result;
    shift += 7;
    if (shift > 63) throw new Error('varint too long');
  }
}

/**
 * Calls `onField(field, start, end)` for every length-delimited field of the
 * message in buf[start, end) and skips the rest.
 */
function eachLenField(buf: Buffer, start: number, end: number, onField: (field: number, from: number, to: number) => void): void {
  const at = { pos: start };
  while (at.pos < end) {
    const key = readVarint(buf, at);
    const field = Math.floor(key / 8);
    const wire = key & 7;
    if (wire === WIRE_LEN) {
      const length = readVarint(buf, at);
      const to = at.pos + length;
      if (to > end) throw new Error('field runs past its message');
      onField(field, at.pos, to);
      at.pos = to;
    } else if (wire === WIRE_VARINT) {
      readVarint(buf, at);
    } else if (wire === WIRE_I64) {
      at.pos += 8;
    } else if (wire === WIRE_I32) {
      at.pos += 4;
    } else {
      throw new Error(`unsupported wire type ${wire}`);
    }
  }
  if (at.pos !== end) throw new Error('message ends inside a field');
}

/**
 * Spans in an ExportTraceServiceRequest: resource_spans (1) → scope_spans (2)
 * → spans (2). Throws on bytes that are not such a message.
 */
export function countSpans(body: Buffer): number {
  let spans = 0;
  eachLenField(body, 0, body.length, (field, from, to) => {
    if (field !== 1) return;
    eachLenField(body, from, to, (field, from, to) => {
      if (field !== 2) return;
      eachLenField(body, from, to, (field) => {
        if (field === 2) spans++;
      });
    });
  });
  return spans;
}


export interface OtlpSink {
  port: number;
  stats: SinkStats;
  close(): Promise<void>;
}

export async function startOtlpSink(port = 0, host = '127.0.0.1'): Promise<OtlpSink> {
  const stats: SinkStats = { traceExports: 0, spans: 0, traceBytes: 0, metricExports: 0, logExports: 0, malformed: 0 };
  const server = new grpc.Server({ 'grpc.max_receive_message_length': MAX_MESSAGE_BYTES });
  server.addService(exportDefinition(PATHS.traces), {
    Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      stats.traceExports++;
      stats.traceBytes += call.request.length;
      try {
        stats.spans += countSpans(call.request);
      } catch {
        stats.malformed++;
      }
      callback(null, EMPTY_RESPONSE);
    },
  });
  server.addService(exportDefinition(PATHS.metrics), {
    Export: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      stats.metricExports++;
      callback(null, EMPTY_RESPONSE);
    },
  });
  server.addService(exportDefinition(PATHS.logs), {
    Export: (_call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
      stats.logExports++;
      callback(null, EMPTY_RESPONSE);
    },
  });
  const bound = await new Promise<number>((resolve, reject) => {
    server.bindAsync(`${host}:${port}`, grpc.ServerCredentials.createInsecure(), (err, actual) => {
      if (err !== null) reject(new Error(`OTLP sink cannot listen on ${host}:${port}: ${err.message}`));
      else resolve(actual);
    });
  });
  return {
    port: bound,
    stats,
    close: () =>
      new Promise<void>((resolve) => {
        server.forceShutdown();
        resolve();
      }),
  };
}

async function main(): Promise<void> {
  const sink = await startOtlpSink();
  const stop = (): void => {
    void sink.close().then(() => process.exit(0));
  };
  process.once('SIGTERM', stop);
  process.once('SIGINT', stop);
  process.on('message', (message: unknown) => {
    if (message === 'stats') process.send?.({ ...sink.stats });
  });
  // The runner went away without stopping us: do not linger.
  process.on('disconnect', stop);
  process.stdout.write(`listening ${sink.port}\n`);
}

const invokedAsScript = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsScript) {
  main().catch((err: unknown) => {
    process.stderr.write(`otlp-sink: ${err instanceof Error ? err.message : String(err)}\n`);
    process.exit(1);
  });
}
