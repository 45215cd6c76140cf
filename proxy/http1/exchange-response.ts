/**
 * The response side of an Exchange: interim heads relayed, the final head
 * (retried, or edited and sent), the body forwarded raw with backpressure,
 * the keep-alive decision on both sides, and the raw pipe after a 101.
 * Functions of the exchange, no closures per request.
 */
import type { Socket } from 'node:net';
import { wireError } from '../errors-to-wire.js';
import { headerEditLines } from '../pipeline/header-edits.js';
import type { RoutePlan } from '../pipeline/types.js';
import type { HttpObservation } from '../telemetry/http-observation.js';
import { BODY_ERROR, BODY_MORE, BODY_NONE, BODY_UNTIL_CLOSE } from './body-framing.js';
import { D_TUNNEL } from './conn-state.js';
import { abortResponse, answer, finish } from './exchange-answers.js';
import { clearAttemptTimers, clearTimers, mayRetry, recordAttempt, retry, statusOutcome } from './exchange-attempts.js';
import { R_BODY, R_DONE, R_TUNNEL } from './exchange-phase.js';
import type { Exchange } from './exchange.js';
import { HEAD_INCOMPLETE, HEAD_TOO_LARGE } from './head-reader.js';
import { keptFieldLines, keptFieldLinesExcept, responseStatusLine, writeHeadAndBody } from './head-writer.js';
import { H_KEEP_ALIVE } from './header-kinds.js';
import { forwardResponseField } from './hop-by-hop.js';
import { HEAD_OK, parseResponseHead } from './parser.js';
import { ResponseDrain } from './response-drain.js';
import type { UpstreamConnection } from './upstream-pool.js';

/**
 * After bytes of an upstream read went to the downstream socket: when the
 * socket queued them instead of sending them at once, they still point into
 * the upstream connection's read buffer, which must not be read into again.
 */
function lendIfQueued(down: Socket, up: UpstreamConnection | undefined): void {
  if (down.writableLength > 0 && up !== undefined) up.lendReadBuffer();
}

/**
 * Writes bytes of an upstream read downstream. Behind a queue they are
 * copied: they would wait anyway, and so at most one read buffer per
 * connection is ever held by a queue (a slow client cannot pin one per read).
 */
export function forwardUpstreamBytes(down: Socket, up: UpstreamConnection | undefined, bytes: Buffer): boolean {
  if (down.writableLength > 0) return down.write(Buffer.from(bytes));
  const ok = down.write(bytes);
  lendIfQueued(down, up);
  return ok;
}

export function pauseUpstream(ex: Exchange): void {
  if (ex.upstream !== undefined) {
    ex.upstream.socket.pause();
    ex.upstreamPaused = true;
  }
}

/** Response head bytes at chunk[start…]: interim responses are relayed, the final one starts the body. */
export function readResponseHead(ex: Exchange, chunk: Buffer, start: number): void {
  const limits = ex.conn.limits;
  const reader = ex.responseHeadReader;
  const response = ex.response;
  for (;;) {
    const next = reader.read(chunk, start);
    if (next === HEAD_INCOMPLETE) return;
    if (next === HEAD_TOO_LARGE) return upstreamProtocolError(ex, `response head larger than ${limits.maxHeaderBytes} bytes`);
    const parsed = parseResponseHead(reader.text, reader.bytes, reader.base, response, limits);
    reader.forgetBytes();
    if (parsed !== HEAD_OK) return upstreamProtocolError(ex, response.error);
    const status = response.statusCode;
    if (status >= 200) return onFinalHead(ex, chunk, next);
    if (status === 101) {
      if (!ex.upgrade) return upstreamProtocolError(ex, '101 Switching Protocols to a request that asked for no upgrade');
      return startTunnel(ex, chunk, next);
    }
    relayInterim(ex);
    if (next >= chunk.length) return;
    start = next;
  }
}

/** 1xx (100 Continue, 103 Early Hints…) go to HTTP/1.1 clients before the final response (RFC 9110 §15.2). */
function relayInterim(ex: Exchange): void {
  if (ex.conn.head.versionMinor === 0) return;
  const response = ex.response;
  ex.conn.socket.write(responseStatusLine(response) + keptFieldLines(response, forwardResponseField, ex.explicitProxy, false, false) + '\r\n', 'latin1');
}

function onFinalHead(ex: Exchange, chunk: Buffer, bodyStart: number): void {
  const response = ex.response;
  const conn = ex.conn;
  if (ex.destination !== undefined) {
    const status = response.statusCode;
    const outcome = statusOutcome(status);
    if (ex.plan !== undefined && ex.plan.retry !== null && mayRetry(ex, outcome, status)) {
      // A retried answer never goes downstream. Its connection goes back to the pool when its body is small enough to read to the end.
      keepRetriedConnection(ex, chunk, bodyStart);
      return retry(ex, outcome, undefined, status);
    }
    recordAttempt(ex, outcome);
    clearAttemptTimers(ex);
    if (ex.retriesExhausted) (ex.obs as HttpObservation).addFlag('URX', `retries exhausted: ${status} from ${ex.choice.endpointKey}`);
  }
  const obs = ex.obs as HttpObservation;
  ex.responseTimerArmed = false;
  obs.statusCode = response.statusCode;
  if (!ex.responseBody.startResponse(response, obs.method, conn.limits.maxHeaderBytes)) {
    return upstreamProtocolError(ex, 'chunked is not the last transfer coding');
  }
  const keepAliveHint = response.valueOf(H_KEEP_ALIVE);
  if (keepAliveHint !== undefined && ex.upstream !== undefined) ex.upstream.applyKeepAliveHint(keepAliveHint);
  const untilClose = ex.responseBody.mode === BODY_UNTIL_CLOSE;
  ex.upstreamReusable = !untilClose && !response.connectionClose && (response.versionMinor >= 1 || response.connectionKeepAlive);
  if (untilClose || !ex.keepAlive || conn.clientEnded) ex.closeAfter = true;
  let head = responseStatusLine(response);
  if (ex.editsResponse) {
    const edit = headerEditLines((ex.plan as RoutePlan).responseHeaders);
    head += keptFieldLinesExcept(response, forwardResponseField, ex.explicitProxy, false, false, edit.drops, false) + edit.lines;
  } else {
    head += keptFieldLines(response, forwardResponseField, ex.explicitProxy, false, false);
  }
  if (ex.closeAfter) head += 'connection: close\r\n';
  else if (conn.head.versionMinor === 0) head += 'connection: keep-alive\r\n';
  ex.finalHeadSent = true;
  ex.phase = R_BODY;
  forwardResponseBody(ex, chunk, bodyStart, head + '\r\n');
}

