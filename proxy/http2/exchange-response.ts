/**
 * The upstream side of an exchange: the upstream stream's events, and the
 * relay of its response to the downstream (head, then body and trailers
 * through a pipe, so HTTP/2 flow control on one side throttles the other).
 * With traffic management a retriable answer or a lost stream goes to
 * retry() before anything of it went downstream.
 *
 * Module-level listeners find their exchange on the stream (exchange-tag.ts).
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders } from 'node:http2';
import { errorMessage } from '../../src/lib/errors.js';
import type { ResponseFlag } from '../errors-to-wire.js';
import { applyHeaderEditToObject, isEmptyHeaderEdit } from '../pipeline/header-edits.js';
import type { AttemptOutcome } from '../pipeline/types.js';
import { flagRefusedRetry, outcomeOfStatus, retry } from './exchange-attempts.js';
import { clearDeadline, clearTryTimer, Deadline } from './exchange-deadlines.js';
import { exchangeOf } from './exchange-tag.js';
import type { Exchange } from './exchange.js';
import { observeGrpcStatus, parseGrpcStatus } from './grpc.js';
import { relayedHeaders } from './request-headers.js';

const { NGHTTP2_FLAG_END_STREAM, NGHTTP2_NO_ERROR } = constants;

/** Listens to a new upstream stream (already tagged with its exchange). */
export function listenToUpstream(up: ClientHttp2Stream): void {
  up.on('error', onUpstreamError);
  up.once('response', onUpstreamResponse);
  up.on('headers', onUpstreamInformational);
  up.on('data', onUpstreamData);
  up.once('trailers', onUpstreamTrailers);
  up.once('end', onUpstreamEnd);
  up.on('wantTrailers', onUpstreamWantTrailers);
  up.once('close', onUpstreamClose);
}

/** Relays the upstream's response head; the body and trailers follow through the pipe. */
function respond(ex: Exchange, headers: IncomingHttpHeaders, endOfStream: boolean): void {
  if (ex.timerKind === Deadline.ResponseHead) clearDeadline(ex);
  const down = ex.downstream;
  const up = ex.upstream;
  if (ex.failed || up === undefined || down.destroyed || down.closed) return;
  const obs = ex.obs;
  const status = Number(headers[':status']);
  obs.statusCode = status;
  const grpcStatus = parseGrpcStatus(headers['grpc-status']);
  if (grpcStatus >= 0) obs.grpcStatus = grpcStatus; // trailers-only response
  const relayed = relayedHeaders(headers);
  const plan = ex.plan;
  if (plan !== undefined) {
    clearTryTimer(ex);
    // A gRPC server reports failure as a trailers-only answer with :status
    // 200, which Envoy's "5xx" and "gateway-error" never retry (it has a
    // separate "unavailable"). UNAVAILABLE (14) is gRPC's word for what a
    // 503 says, so for retries it counts as a gateway error (outcome
    // 'gateway'; retry.ts reads the outcome besides the status) whenever
    // retryOn has gateway-error or 5xx. Other gRPC statuses are answers.
    const outcome: AttemptOutcome = grpcStatus === 14 && endOfStream ? 'gateway' : grpcStatus >= 0 ? 'success' : outcomeOfStatus(status);
    if (outcome !== 'success' && retry(ex, outcome, status, undefined, '')) return;
    flagRefusedRetry(ex);
    if (!isEmptyHeaderEdit(plan.responseHeaders)) applyHeaderEditToObject(plan.responseHeaders, relayed);
  }
  const bodyless = endOfStream || obs.method === 'HEAD' || status === 204 || status === 205 || status === 304;
  try {
    down.respond(relayed, { endStream: bodyless, waitForTrailers: !bodyless });
  } catch (err) {
    obs.statusCode = 0;
    ex.fail('UPE', errorMessage(err));
    return;
  }
  if (bodyless) {
    ex.responseComplete();
    up.resume(); // nothing should follow; drain whatever does so the stream can close
  } else {
    up.pipe(down);
  }
}

/** The upstream stream closed before its response ended: retry when allowed, else fail with UF/UC. */
function upstreamLost(ex: Exchange, flag: ResponseFlag, detail: string): void {
  if (ex.plan !== undefined && !ex.downstream.headersSent) {
    if (retry(ex, flag === 'UF' ? 'connect-failure' : 'reset', 0, flag, detail)) return;
    flagRefusedRetry(ex);
  }
  ex.fail(flag, detail);
}

// Upstream stream events (`this` is the client stream).

function onUpstreamError(this: ClientHttp2Stream, err: Error): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  // A stream cancelled with its session carries the session's error as the cause.
  const cause = (err as { cause?: unknown }).cause;
  ex.upstreamError = cause instanceof Error ? cause.message : err.message;
}

function onUpstreamResponse(this: ClientHttp2Stream, headers: IncomingHttpHeaders, flags: number): void {
  const ex = exchangeOf(this);
  // endAfterHeaders is set only after 'response' is emitted: the frame's flags say it now.
  if (ex !== undefined) respond(ex, headers, (flags & NGHTTP2_FLAG_END_STREAM) !== 0);
}

function onUpstreamInformational(this: ClientHttp2Stream, headers: IncomingHttpHeaders): void {
  const ex = exchangeOf(this);
  if (ex === undefined || ex.failed || ex.downstream.headersSent || ex.downstream.closed) return;
  try {
    ex.downstream.additionalHeaders(relayedHeaders(headers));
  } catch {
    // A 1xx the downstream cannot take (e.g. 101) is dropped; the final response follows.
  }
}

function onUpstreamData(this: ClientHttp2Stream, chunk: Buffer): void {
  const ex = exchangeOf(this);
  if (ex !== undefined) ex.obs.responseBytes += chunk.length;
}

function onUpstreamTrailers(this: ClientHttp2Stream, trailers: IncomingHttpHeaders): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.responseTrailers = relayedHeaders(trailers);
  observeGrpcStatus(ex.obs, trailers);
}

function onUpstreamEnd(this: ClientHttp2Stream): void {
  const ex = exchangeOf(this);
  // A stream destroyed with its session (socket lost) also ends its readable
  // side, without an error when the session closed cleanly: only an end seen
  // while the stream is intact is the upstream's END_STREAM.
  if (ex !== undefined && !this.destroyed) ex.upstreamEnded = true;
}

function onUpstreamWantTrailers(this: ClientHttp2Stream): void {
  const ex = exchangeOf(this);
  try {
    this.sendTrailers(ex?.requestTrailers ?? {});
  } catch {
    // Closed meanwhile: 'close' reports it.
  }
}

function onUpstreamClose(this: ClientHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined || ex.finished) return;
  if (ex.upstreamEnded) {
    // The response is complete; a request body still arriving has nowhere to go.
    if (!ex.downstream.readableEnded) ex.downstream.resume();
    return;
  }
  if (ex.failed) return;
  const session = ex.upstreamSession;
  const connected = session !== undefined && session.connected;
  const code = this.rstCode;
  let detail = ex.upstreamError;
  if (detail === '' && session !== undefined) detail = session.failure;
  if (detail === '') detail = code === undefined || code === NGHTTP2_NO_ERROR ? 'stream closed' : `stream reset (code ${code})`;
  upstreamLost(ex, connected ? 'UC' : 'UF', detail);
}
