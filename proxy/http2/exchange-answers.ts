/**
 * How an exchange ends without the upstream's answer: a flag (errors-to-wire.ts)
 * told to the downstream as far as it can still be told (the proxy's own
 * answer before any head went out; gRPC trailers or a stream reset after),
 * and the proxy's local answers: a redirect rule's, and an inbound rate
 * limit's refusal.
 */
import { constants, type OutgoingHttpHeaders } from 'node:http2';
import type { WireError } from '../errors-to-wire.js';
import type { RateLimiter } from '../pipeline/types.js';
import { RATE_LIMITED_HEADER, ROUTE_HEADER } from '../telemetry/attributes.js';
import { grpcErrorHeaders, httpErrorAnswer } from './error-answer.js';
import { clearDeadline, clearTrafficTimers } from './exchange-deadlines.js';
import type { Exchange } from './exchange.js';
import { rateLimitedError } from './local-answers.js';
import { headerValue } from './request-headers.js';

const { NGHTTP2_CANCEL, NGHTTP2_INTERNAL_ERROR, NGHTTP2_NO_ERROR } = constants;

/** Ends the exchange with `err`: cancels the upstream stream and tells the downstream. Once; later failures add nothing. */
export function failExchange(ex: Exchange, err: WireError): void {
  if (ex.failed || ex.finished) return;
  ex.failed = true;
  const obs = ex.obs;
  obs.addFlag(err.flag, err.message);
  clearDeadline(ex);
  if (ex.plan !== undefined) clearTrafficTimers(ex);
  const up = ex.upstream;
  if (up !== undefined) {
    up.unpipe(ex.downstream);
    if (!up.closed && !up.destroyed) up.close(NGHTTP2_CANCEL);
  }
  const down = ex.downstream;
  if (down.destroyed || down.closed) return;
  if (up !== undefined) down.unpipe(up);
  try {
    if (!down.headersSent) answer(ex, err);
    else if (ex.responseDone) {
      // Everything was sent; only the request side is still open: stop it without error (RFC 9113 §8.1).
      down.close(NGHTTP2_NO_ERROR);
    } else if (ex.isGrpc && !ex.upstreamEnded && !down.writableEnded) {
      // Headers went out: the status travels in trailers, which gRPC clients read as this status.
      ex.responseTrailers = grpcErrorHeaders(err, false);
      obs.grpcStatus = err.grpcStatus;
      down.end();
    } else {
      down.close(NGHTTP2_INTERNAL_ERROR);
    }
  } catch {
    // The stream went away between the checks and the write: nothing left to tell.
    if (!down.destroyed) down.destroy();
  }
}

/** The proxy's own answer, before any response head went out. */
function answer(ex: Exchange, err: WireError): void {
  const down = ex.downstream;
  const obs = ex.obs;
  if (ex.isGrpc) {
    obs.statusCode = 200;
    obs.grpcStatus = err.grpcStatus;
    down.respond(grpcErrorHeaders(err, true, ex.answerHeaders), { endStream: true });
  } else {
    const { headers, body } = httpErrorAnswer(err, ex.answerHeaders);
    obs.statusCode = err.httpStatus;
    if (obs.method === 'HEAD') down.respond(headers, { endStream: true });
    else {
      down.respond(headers);
      obs.responseBytes += body.length;
      down.end(body);
    }
  }
  ex.responseDone = true;
  // The caller may still be sending a body nobody will read: reset its side
  // once the answer is flushed (close() waits for the writable side to finish).
  if (!ex.endAfterHeaders && !down.readableEnded) down.close(NGHTTP2_NO_ERROR);
}

/** A redirect rule's answer: the status and Location, nothing forwarded. */
export function answerRedirect(ex: Exchange, status: number, location: string): void {
  const down = ex.downstream;
  ex.failed = true; // settled locally: nothing else may answer
  ex.obs.statusCode = status;
  try {
    down.respond({ ':status': status, location }, { endStream: true });
  } catch {
    if (!down.destroyed) down.destroy();
    return;
  }
  ex.responseDone = true;
  if (!ex.endAfterHeaders && !down.readableEnded) down.close(NGHTTP2_NO_ERROR);
}

/** Inbound: the local rate limits, before the app. True when refused (answered 429 / RESOURCE_EXHAUSTED, flag RL). */
export function refusedByRateLimit(ex: Exchange, limiter: RateLimiter): boolean {
  const self = ex.ctx.telemetry.identity;
  const obs = ex.obs;
  const verdict = limiter.admit(self.service, self.namespace, headerValue(ex.headers, ROUTE_HEADER) ?? '', obs.sourceService, obs.sourceNamespace);
  if (verdict === undefined) return false;
  obs.rateLimitName = verdict.limitName;
  const headers: OutgoingHttpHeaders = { [RATE_LIMITED_HEADER]: verdict.limitName };
  ex.answerHeaders = headers;
  failExchange(ex, rateLimitedError(verdict));
  return true;
}
