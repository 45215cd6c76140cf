/**
 * The downstream side of an exchange: the request stream's events (body
 * kept for retries while it fits, trailers, end, idle, close) and the
 * trailers the response ends with.
 *
 * Module-level listeners find their exchange on the stream (exchange-tag.ts).
 */
import { constants, type IncomingHttpHeaders, type ServerHttp2Stream } from 'node:http2';
import { requestSent, sendMirror } from './exchange-attempts.js';
import { exchangeOf } from './exchange-tag.js';
import { relayedHeaders } from './request-headers.js';

const { NGHTTP2_NO_ERROR } = constants;

/** Listens to the downstream stream (already tagged with its exchange; its 'error' listener is the handler's). */
export function listenToDownstream(down: ServerHttp2Stream, streamIdleTimeoutMs: number): void {
  down.on('data', onDownstreamData);
  down.on('trailers', onDownstreamTrailers);
  down.on('end', onDownstreamEnd);
  down.on('wantTrailers', onDownstreamWantTrailers);
  down.once('close', onDownstreamClose);
  if (streamIdleTimeoutMs > 0) {
    down.setTimeout(streamIdleTimeoutMs);
    down.on('timeout', onDownstreamIdle);
  }
}

function onDownstreamData(this: ServerHttp2Stream, chunk: Buffer): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.obs.requestBytes += chunk.length;
  const body = ex.body;
  // Kept for the next try while it fits; the current try gets it now. Past
  // the limit the body can no longer be replayed: the rest goes through a
  // pipe (flow control again) and this request is not retried.
  if (body === undefined || body.overflowed) return;
  const kept = body.add(chunk);
  const up = ex.upstream;
  if (up === undefined) return;
  up.write(chunk);
  if (!kept) this.pipe(up);
}

function onDownstreamTrailers(this: ServerHttp2Stream, trailers: IncomingHttpHeaders): void {
  const ex = exchangeOf(this);
  if (ex !== undefined) ex.requestTrailers = relayedHeaders(trailers);
}

function onDownstreamEnd(this: ServerHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.requestEnded = true;
  const body = ex.body;
  if (body !== undefined) {
    body.ended = true;
    // Written by hand while kept: end it by hand too (past the limit the pipe does).
    if (!body.overflowed) ex.upstream?.end();
    sendMirror(ex);
  }
  requestSent(ex);
}

function onDownstreamWantTrailers(this: ServerHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.responseComplete();
  try {
    this.sendTrailers(ex.responseTrailers ?? {});
  } catch {
    // Closed meanwhile: 'close' reports it.
  }
}

function onDownstreamIdle(this: ServerHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  ex.fail('SI', `no data for ${ex.ctx.limits.streamIdleTimeoutMs} ms`);
  // Also when the exchange had already failed: a stream that cannot even be reset means a stuck session.
  ex.peer.streamIdle();
}

function onDownstreamClose(this: ServerHttp2Stream): void {
  const ex = exchangeOf(this);
  if (ex === undefined) return;
  if (!ex.responseDone && !ex.failed) {
    const code = this.rstCode;
    ex.fail('DC', code === undefined || code === NGHTTP2_NO_ERROR ? 'stream closed' : `stream reset (code ${code})`);
  }
  ex.finish();
}
