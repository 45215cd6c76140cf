/**
 * The exchange a stream belongs to, kept on the stream itself: the stream
 * listeners are module-level functions that find their exchange here, so
 * no closure is made per stream.
 */
import type { ClientHttp2Stream, ServerHttp2Stream } from 'node:http2';
import type { Exchange } from './exchange.js';

const EXCHANGE = Symbol('tracemesh.h2.exchange');
type Tagged = (ServerHttp2Stream | ClientHttp2Stream) & { [EXCHANGE]?: Exchange };

export function exchangeOf(stream: ServerHttp2Stream | ClientHttp2Stream): Exchange | undefined {
  return (stream as Tagged)[EXCHANGE];
}

/** Ties `stream` to `ex`; undefined unties it (a try that was abandoned: its late events concern nobody). */
export function tagStream(stream: ServerHttp2Stream | ClientHttp2Stream, ex: Exchange | undefined): void {
  (stream as Tagged)[EXCHANGE] = ex;
}
