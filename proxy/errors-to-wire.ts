/**
 * The one place where a proxy-side failure becomes what goes on the wire:
 * the HTTP status, the response flag (Envoy's vocabulary, so Envoy and Istio
 * users read it at a glance), the gRPC status a gRPC caller sees in trailers,
 * and whether the downstream connection must close. HTTP/1, HTTP/2 and the
 * access log all read it from here; nothing else invents statuses.
 */

/** Response flags, as in Envoy's access log `%RESPONSE_FLAGS%`. */
export type ResponseFlag =
  | 'UF' // upstream connection failure (refused, unreachable, connect timeout)
  | 'UC' // upstream connection termination (reset or closed mid-request)
  | 'UT' // upstream request timeout
  | 'NR' // no route: the request names no known service
  | 'UH' // no healthy upstream: the service has no endpoint to send to
  | 'UPE' // upstream protocol error (unparseable response)
  | 'DPE' // downstream protocol error (malformed request)
  | 'DC' // downstream connection termination
  | 'SI' // stream idle timeout
  | 'RT' // request header timeout (slowloris)
  | 'UO' // upstream overflow (connection pool limits) — issue 5
  | 'RL' // rate limited — issue 5
  | 'FI' // fault injected — issue 5
  | 'URX'; // upstream retry limit exceeded: the answer is the last attempt's, retries were exhausted or refused by the budget

/** The header that carries the flags to the caller, like Envoy's x-envoy-* headers. */
export const RESPONSE_FLAGS_HEADER = 'x-tracemesh-response-flags';

/** gRPC status codes used here (grpc/doc/statuscodes.md). */
export const GrpcStatus = {
  OK: 0,
  CANCELLED: 1,
  UNKNOWN: 2,
  INVALID_ARGUMENT: 3,
  DEADLINE_EXCEEDED: 4,
  NOT_FOUND: 5,
  RESOURCE_EXHAUSTED: 8,
  INTERNAL: 13,
  UNAVAILABLE: 14,
  UNIMPLEMENTED: 12,
} as const;

export interface WireError {
  readonly flag: ResponseFlag;
  readonly httpStatus: number;
  readonly grpcStatus: number;
  /** Short body text / grpc-message; also the span's status message. */
  readonly message: string;
  /** True when the downstream connection cannot be reused after this answer. */
  readonly closeDownstream: boolean;
}

interface FlagWire {
  readonly httpStatus: number;
  readonly grpcStatus: number;
  readonly text: string;
  readonly closeDownstream: boolean;
}

// Statuses follow Envoy: UF/UH/UO → 503, UC/UPE → 502, UT → 504, NR → 404.
// gRPC statuses follow the HTTP→gRPC mapping in grpc's http-grpc-status-mapping.md.
const FLAG_WIRE: Readonly<Record<ResponseFlag, FlagWire>> = {
  UF: { httpStatus: 503, grpcStatus: GrpcStatus.UNAVAILABLE, text: 'upstream connect error', closeDownstream: false },
  UC: { httpStatus: 502, grpcStatus: GrpcStatus.UNAVAILABLE, text: 'upstream connection terminated', closeDownstream: false },
  UT: { httpStatus: 504, grpcStatus: GrpcStatus.DEADLINE_EXCEEDED, text: 'upstream request timeout', closeDownstream: false },
  NR: { httpStatus: 404, grpcStatus: GrpcStatus.UNIMPLEMENTED, text: 'no route to service', closeDownstream: false },
  UH: { httpStatus: 503, grpcStatus: GrpcStatus.UNAVAILABLE, text: 'no healthy upstream', closeDownstream: false },
  UPE: { httpStatus: 502, grpcStatus: GrpcStatus.INTERNAL, text: 'upstream protocol error', closeDownstream: false },
  DPE: { httpStatus: 400, grpcStatus: GrpcStatus.INTERNAL, text: 'bad request', closeDownstream: true },
  DC: { httpStatus: 499, grpcStatus: GrpcStatus.CANCELLED, text: 'downstream closed', closeDownstream: true },
  SI: { httpStatus: 408, grpcStatus: GrpcStatus.DEADLINE_EXCEEDED, text: 'stream idle timeout', closeDownstream: true },
  RT: { httpStatus: 408, grpcStatus: GrpcStatus.DEADLINE_EXCEEDED, text: 'request header timeout', closeDownstream: true },
  UO: { httpStatus: 503, grpcStatus: GrpcStatus.UNAVAILABLE, text: 'upstream overflow', closeDownstream: false },
  RL: { httpStatus: 429, grpcStatus: GrpcStatus.RESOURCE_EXHAUSTED, text: 'rate limited', closeDownstream: false },
  FI: { httpStatus: 503, grpcStatus: GrpcStatus.UNAVAILABLE, text: 'fault injected', closeDownstream: false },
  // Never answered by itself: it joins the last attempt's own answer (a 503, a UF…); these are its defaults.
  URX: { httpStatus: 503, grpcStatus: GrpcStatus.UNAVAILABLE, text: 'upstream retry limit exceeded', closeDownstream: false },
};

/**
 * The wire answer for a flag. `detail` (e.g. "connect ECONNREFUSED 127.0.0.1:9080")
 * goes into the message so the caller and the span say what happened.
 */
export function wireError(flag: ResponseFlag, detail?: string): WireError {
  const wire = FLAG_WIRE[flag];
  return {
    flag,
    httpStatus: wire.httpStatus,
    grpcStatus: wire.grpcStatus,
    message: detail === undefined || detail === '' ? wire.text : `${wire.text}: ${detail}`,
    closeDownstream: wire.closeDownstream,
  };
}

/** Overrides the HTTP status of a flag (e.g. 431 for too-large headers, 414 for a long URL). */
export function wireErrorWithStatus(flag: ResponseFlag, httpStatus: number, detail?: string): WireError {
  return { ...wireError(flag, detail), httpStatus };
}

/**
 * Classifies a socket error raised while talking to an upstream:
 * refused/unreachable before the connection was up → UF; anything after → UC.
 */
export function upstreamSocketFlag(err: NodeJS.ErrnoException, connected: boolean): ResponseFlag {
  if (!connected) return 'UF';
  if (err.code === 'ETIMEDOUT') return 'UT';
  return 'UC';
}

/** The body of an HTTP error answer: one line naming the flag, for humans and scripts. */
export function wireErrorBody(err: WireError): string {
  return `${err.message} (${err.flag})\n`;
}