/**
 * A retried response whose request went out whole: its body (at most
 * MAX_DRAINED_BODY_BYTES, framed) is read to its end by the exchange's
 * drain, which then releases the connection to the pool. Otherwise the
 * connection stays attached and retry() discards it.
 */
function keepRetriedConnection(ex: Exchange, chunk: Buffer, bodyStart: number): void {
  const up = ex.upstream;
  if (up === undefined || !ex.requestDone) return;
  let drain = ex.drain;
  if (drain === undefined) {
    drain = new ResponseDrain(ex.conn.deps.pool, ex.conn.limits.maxHeaderBytes);
    ex.drain = drain;
  }
  if (drain.take(up, ex.response, (ex.obs as HttpObservation).method, chunk, bodyStart)) ex.upstream = undefined;
}

/** Body bytes at chunk[start…], preceded by the response head when it is still to be written. */
export function forwardResponseBody(ex: Exchange, chunk: Buffer, start: number, head: string): void {
  const framing = ex.responseBody;
  let end = start;
  let complete: boolean;
  if (framing.mode === BODY_NONE) {
    complete = true;
  } else {
    const r = framing.consume(chunk, start, chunk.length);
    if (r === BODY_ERROR) {
      if (head !== '') ex.conn.socket.write(head, 'latin1');
      return abortResponse(ex, 'UPE', `malformed chunked response body: ${framing.error}`);
    }
    end = r === BODY_MORE ? chunk.length : r;
    complete = r !== BODY_MORE;
  }
  const down = ex.conn.socket;
  let ok: boolean;
  if (head !== '') {
    ok = writeHeadAndBody(down, head, end > start ? chunk.subarray(start, end) : undefined);
    lendIfQueued(down, ex.upstream);
  } else {
    ok = end > start ? forwardUpstreamBytes(down, ex.upstream, start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end)) : true;
  }
  if (complete) responseComplete(ex, end < chunk.length);
  else if (!ok) pauseUpstream(ex);
}

/** The response ended: its connection goes back to the pool when it can carry another request. */
export function responseComplete(ex: Exchange, extraBytes: boolean): void {
  ex.phase = R_DONE;
  (ex.obs as HttpObservation).responseBytes = ex.responseBody.bodyBytes;
  const up = ex.upstream;
  ex.upstream = undefined;
  const pool = ex.conn.deps.pool;
  if (up !== undefined) {
    // A response that ended before its request did leaves the upstream mid-request: close both ways.
    if (!ex.requestDone) {
      ex.closeAfter = true;
      pool.discard(up);
    } else if (ex.upstreamReusable && !extraBytes) {
      pool.release(up);
    } else {
      pool.discard(up);
    }
  }
  finish(ex, undefined);
}

function upstreamProtocolError(ex: Exchange, reason: string): void {
  const key = ex.choice.endpointKey;
  if (ex.finalHeadSent) abortResponse(ex, 'UPE', `${key}: ${reason}`);
  else answer(ex, wireError('UPE', `${key}: ${reason}`), true);
}

// ---- 101: raw pipe ---------------------------------------------------------

function startTunnel(ex: Exchange, chunk: Buffer, next: number): void {
  const response = ex.response;
  const conn = ex.conn;
  if (ex.destination !== undefined) {
    recordAttempt(ex, 'success');
    clearTimers(ex);
  }
  ex.responseTimerArmed = false;
  const obs = ex.obs as HttpObservation;
  obs.statusCode = 101;
  ex.phase = R_TUNNEL;
  ex.finalHeadSent = true;
  ex.closeAfter = true;
  conn.state = D_TUNNEL;
  const head = responseStatusLine(response) + keptFieldLines(response, forwardResponseField, ex.explicitProxy, true, false) + 'connection: upgrade\r\n\r\n';
  const ok = writeHeadAndBody(conn.socket, head, next < chunk.length ? chunk.subarray(next) : undefined);
  lendIfQueued(conn.socket, ex.upstream);
  if (next < chunk.length) obs.responseBytes += chunk.length - next;
  if (!ok) pauseUpstream(ex);
  // Bytes the client sent after its upgrade request, held while the answer was pending.
  const early = conn.takeStash();
  if (early !== undefined) ex.tunnelToUpstream(early);
  conn.resumeReading();
}

/** The pipe ends with either side closing: a clean close lets the other side flush and end, a failed one resets it. */
export function endTunnel(ex: Exchange, error: string | undefined): void {
  if (!ex.active) return;
  ex.phase = R_DONE;
  if (ex.upstream !== undefined) {
    ex.conn.deps.pool.discard(ex.upstream, error === undefined);
    ex.upstream = undefined;
  }
  if (error !== undefined) ex.conn.socket.destroy();
  finish(ex, undefined);
}
