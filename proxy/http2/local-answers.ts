/**
 * The WireErrors of the traffic-management decisions the HTTP/2 path answers
 * itself: an injected fault's abort and an inbound rate limit's refusal.
 * The flag's defaults come from errors-to-wire.ts; what the decision names
 * (a fault's status, a RateLimit's status) replaces them.
 */
import { GrpcStatus, wireError, type WireError } from '../errors-to-wire.js';
import type { FaultDecision, RateLimitVerdict } from '../pipeline/types.js';
import { grpcStatusOfHttp, httpStatusOfGrpc } from './grpc.js';

type FaultAbort = NonNullable<FaultDecision['abort']>;

/**
 * An abort (flag FI). A gRPC caller gets a trailers-only answer: the fault's
 * gRPC status, or the gRPC status of its HTTP status (grpc's mapping, 503 →
 * UNAVAILABLE); a plain caller gets the HTTP status, or the HTTP status of a
 * gRPC fault (Envoy's mapping, UNAVAILABLE → 503).
 */
export function faultAbortError(abort: FaultAbort): WireError {
  const base = wireError('FI', abort.grpc ? `gRPC status ${abort.status}` : `HTTP ${abort.status}`);
  return {
    flag: 'FI',
    httpStatus: abort.grpc ? httpStatusOfGrpc(abort.status) : abort.status,
    grpcStatus: abort.grpc ? abort.status : grpcStatusOfHttp(abort.status),
    message: base.message,
    closeDownstream: false,
  };
}

/**
 * A local rate limit's refusal (flag RL): the RateLimit's status (429 by
 * default) and, for gRPC callers, RESOURCE_EXHAUSTED, the status gRPC
 * defines for "some resource has been exhausted, perhaps a per-user quota".
 */
export function rateLimitedError(verdict: RateLimitVerdict): WireError {
  return {
    flag: 'RL',
    httpStatus: verdict.statusCode,
    grpcStatus: GrpcStatus.RESOURCE_EXHAUSTED,
    message: wireError('RL', verdict.limitName).message,
    closeDownstream: false,
  };
}
