/**
 * Strict HTTP/1.1 head parser (RFC 9112) over a complete head: one pass over
 * its bytes, no regexes, no per-field objects. Anything a lenient parser
 * might read differently from a strict one (obs-fold, bare CR or LF,
 * whitespace before the colon, conflicting framing) is rejected, so no
 * request can be smuggled past the proxy.
 *
 * The head comes twice, as the same bytes: `text` (decoded as latin1, what
 * HttpHead keeps and the few strings the proxy needs are sliced from) and
 * `bytes[base…]`, which the scan reads: a typed-array load per byte costs
 * about half a charCodeAt. Positions are offsets into the head either way.
 *
 * A parse returns HEAD_OK or the HTTP status to answer with (400, 414, 431,
 * 505) and leaves the reason in head.error.
 */
import { COLON, COMMA, CR, HTAB, LF, SP, TCHAR, isBadValueChar } from './chars.js';
import type { HttpHead } from './head.js';
import {
  H_CONNECTION,
  H_CONTENT_LENGTH,
  H_EXPECT,
  H_HOST,
  H_OTHER,
  H_TRANSFER_ENCODING,
  fieldKindOf,
  isB3Kind,
} from './header-kinds.js';

export const HEAD_OK = 0;

export interface HeadLimits {
  readonly maxHeaderCount: number;
  readonly maxUrlLength: number;
}

function fail(head: HttpHead, status: number, reason: string): number {
  head.error = reason;
  return status;
}

/** Case-insensitive comparison of bytes[start, end) with a lowercase literal made of letters, digits and '-'. */
function tokenEquals(bytes: Uint8Array, start: number, end: number, lower: string): boolean {
  if (end - start !== lower.length) return false;
  for (let i = 0; i < lower.length; i++) {
    if (((bytes[start + i] as number) | 0x20) !== lower.charCodeAt(i)) return false;
  }
  return true;
}

function isOws(c: number): boolean {
  return c === SP || c === HTAB;
}

/** parseContentLength: the value is a list ("5, 5"), which this proxy refuses. */
const CONTENT_LENGTH_LIST = -2;

/**
 * Content-Length in bytes[start, end), already OWS-trimmed: 1*DIGIT only.
 * Returns the length, -1 when invalid (empty, non-digits, over 2^53), or
 * CONTENT_LENGTH_LIST. RFC 9110 §8.6 lets a recipient accept a list of
 * identical values, but the head is forwarded as it came, and the next hop
 * could read a list differently.
 */
function parseContentLength(bytes: Uint8Array, start: number, end: number): number {
  if (end === start || end - start > 15) return -1;
  let n = 0;
  for (let pos = start; pos < end; pos++) {
    const c = bytes[pos] as number;
    if (c < 48 || c > 57) return c === COMMA ? CONTENT_LENGTH_LIST : -1;
    n = n * 10 + (c - 48);
  }
  return n;
}

/**
 * Walks the comma-separated elements of a list field in bytes[start, end)
 * (absolute offsets), OWS trimmed, empty elements skipped (RFC 9110 §5.6.1),
 * calling `onElement` with each element's absolute offsets.
 */
function forEachElement(
  text: string,
  bytes: Uint8Array,
  base: number,
  start: number,
  end: number,
  head: HttpHead,
  onElement: (head: HttpHead, text: string, bytes: Uint8Array, base: number, start: number, end: number) => void,
): void {
  let pos = start;
  while (pos < end) {
    while (pos < end && isOws(bytes[pos] as number)) pos++;
    let elementEnd = pos;
    let scan = pos;
    while (scan < end && bytes[scan] !== COMMA) {
      if (!isOws(bytes[scan] as number)) elementEnd = scan + 1;
      scan++;
    }
    if (elementEnd > pos) onElement(head, text, bytes, base, pos, elementEnd);
    pos = scan + 1;
  }
}

function noteConnectionOption(head: HttpHead, text: string, bytes: Uint8Array, base: number, start: number, end: number): void {
  if (tokenEquals(bytes, start, end, 'close')) head.connectionClose = true;
  else if (tokenEquals(bytes, start, end, 'keep-alive')) head.connectionKeepAlive = true;
  else if (tokenEquals(bytes, start, end, 'upgrade')) head.connectionUpgrade = true;
  else {
    const token = text.slice(start - base, end - base).toLowerCase();
    if (!head.connectionTokens.includes(token)) head.connectionTokens.push(token);
  }
}

function noteTransferCoding(head: HttpHead, _text: string, bytes: Uint8Array, _base: number, start: number, end: number): void {
  // A coding may carry parameters ("gzip;q=1"); only its name matters here.
  let nameEnd = start;
  while (nameEnd < end && TCHAR[bytes[nameEnd] as number] === 1) nameEnd++;
  if (head.chunked) head.chunkedMisplaced = true; // something follows chunked
  head.chunked = tokenEquals(bytes, start, nameEnd, 'chunked');
  head.transferCodings++;
}

