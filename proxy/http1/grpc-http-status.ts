/**
 * The HTTP status that stands for a gRPC status, for an HTTP/1 caller that
 * was given a gRPC one (a fault abort configured as `grpcStatus`).
 *
 * grpc/doc/http-grpc-status-mapping.md maps the other way (HTTP → gRPC) and
 * is not one-to-one (UNAVAILABLE comes from 429, 502, 503 and 504), so its
 * inverse is taken from Envoy's Grpc::Utility::grpcToHttpStatus (the same
 * table as grpc-gateway's HTTPStatusFromCode). It agrees with grpc's doc
 * wherever that doc maps one HTTP status to a code (401 ↔ UNAUTHENTICATED,
 * 403 ↔ PERMISSION_DENIED, and UNAVAILABLE → 503, the doc's own 503).
 */

/** Indexed by gRPC status code 0…16 (grpc/doc/statuscodes.md). */
const HTTP_STATUS_OF_GRPC: readonly number[] = [
  200, // 0 OK
  499, // 1 CANCELLED (client closed request)
  500, // 2 UNKNOWN
  400, // 3 INVALID_ARGUMENT
  504, // 4 DEADLINE_EXCEEDED
  404, // 5 NOT_FOUND
  409, // 6 ALREADY_EXISTS
  403, // 7 PERMISSION_DENIED
  429, // 8 RESOURCE_EXHAUSTED
  400, // 9 FAILED_PRECONDITION
  409, // 10 ABORTED
  400, // 11 OUT_OF_RANGE
  501, // 12 UNIMPLEMENTED
  500, // 13 INTERNAL
  503, // 14 UNAVAILABLE
  500, // 15 DATA_LOSS
  401, // 16 UNAUTHENTICATED
];

/** The HTTP status for gRPC status `code`; 500 for a code outside 0…16. */
export function httpStatusOfGrpc(code: number): number {
  return Number.isInteger(code) && code >= 0 && code < HTTP_STATUS_OF_GRPC.length ? (HTTP_STATUS_OF_GRPC[code] as number) : 500;
}
