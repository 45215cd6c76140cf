/**
 * The gRPC-over-HTTP/2 details the proxy needs (grpc/doc/PROTOCOL-HTTP2.md):
 * recognising a gRPC request, naming the RPC from its path, reading the
 * `grpc-timeout` deadline, and the percent-encoding of `grpc-message`.
 * Pure functions, no I/O.
 */
import type { IncomingHttpHeaders } from 'node:http2';

/** `application/grpc`, `application/grpc+proto`, `application/grpc+json`, `application/grpc-web`… */
export function isGrpcContentType(contentType: string | undefined): boolean {
  return contentType !== undefined && contentType.startsWith('application/grpc');
}

/**
 * Splits `/package.Service/Method` into service and method. Anything else
 * (no leading slash, no second slash, empty parts) gives undefined: the span
 * then falls back to the HTTP name rather than inventing an RPC.
 */
export function splitRpcPath(path: string): { service: string; method: string } | undefined {
  if (path.charCodeAt(0) !== 47 /* / */) return undefined;
  const slash = path.indexOf('/', 1);
  if (slash <= 1 || slash === path.length - 1) return undefined;
  const end = path.indexOf('?', slash);
  const method = end === -1 ? path.slice(slash + 1) : path.slice(slash + 1, end);
  if (method === '' || method.includes('/')) return undefined;
  return { service: path.slice(1, slash), method };
}

// Milliseconds per grpc-timeout unit: Hours, Minutes, Seconds, milliseconds, microseconds, nanoseconds.
const TIMEOUT_UNIT_MS: Readonly<Record<string, number>> = { H: 3_600_000, M: 60_000, S: 1_000, m: 1, u: 0.001, n: 0.000001 };

/**
 * `grpc-timeout: 1-8 ASCII digits + unit` → milliseconds (rounded up, so a
 * sub-millisecond deadline is still a deadline), undefined when absent or malformed.
 */
export function parseGrpcTimeout(value: string | undefined): number | undefined {
  if (value === undefined) return undefined;
  const digits = value.length - 1;
  if (digits < 1 || digits > 8) return undefined;
  const unitMs = TIMEOUT_UNIT_MS[value.charAt(digits)];
  if (unitMs === undefined) return undefined;
  let amount = 0;
  for (let i = 0; i < digits; i++) {
    const c = value.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    amount = amount * 10 + (c - 48);
  }
  return Math.ceil(amount * unitMs);
}

/**
 * `grpc-message` is percent-encoded UTF-8: every byte outside printable ASCII
 * (0x20–0x7E), and `%` itself, becomes %XX.
 */
export function encodeGrpcMessage(message: string): string {
  let plain = true;
  for (let i = 0; i < message.length; i++) {
    const c = message.charCodeAt(i);
    if (c < 0x20 || c > 0x7e || c === 0x25) {
      plain = false;
      break;
    }
  }
  if (plain) return message;
  const bytes = Buffer.from(message, 'utf8');
  let out = '';
  for (const b of bytes) {
    out += b < 0x20 || b > 0x7e || b === 0x25 ? `%${b < 16 ? '0' : ''}${b.toString(16).toUpperCase()}` : String.fromCharCode(b);
  }
  return out;
}

/** The grpc-status header value as a number; -1 when absent or not a number. */
export function parseGrpcStatus(value: string | string[] | undefined): number {
  if (typeof value !== 'string' || value === '') return -1;
  const n = Number(value);
  return Number.isInteger(n) && n >= 0 ? n : -1;
}

/** Records the grpc-status of response headers (trailers-only) or trailers, when there is one, on what observes the call. */
export function observeGrpcStatus(obs: { grpcStatus: number }, fields: IncomingHttpHeaders): void {
  const grpcStatus = parseGrpcStatus(fields['grpc-status']);
  if (grpcStatus >= 0) obs.grpcStatus = grpcStatus;
}

// Envoy's Grpc::Utility::grpcToHttpStatus, indexed by gRPC status.
const HTTP_OF_GRPC: readonly number[] = [200, 499, 500, 400, 504, 404, 409, 403, 429, 400, 409, 400, 501, 500, 503, 500, 401];

/**
 * The HTTP status that stands for a gRPC status: what a plain HTTP caller is
 * answered for a gRPC fault, and what outlier detection and retries read for
 * a gRPC response (Envoy does the same: UNAVAILABLE counts as a 503).
 */
export function httpStatusOfGrpc(status: number): number {
  return HTTP_OF_GRPC[status] ?? 500;
}

/** The gRPC status a gRPC caller sees for an HTTP status (grpc's http-grpc-status-mapping.md). */
export function grpcStatusOfHttp(status: number): number {
  switch (status) {
    case 200:
      return 0;
    case 400:
      return 13; // INTERNAL
    case 401:
      return 16; // UNAUTHENTICATED
    case 403:
      return 7; // PERMISSION_DENIED
    case 404:
      return 12; // UNIMPLEMENTED
    case 429:
    case 502:
    case 503:
    case 504:
      return 14; // UNAVAILABLE
    default:
      return 2; // UNKNOWN
  }
}
