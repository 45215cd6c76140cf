import { describe, expect, it } from 'vitest';
import { GrpcStatus } from '../errors-to-wire.js';
import { grpcStatusOfHttp, httpStatusOfGrpc } from './grpc.js';
import { faultAbortError, rateLimitedError } from './local-answers.js';
import { shadowAuthority } from './plan-headers.js';

describe('local answers of traffic decisions', () => {
  it('answers an HTTP fault with its status, and gRPC callers with the mapped gRPC status', () => {
    const err = faultAbortError({ status: 503, grpc: false });
    expect(err).toMatchObject({ flag: 'FI', httpStatus: 503, grpcStatus: GrpcStatus.UNAVAILABLE });
    expect(faultAbortError({ status: 404, grpc: false }).grpcStatus).toBe(GrpcStatus.UNIMPLEMENTED);
  });

  it('answers a gRPC fault with its status, and plain callers with the mapped HTTP status', () => {
    expect(faultAbortError({ status: GrpcStatus.RESOURCE_EXHAUSTED, grpc: true })).toMatchObject({ flag: 'FI', httpStatus: 429, grpcStatus: 8 });
    expect(faultAbortError({ status: GrpcStatus.UNAVAILABLE, grpc: true }).httpStatus).toBe(503);
  });

  it('refuses a rate-limited call with the limit\'s status and RESOURCE_EXHAUSTED', () => {
    expect(rateLimitedError({ limitName: 'api', statusCode: 429 })).toMatchObject({
      flag: 'RL',
      httpStatus: 429,
      grpcStatus: GrpcStatus.RESOURCE_EXHAUSTED,
      message: 'rate limited: api',
    });
  });

  it('maps statuses both ways as grpc and Envoy do, unknown ones to UNKNOWN / 500', () => {
    expect([200, 400, 401, 403, 404, 429, 502, 503, 504, 418].map(grpcStatusOfHttp)).toEqual([0, 13, 16, 7, 12, 14, 14, 14, 14, 2]);
    expect([0, 1, 4, 8, 12, 14, 16, 99].map(httpStatusOfGrpc)).toEqual([200, 499, 504, 429, 501, 503, 401, 500]);
  });

  it('names a mirror copy\'s authority with -shadow before the port', () => {
    expect(shadowAuthority('echo:50051')).toBe('echo-shadow:50051');
    expect(shadowAuthority('echo')).toBe('echo-shadow');
    expect(shadowAuthority('[::1]:8080')).toBe('[::1]-shadow:8080');
    expect(shadowAuthority('[::1]')).toBe('[::1]-shadow');
  });
});
