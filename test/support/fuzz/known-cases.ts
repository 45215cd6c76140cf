/**
 * Inputs that broke the proxy once, replayed on every run whatever the seed,
 * each reduced to the few frames that matter. A case stays here after its
 * fix, as a regression test.
 */
import {
  F_END_HEADERS,
  F_END_STREAM,
  PREFACE,
  T_HEADERS,
  T_WINDOW_UPDATE,
  frame,
  goaway,
  hpack,
  requestFields,
  settings,
  windowUpdate,
} from './h2-frames.js';

export interface KnownCase {
  readonly name: string;
  /** What went wrong, for the failure message. */
  readonly found: string;
  readonly bytes: Buffer;
}

export interface KnownHttp1Case extends KnownCase {
  /** The statuses the first answer may have. */
  readonly allowed: readonly number[];
}

/**
 * Requests whose framing the proxy accepts (RFC 9110 §5.6.1, §8.6 allow
 * reading them) but forwards verbatim: the app may read the framing
 * differently (node's parser refuses all of these), the exchange ends in a
 * 502 UC that blames a healthy endpoint. The proxy must forward the framing
 * it used (one Content-Length, "chunked", valid chunk lines) or refuse with 400.
 */
export function knownHttp1Cases(authority: string): KnownHttp1Case[] {
  const post = (framing: string, body: string): Buffer => Buffer.from(`POST /known HTTP/1.1\r\nHost: ${authority}\r\n${framing}\r\n\r\n${body}`, 'latin1');
  const allowed = [200, 400];
  const found = 'forwarded verbatim; node upstream refuses it and closes; answer 502 UC, the endpoint counted as failing';
  return [
    { name: "'Content-Length: 3, 3'", found, bytes: post('Content-Length: 3, 3', 'abc'), allowed },
    { name: 'two identical Content-Length fields', found, bytes: post('Content-Length: 3\r\nContent-Length: 3', 'abc'), allowed },
    { name: "'Transfer-Encoding: chunked,' (an empty list element)", found, bytes: post('Transfer-Encoding: chunked,', '3\r\nabc\r\n0\r\n\r\n'), allowed },
    { name: 'a chunk extension that is not a token (obs-text)', found, bytes: post('Transfer-Encoding: chunked', '3;\xff\xfe\r\nabc\r\n0\r\n\r\n'), allowed },
    { name: 'a chunk extension with an empty name', found, bytes: post('Transfer-Encoding: chunked', '3;\r\nabc\r\n0\r\n\r\n'), allowed },
  ];
}

function getRequest(authority: string): Buffer {
  return frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, 1, hpack(requestFields('GET', authority, '/known')));
}

export function knownHttp2Cases(authority: string): KnownCase[] {
  const start = Buffer.concat([PREFACE, settings([]), getRequest(authority)]);
  return [
    {
      name: 'request, then a connection error in the same read (WINDOW_UPDATE 0 on the connection)',
      found:
        "uncaught 'Protocol error': node emits 'stream' a tick after the HEADERS, by then the session is destroyed, " +
        "stream.session is undefined, the handler returns without an 'error' listener and the stream's error is thrown",
      bytes: Buffer.concat([start, windowUpdate(0, 0)]),
    },
    {
      name: 'request, then GOAWAY with an error code in the same read',
      found: "uncaught 'Session closed with error code 2', same cause",
      bytes: Buffer.concat([start, goaway(0, 2)]),
    },
    {
      name: 'request, then a frame of the wrong length (WINDOW_UPDATE of 16 bytes: FRAME_SIZE_ERROR)',
      found:
        'the connection is never released: nghttp2 sends GOAWAY and stops reading, node neither closes nor destroys ' +
        'the session, the stream in flight never closes, so the idle timer (armed only without streams) never fires',
      bytes: Buffer.concat([start, frame(T_WINDOW_UPDATE, 0, 5, Buffer.alloc(16))]),
    },
  ];
}
