import * as grpc from '@grpc/grpc-js';
import { errorMessage } from '../../src/lib/errors.js';
import type { IngestPipeline } from '../pipeline/ingest.js';
import { exportResponseBody, handleExport, newReceiverStats } from './export.js';
import type { ReceiverStats, Signal } from './export.js';
import { MAX_BODY_BYTES } from './limits.js';
import { encodeRpcStatus } from './rpc-status.js';

const SERVICE_PATHS: ReadonlyArray<readonly [Signal, string]> = [
  ['traces', '/opentelemetry.proto.collector.trace.v1.TraceService/Export'],
  ['metrics', '/opentelemetry.proto.collector.metrics.v1.MetricsService/Export'],
];

const identity = (bytes: Buffer): Buffer => bytes;

/** Raw bytes in and out: decoding is ours (collector/otlp), not protobufjs's. */
export function exportDefinition(path: string): grpc.ServiceDefinition {
  return {
    Export: {
      path,
      requestStream: false,
      responseStream: false,
      requestSerialize: identity,
      requestDeserialize: identity,
      responseSerialize: identity,
      responseDeserialize: identity,
    },
  };
}

function grpcError(code: grpc.status, message: string, retryAfterSeconds?: number): Partial<grpc.StatusObject> {
  const metadata = new grpc.Metadata();
  if (retryAfterSeconds !== undefined) {
    metadata.set('grpc-status-details-bin', encodeRpcStatus(code, message, retryAfterSeconds));
  }
  return { code, details: message, metadata };
}

export interface OtlpGrpcReceiverOptions {
  host: string;
  port: number;
  log: (message: string) => void;
}

/** OTLP/gRPC on one port: TraceService and MetricsService Export. */
export class OtlpGrpcReceiver {
  readonly stats: ReceiverStats = newReceiverStats();
  readonly #server: grpc.Server;
  readonly #options: OtlpGrpcReceiverOptions;
  #port = 0;

  constructor(pipeline: IngestPipeline, options: OtlpGrpcReceiverOptions) {
    this.#options = options;
    this.#server = new grpc.Server({
      // Over it grpc-js answers RESOURCE_EXHAUSTED without RetryInfo: not retried, as OTLP wants for too-large requests.
      'grpc.max_receive_message_length': MAX_BODY_BYTES,
      'grpc.max_send_message_length': 1024 * 1024,
      // grpc-js holds a whole message before our handler runs: bound how many one connection may hold at once.
      'grpc.max_concurrent_streams': 32,
      'grpc.keepalive_time_ms': 60_000,
    });
    for (const [signal, path] of SERVICE_PATHS) {
      this.#server.addService(exportDefinition(path), {
        Export: (call: grpc.ServerUnaryCall<Buffer, Buffer>, callback: grpc.sendUnaryData<Buffer>) => {
          this.#export(pipeline, signal, call.request, callback);
        },
      });
    }
  }

  get port(): number {
    return this.#port;
  }

  #export(pipeline: IngestPipeline, signal: Signal, body: Buffer, callback: grpc.sendUnaryData<Buffer>): void {
    let outcome;
    try {
      outcome = handleExport(pipeline, this.stats, signal, 'protobuf', body);
    } catch (err) {
      this.#options.log(`OTLP/gRPC ${signal} export failed: ${errorMessage(err)}`);
      callback(grpcError(grpc.status.INTERNAL, `internal error: ${errorMessage(err)}`), null);
      return;
    }
    switch (outcome.status) {
      case 'ok':
        callback(null, exportResponseBody(signal, 'protobuf', outcome.rejected, outcome.message));
        return;
      case 'invalid':
        callback(grpcError(grpc.status.INVALID_ARGUMENT, outcome.message), null);
        return;
      case 'unavailable':
        callback(grpcError(grpc.status.UNAVAILABLE, outcome.message, outcome.retryAfterSeconds), null);
        return;
    }
  }

  async start(): Promise<void> {
    this.#port = await new Promise<number>((resolve, reject) => {
      this.#server.bindAsync(`${this.#options.host}:${this.#options.port}`, grpc.ServerCredentials.createInsecure(), (err, port) => {
        if (err !== null) reject(new Error(`OTLP/gRPC cannot listen on ${this.#options.host}:${this.#options.port}: ${err.message}`));
        else resolve(port);
      });
    });
  }

  /** Finishes calls in flight for up to `graceMs`, then cuts the rest. Safe twice and before start. */
  async shutdown(graceMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const force = setTimeout(() => {
        this.#server.forceShutdown();
        resolve();
      }, graceMs);
      force.unref();
      this.#server.tryShutdown(() => {
        clearTimeout(force);
        resolve();
      });
    });
  }
}
