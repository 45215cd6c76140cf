/**
 * Serializes heads for the next hop. Kept field lines are copied from the
 * received head text in runs (one slice per stretch of kept lines), so the
 * bytes are forwarded exactly as received and the usual head costs a few
 * string slices, not a rebuild per field. Heads are written as latin1, the
 * encoding they were read with.
 */
import { RESPONSE_FLAGS_HEADER, wireErrorBody, type WireError } from '../errors-to-wire.js';
import type { Socket } from 'node:net';
import type { HttpHead } from './head.js';

type ForwardField = (head: HttpHead, i: number, explicitProxy: boolean, upgrade: boolean, rewriteTraceContext: boolean) => boolean;

/** The field lines of `head` that `forward` keeps, CRLF-terminated, in received order. */
export function keptFieldLines(head: HttpHead, forward: ForwardField, explicitProxy: boolean, upgrade: boolean, rewriteTraceContext: boolean): string {
  const text = head.text;
  const starts = head.lineStarts;
  let out = '';
  let runStart = -1;
  for (let i = 0; i < head.count; i++) {
    if (forward(head, i, explicitProxy, upgrade, rewriteTraceContext)) {
      if (runStart < 0) runStart = starts[i] as number;
    } else if (runStart >= 0) {
      out += text.slice(runStart, starts[i]);
      runStart = -1;
    }
  }
  if (runStart >= 0) out += text.slice(runStart, head.fieldsEnd);
  return out;
}

/**
 * keptFieldLines for a head under header edits: also drops the fields named
 * in `drops` (removed or replaced by the edit) and, with `dropHost`, Host
 * (an authority rewrite writes its own). Only plans with edits come here.
 */
export function keptFieldLinesExcept(
  head: HttpHead,
  forward: ForwardField,
  explicitProxy: boolean,
  upgrade: boolean,
  rewriteTraceContext: boolean,
  drops: ReadonlySet<string>,
  dropHost: boolean,
): string {
  const text = head.text;
  let out = '';
  for (let i = 0; i < head.count; i++) {
    if (!forward(head, i, explicitProxy, upgrade, rewriteTraceContext)) continue;
    if (drops.size > 0 || dropHost) {
      const name = head.lowerName(i);
      if (drops.has(name) || (dropHost && name === 'host')) continue;
    }
    const end = i + 1 < head.count ? (head.lineStarts[i + 1] as number) : head.fieldsEnd;
    out += text.slice(head.lineStarts[i], end);
  }
  return out;
}

const REASONS: Readonly<Record<number, string>> = {
  100: 'Continue',
  101: 'Switching Protocols',
  103: 'Early Hints',
  200: 'OK',
  204: 'No Content',
  301: 'Moved Permanently',
  302: 'Found',
  303: 'See Other',
  304: 'Not Modified',
  307: 'Temporary Redirect',
  308: 'Permanent Redirect',
  400: 'Bad Request',
  404: 'Not Found',
  405: 'Method Not Allowed',
  408: 'Request Timeout',
  413: 'Content Too Large',
  414: 'URI Too Long',
  417: 'Expectation Failed',
  429: 'Too Many Requests',
  431: 'Request Header Fields Too Large',
  499: 'Client Closed Request',
  500: 'Internal Server Error',
  501: 'Not Implemented',
  502: 'Bad Gateway',
  503: 'Service Unavailable',
  504: 'Gateway Timeout',
  505: 'HTTP Version Not Supported',
};

export function reasonPhrase(status: number): string {
  return REASONS[status] ?? 'Unknown';
}

/** The status line sent downstream: the received one when it is HTTP/1.1, else rebuilt as HTTP/1.1. */
export function responseStatusLine(head: HttpHead): string {
  if (head.versionMinor === 1) return head.text.slice(0, head.startLineEnd);
  return `HTTP/1.1 ${head.statusCode} ${head.reason === '' ? reasonPhrase(head.statusCode) : head.reason}\r\n`;
}

/**
 * A complete error answer: status from the wire error, the response-flags
 * field, a one-line text body (omitted for HEAD, with its length kept).
 * `extraFields`: CRLF-terminated field lines to add (x-tracemesh-rate-limited).
 */
export function errorResponse(err: WireError, close: boolean, headRequest: boolean, extraFields = ''): string {
  const body = wireErrorBody(err);
  return (
    `HTTP/1.1 ${err.httpStatus} ${reasonPhrase(err.httpStatus)}\r\n` +
    `content-type: text/plain; charset=utf-8\r\ncontent-length: ${body.length}\r\n` +
    `${RESPONSE_FLAGS_HEADER}: ${err.flag}\r\n` +
    extraFields +
    (close ? 'connection: close\r\n\r\n' : '\r\n') +
    (headRequest ? '' : body)
  );
}

/** A route's redirect: the status, Location, and no body. */
export function redirectResponse(status: number, location: string, close: boolean): string {
  return `HTTP/1.1 ${status} ${reasonPhrase(status)}\r\nlocation: ${location}\r\ncontent-length: 0\r\n` + (close ? 'connection: close\r\n\r\n' : '\r\n');
}

/** Head and first body bytes up to this size go out as one buffer: one write, one syscall. */
const COALESCE_LIMIT = 16 * 1024;

/** Writes head + body to a socket in one write when small; returns write()'s backpressure answer. */
export function writeHeadAndBody(socket: Socket, head: string, body: Buffer | undefined): boolean {
  if (body === undefined || body.length === 0) return socket.write(head, 'latin1');
  if (body.length <= COALESCE_LIMIT) {
    const out = Buffer.allocUnsafe(head.length + body.length);
    out.write(head, 0, 'latin1');
    body.copy(out, head.length);
    return socket.write(out);
  }
  socket.cork();
  socket.write(head, 'latin1');
  const ok = socket.write(body);
  socket.uncork();
  return ok;
}
