/**
 * What a downstream HTTP/2 caller receives when the proxy, not the upstream,
 * ends its request: the wire answer comes from errors-to-wire.ts, shaped
 * here for HTTP/2. gRPC callers get a trailers-only response (:status 200,
 * grpc-status, percent-encoded grpc-message) or, once response headers have
 * gone out, the same fields as trailers; plain HTTP/2 callers get the flag's
 * HTTP status and a one-line body. Every answer names the flag in
 * RESPONSE_FLAGS_HEADER; `extra` adds a decision's own headers (the
 * RateLimit that refused, x-tracemesh-rate-limited).
 */
import type { OutgoingHttpHeaders } from 'node:http2';
import { RESPONSE_FLAGS_HEADER, wireErrorBody, type WireError } from '../errors-to-wire.js';
import { encodeGrpcMessage } from './grpc.js';

/** A trailers-only gRPC response; also the trailers ending a response already under way. */
export function grpcErrorHeaders(err: WireError, withStatus: boolean, extra?: OutgoingHttpHeaders): OutgoingHttpHeaders {
  const headers: OutgoingHttpHeaders = {
    ...extra,
    'grpc-status': String(err.grpcStatus),
    'grpc-message': encodeGrpcMessage(err.message),
    [RESPONSE_FLAGS_HEADER]: err.flag,
  };
  if (withStatus) {
    headers[':status'] = 200;
    headers['content-type'] = 'application/grpc';
  }
  return headers;
}

/** Head and body of a plain HTTP/2 error answer. */
export function httpErrorAnswer(err: WireError, extra?: OutgoingHttpHeaders): { headers: OutgoingHttpHeaders; body: Buffer } {
  const body = Buffer.from(wireErrorBody(err), 'utf8');
  return {
    headers: {
      ...extra,
      ':status': err.httpStatus,
      'content-type': 'text/plain; charset=utf-8',
      'content-length': body.length,
      [RESPONSE_FLAGS_HEADER]: err.flag,
    },
    body,
  };
}
