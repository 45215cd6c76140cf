import { ProtoWriter, WIRE_LEN, WIRE_VARINT } from '../otlp/wire.js';

/** gRPC status codes used by the receivers. */
export const GRPC_INVALID_ARGUMENT = 3;
export const GRPC_RESOURCE_EXHAUSTED = 8;
export const GRPC_UNAVAILABLE = 14;
export const GRPC_INTERNAL = 13;

const RETRY_INFO_TYPE_URL = 'type.googleapis.com/google.rpc.RetryInfo';

/**
 * google.rpc.Status { code 1, message 2, details 3 (Any) }, optionally with a
 * google.rpc.RetryInfo { retry_delay 1 (Duration { seconds 1 }) } detail: the
 * OTLP error body over HTTP/protobuf and the `grpc-status-details-bin` trailer.
 */
export function encodeRpcStatus(code: number, message: string, retryAfterSeconds?: number): Buffer {
  const writer = new ProtoWriter(64 + message.length * 3);
  writer.tag(1, WIRE_VARINT).varint(code);
  writer.tag(2, WIRE_LEN).string(message);
  if (retryAfterSeconds !== undefined) {
    const duration = new ProtoWriter(16).tag(1, WIRE_VARINT).varint(retryAfterSeconds).finish();
    const retryInfo = new ProtoWriter(24).tag(1, WIRE_LEN).bytes(duration).finish();
    const any = new ProtoWriter(64).tag(1, WIRE_LEN).string(RETRY_INFO_TYPE_URL).tag(2, WIRE_LEN).bytes(retryInfo).finish();
    writer.tag(3, WIRE_LEN).bytes(any);
  }
  return Buffer.from(writer.finish());
}

/** The OTLP/JSON form of the same Status. */
export function rpcStatusJson(code: number, message: string): string {
  return JSON.stringify({ code, message });
}
