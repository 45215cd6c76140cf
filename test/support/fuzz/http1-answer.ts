/**
 * A strict reader of what a server wrote back on an HTTP/1.1 connection,
 * sharing no code with the proxy: a sequence of responses (status line,
 * fields, body framed by chunked, Content-Length, or the connection's end),
 * and a verdict on the first byte that is not HTTP.
 */

export interface Http1Response {
  readonly status: number;
  /** Lowercased field names → values. */
  readonly fields: ReadonlyMap<string, readonly string[]>;
}

export interface Http1Answer {
  /** Responses whose head was read completely (1xx included), in order. */
  readonly responses: readonly Http1Response[];
  /** Final (≥ 200) responses read completely, body included. */
  readonly complete: number;
  /** A response body runs to the end of the connection (no framing): nothing after it is a response. */
  readonly openEnded: boolean;
  /** Why the bytes are not HTTP/1.1 responses, undefined when they are (so far). */
  readonly garbage: string | undefined;
}

const STATUS_LINE = /^HTTP\/1\.[01] ([1-5][0-9][0-9]) [\t\x20-\x7e\x80-\xff]*$/;
const FIELD_LINE = /^([!#$%&'*+\-.^_`|~0-9A-Za-z]+):[\t ]*([\t\x20-\x7e\x80-\xff]*?)[\t ]*$/;
const STATUS_PREFIX = 'HTTP/1.';

interface Parsed {
  responses: Http1Response[];
  complete: number;
  openEnded: boolean;
  garbage: string | undefined;
}

function fieldValue(fields: Map<string, string[]>, name: string): string | undefined {
  const values = fields.get(name);
  return values === undefined ? undefined : values.join(', ');
}

/** Reads a chunked body at text[pos…]; returns the offset after it, -1 when incomplete, or a string describing the error. */
function chunkedEnd(text: string, pos: number): number | string {
  for (;;) {
    const lineEnd = text.indexOf('\r\n', pos);
    if (lineEnd < 0) return text.length - pos > 1024 ? 'chunk size line too long' : -1;
    const sizeText = /^([0-9A-Fa-f]{1,16})(;[^\r\n]*)?$/.exec(text.slice(pos, lineEnd));
    if (sizeText === null) return `bad chunk size line ${JSON.stringify(text.slice(pos, lineEnd).slice(0, 40))}`;
    const size = parseInt(sizeText[1] as string, 16);
    pos = lineEnd + 2;
    if (size === 0) {
      // Trailer fields, then the empty line.
      for (;;) {
        const end = text.indexOf('\r\n', pos);
        if (end < 0) return -1;
        if (end === pos) return pos + 2;
        if (!FIELD_LINE.test(text.slice(pos, end))) return `bad trailer line ${JSON.stringify(text.slice(pos, end).slice(0, 40))}`;
        pos = end + 2;
      }
    }
    if (pos + size + 2 > text.length) return -1;
    if (text.slice(pos + size, pos + size + 2) !== '\r\n') return 'chunk data not followed by CRLF';
    pos += size + 2;
  }
}

export function readHttp1Answer(data: Buffer): Http1Answer {
  const text = data.toString('latin1');
  const out: Parsed = { responses: [], complete: 0, openEnded: false, garbage: undefined };
  let pos = 0;
  while (pos < text.length) {
    const rest = text.length - pos;
    if (!text.startsWith(STATUS_PREFIX.slice(0, Math.min(rest, STATUS_PREFIX.length)), pos)) {
      out.garbage = `not a status line at byte ${pos}: ${JSON.stringify(text.slice(pos, pos + 40))}`;
      break;
    }
    const headEnd = text.indexOf('\r\n\r\n', pos);
    if (headEnd < 0) {
      if (rest > 128 * 1024) out.garbage = 'response head larger than 128 KiB';
      break;
    }
    const lines = text.slice(pos, headEnd).split('\r\n');
    const status = STATUS_LINE.exec(lines[0] as string);
    if (status === null) {
      out.garbage = `malformed status line ${JSON.stringify(lines[0])}`;
      break;
    }
    const fields = new Map<string, string[]>();
    let bad: string | undefined;
    for (const line of lines.slice(1)) {
      const m = FIELD_LINE.exec(line);
      if (m === null) {
        bad = `malformed field line ${JSON.stringify(line.slice(0, 60))}`;
        break;
      }
      const name = (m[1] as string).toLowerCase();
      const list = fields.get(name) ?? [];
      list.push(m[2] as string);
      fields.set(name, list);
    }
    if (bad !== undefined) {
      out.garbage = bad;
      break;
    }
    const code = Number(status[1]);
    out.responses.push({ status: code, fields });
    let bodyStart = headEnd + 4;
    if (code < 200 || code === 204 || code === 304) {
      if (code >= 200) out.complete++;
      pos = bodyStart;
      continue;
    }
    const te = fieldValue(fields, 'transfer-encoding');
    const cl = fieldValue(fields, 'content-length');
    if (te !== undefined) {
      if (!/(^|,)\s*chunked\s*$/i.test(te)) {
        out.openEnded = true;
        break;
      }
      const end = chunkedEnd(text, bodyStart);
      if (typeof end === 'string') {
        out.garbage = end;
        break;
      }
      if (end < 0) break;
      bodyStart = end;
    } else if (cl !== undefined) {
      if (!/^\d{1,15}$/.test(cl)) {
        out.garbage = `bad Content-Length ${JSON.stringify(cl)}`;
        break;
      }
      const length = Number(cl);
      if (bodyStart + length > text.length) break;
      bodyStart += length;
    } else {
      // No framing: the body is the rest of the connection (a CONNECT tunnel's bytes come this way too).
      out.openEnded = true;
      out.complete++;
      break;
    }
    out.complete++;
    pos = bodyStart;
  }
  return out;
}

/** The proxy's own answers carry its response flag; an upstream's never do. */
export const RESPONSE_FLAGS_FIELD = 'x-tracemesh-response-flags';

/** The flags of a response the proxy generated, '' for an upstream's response. */
export function proxyFlags(response: Http1Response): string {
  return (response.fields.get(RESPONSE_FLAGS_FIELD) ?? []).join(',');
}