/** Framing and connection semantics of one field (value at bytes[base + valueStart, base + valueEnd)); returns a failure status or HEAD_OK. */
function noteField(head: HttpHead, kind: number, text: string, bytes: Uint8Array, base: number, valueStart: number, valueEnd: number): number {
  switch (kind) {
    case H_CONTENT_LENGTH: {
      // A repeated field, even of the same value, could be read differently by the next hop (see parseContentLength).
      if (head.contentLength >= 0) return fail(head, 400, 'more than one Content-Length field');
      const n = parseContentLength(bytes, base + valueStart, base + valueEnd);
      if (n === CONTENT_LENGTH_LIST) return fail(head, 400, `a list in Content-Length "${text.slice(valueStart, valueEnd)}"`);
      if (n < 0) return fail(head, 400, `invalid Content-Length "${text.slice(valueStart, valueEnd)}"`);
      head.contentLength = n;
      return HEAD_OK;
    }
    case H_TRANSFER_ENCODING:
      head.transferEncoding = true;
      // Requests may carry exactly "chunked" (checked when the head ends); an empty list element
      // ("chunked,") would pass the element count, so the value itself is checked here, on its
      // bytes (String.prototype.trim would also strip a latin1 no-break space, 0xA0).
      if (!tokenEquals(bytes, base + valueStart, base + valueEnd, 'chunked')) head.transferNotPlainChunked = true;
      forEachElement(text, bytes, base, base + valueStart, base + valueEnd, head, noteTransferCoding);
      return HEAD_OK;
    case H_CONNECTION:
      forEachElement(text, bytes, base, base + valueStart, base + valueEnd, head, noteConnectionOption);
      return HEAD_OK;
    case H_HOST:
      head.hostCount++;
      return HEAD_OK;
    case H_EXPECT:
      head.expectContinue = tokenEquals(bytes, base + valueStart, base + valueEnd, '100-continue');
      return HEAD_OK;
    default:
      if (isB3Kind(kind)) head.hasB3 = true;
      return HEAD_OK;
  }
}

/** Field lines from `pos` to the empty line. */
function parseFields(text: string, bytes: Uint8Array, base: number, pos: number, head: HttpHead, maxCount: number): number {
  for (;;) {
    let c = bytes[base + pos] as number;
    if (c === CR) {
      if (bytes[base + pos + 1] !== LF) return fail(head, 400, 'bare CR in the head');
      return HEAD_OK; // the head ends with this empty line by construction
    }
    if (c === SP || c === HTAB) return fail(head, 400, 'obsolete line folding (obs-fold) in a header field');
    const lineStart = pos;
    // The name's hash for fieldKindOf, computed in the same pass that checks its characters.
    let hash = 0;
    while (TCHAR[c] === 1) {
      hash = (Math.imul(hash, 31) + (c | 0x20)) | 0;
      c = bytes[base + ++pos] as number;
    }
    if (c !== COLON) {
      if (pos === lineStart) return fail(head, 400, `invalid header field name at byte ${lineStart}`);
      if (c === SP || c === HTAB) return fail(head, 400, 'whitespace between a header field name and the colon');
      return fail(head, 400, `invalid character in header field name at byte ${pos}`);
    }
    if (pos === lineStart) return fail(head, 400, 'empty header field name');
    const nameEnd = pos;
    c = bytes[base + ++pos] as number;
    while (c === SP || c === HTAB) c = bytes[base + ++pos] as number;
    const valueStart = pos;
    let valueEnd = pos;
    while (c !== CR) {
      if (isBadValueChar(c)) return fail(head, 400, c === LF ? 'bare LF in a header field' : `invalid character in header field value at byte ${pos}`);
      if (c !== SP && c !== HTAB) valueEnd = pos + 1;
      c = bytes[base + ++pos] as number;
    }
    if (bytes[base + pos + 1] !== LF) return fail(head, 400, 'bare CR in a header field');
    pos += 2;
    const i = head.count;
    if (i >= maxCount) return fail(head, 431, `more than ${maxCount} header fields`);
    const kind = fieldKindOf(bytes, base + lineStart, nameEnd - lineStart, hash);
    head.lineStarts[i] = lineStart;
    head.nameEnds[i] = nameEnd;
    head.valueStarts[i] = valueStart;
    head.valueEnds[i] = valueEnd;
    head.kinds[i] = kind;
    head.count = i + 1;
    if (kind !== H_OTHER) {
      if (head.firstOf[kind] === -1) head.firstOf[kind] = i;
      const status = noteField(head, kind, text, bytes, base, valueStart, valueEnd);
      if (status !== HEAD_OK) return status;
    }
  }
}

/** "HTTP/1.x" at bytes[at]; returns x, -1 when malformed, -2 when a major version other than 1. */
function parseVersion(bytes: Uint8Array, at: number): number {
  if (bytes[at] !== 72 || bytes[at + 1] !== 84 || bytes[at + 2] !== 84 || bytes[at + 3] !== 80 || bytes[at + 4] !== 47) return -1; // "HTTP/"
  const major = bytes[at + 5] as number;
  const minor = bytes[at + 7] as number;
  if (major < 48 || major > 57 || bytes[at + 6] !== 46 || minor < 48 || minor > 57) return -1;
  if (major !== 49) return -2;
  return minor - 48;
}

/**
 * Parses a request head: `text` is the complete head (request line, fields,
 * empty line) decoded as latin1, and bytes[base, base + text.length) the same head.
 */
export function parseRequestHead(text: string, bytes: Uint8Array, base: number, head: HttpHead, limits: HeadLimits): number {
  head.reset(text);
  let pos = 0;
  let c = bytes[base] as number;
  while (TCHAR[c] === 1) c = bytes[base + ++pos] as number;
  if (pos === 0 || c !== SP) return fail(head, 400, 'malformed request line: invalid method');
  head.method = text.slice(0, pos);
  const targetStart = ++pos;
  c = bytes[base + pos] as number;
  // request-target: visible characters only (no CTL, no SP, no DEL); obs-text tolerated.
  while (c > SP && c !== 0x7f) c = bytes[base + ++pos] as number;
  if (c !== SP || pos === targetStart) return fail(head, 400, 'malformed request line: invalid request target');
  if (pos - targetStart > limits.maxUrlLength) return fail(head, 414, `request target longer than ${limits.maxUrlLength} bytes`);
  head.target = text.slice(targetStart, pos);
  pos++;
  const minor = parseVersion(bytes, base + pos);
  if (minor === -2) return fail(head, 505, 'HTTP version not supported');
  if (minor < 0) return fail(head, 400, 'malformed request line: invalid HTTP version');
  head.versionMinor = minor;
  pos += 8;
  if (bytes[base + pos] !== CR || bytes[base + pos + 1] !== LF) return fail(head, 400, 'malformed request line: expected CRLF after the version');
  pos += 2;
  head.startLineEnd = pos;
  const status = parseFields(text, bytes, base, pos, head, limits.maxHeaderCount);
  if (status !== HEAD_OK) return status;
  return checkRequestFraming(head);
}

/** RFC 9112 §3.2 and §6: the rules that keep framing unambiguous between the proxy and the app. */
function checkRequestFraming(head: HttpHead): number {
  if (head.transferEncoding) {
    if (head.versionMinor === 0) return fail(head, 400, 'Transfer-Encoding in an HTTP/1.0 request');
    if (head.contentLength >= 0) return fail(head, 400, 'both Content-Length and Transfer-Encoding');
    if (head.transferCodings !== 1 || !head.chunked || head.transferNotPlainChunked) return fail(head, 400, 'unsupported transfer coding (only "chunked" is accepted)');
  }
  if (head.hostCount > 1) return fail(head, 400, 'more than one Host field');
  if (head.hostCount === 0 && head.versionMinor >= 1) return fail(head, 400, 'missing Host field');
  return HEAD_OK;
}

/**
 * Parses a response head (`text` and bytes[base…] as for parseRequestHead).
 * A Transfer-Encoding whose last coding is chunked overrides Content-Length
 * (RFC 9112 §6.3); any other Transfer-Encoding means the body runs until
 * the connection closes.
 */
export function parseResponseHead(text: string, bytes: Uint8Array, base: number, head: HttpHead, limits: HeadLimits): number {
  head.reset(text);
  const minor = parseVersion(bytes, base);
  if (minor < 0) return fail(head, 502, 'malformed status line: invalid HTTP version');
  head.versionMinor = minor;
  if (bytes[base + 8] !== SP) return fail(head, 502, 'malformed status line');
  const d1 = (bytes[base + 9] as number) - 48;
  const d2 = (bytes[base + 10] as number) - 48;
  const d3 = (bytes[base + 11] as number) - 48;
  if (d1 < 1 || d1 > 5 || d2 < 0 || d2 > 9 || d3 < 0 || d3 > 9) return fail(head, 502, 'malformed status line: invalid status code');
  head.statusCode = d1 * 100 + d2 * 10 + d3;
  let pos = 12;
  let c = bytes[base + pos] as number;
  if (c === SP) {
    const reasonStart = ++pos;
    c = bytes[base + pos] as number;
    while (c !== CR) {
      if (isBadValueChar(c)) return fail(head, 502, 'malformed status line: invalid reason phrase');
      c = bytes[base + ++pos] as number;
    }
    head.reasonStart = reasonStart;
    head.reasonEnd = pos;
  }
  if (c !== CR || bytes[base + pos + 1] !== LF) return fail(head, 502, 'malformed status line');
  pos += 2;
  head.startLineEnd = pos;
  const status = parseFields(text, bytes, base, pos, head, limits.maxHeaderCount);
  return status === HEAD_OK ? HEAD_OK : 502;
}
