import { describe, expect, it } from 'vitest';
import { HttpHead } from './head.js';
import { HeadBuffer } from './head-buffer.js';
import { H_CONTENT_LENGTH, H_HOST, H_OTHER, H_TRACEPARENT, H_USER_AGENT } from './header-kinds.js';
import { HEAD_OK, parseRequestHead, parseResponseHead } from './parser.js';

const LIMITS = { maxHeaderCount: 10, maxUrlLength: 64 };

/** The head's bytes sit inside a larger buffer, after other bytes, as they do in a socket read. */
function bytesOf(text: string): Buffer {
  return Buffer.concat([Buffer.from('XYZ', 'latin1'), Buffer.from(text, 'latin1'), Buffer.from('trailing body bytes', 'latin1')]);
}

function request(text: string): { status: number; head: HttpHead } {
  const head = new HttpHead();
  return { status: parseRequestHead(text, bytesOf(text), 3, head, LIMITS), head };
}

function response(text: string): { status: number; head: HttpHead } {
  const head = new HttpHead();
  return { status: parseResponseHead(text, bytesOf(text), 3, head, LIMITS), head };
}

describe('parseRequestHead: valid heads', () => {
  it('reads the request line and the fields', () => {
    const { status, head } = request('GET /a/b?c=d HTTP/1.1\r\nHost: example.com\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n');
    expect(status).toBe(HEAD_OK);
    expect(head.method).toBe('GET');
    expect(head.target).toBe('/a/b?c=d');
    expect(head.versionMinor).toBe(1);
    expect(head.count).toBe(3);
    expect(head.kinds.slice(0, 3)).toEqual([H_HOST, H_USER_AGENT, H_OTHER]);
    expect(head.valueOf(H_HOST)).toBe('example.com');
    expect(head.get('accept')).toBe('*/*');
    expect(head.get('user-agent')).toBe('curl/8');
    expect(head.get('missing')).toBeUndefined();
    expect(head.lowerName(1)).toBe('user-agent');
    expect(head.contentLength).toBe(-1);
    expect(head.chunked).toBe(false);
  });

  it('trims optional whitespace around values and keeps empty values', () => {
    const { status, head } = request('GET / HTTP/1.1\r\nHost: \t a b \t\r\nX-Empty:\r\nX-Spaces:   \r\n\r\n');
    expect(status).toBe(HEAD_OK);
    expect(head.valueOf(H_HOST)).toBe('a b');
    expect(head.get('x-empty')).toBe('');
    expect(head.get('x-spaces')).toBe('');
  });

  it('matches field names case-insensitively', () => {
    const { status, head } = request('GET / HTTP/1.1\r\nHOST: a\r\ncOnTeNt-LeNgTh: 3\r\nTraceParent: x\r\n\r\n');
    expect(status).toBe(HEAD_OK);
    expect(head.contentLength).toBe(3);
    expect(head.firstOf[H_CONTENT_LENGTH]).toBe(1);
    expect(head.firstOf[H_TRACEPARENT]).toBe(2);
  });

  it('accepts obs-text (bytes 0x80-0xFF) in values', () => {
    const { status, head } = request('GET / HTTP/1.1\r\nHost: a\r\nX-Name: caf\u00e9\u00ff\r\n\r\n');
    expect(status).toBe(HEAD_OK);
    expect(head.get('x-name')).toBe('caf\u00e9\u00ff');
  });

  it('accepts HTTP/1.0 without Host', () => {
    const { status, head } = request('GET / HTTP/1.0\r\n\r\n');
    expect(status).toBe(HEAD_OK);
    expect(head.versionMinor).toBe(0);
    expect(head.count).toBe(0);
  });

  it('refuses a Content-Length list or a repeated Content-Length, even of identical values (the head is forwarded as it came)', () => {
    expect(request('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n').status).toBe(400);
    expect(request('POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n').status).toBe(400);
    expect(request('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked,\r\n\r\n').status).toBe(400);
  });

  it('reads Connection options and the fields they name', () => {
    const { status, head } = request('GET / HTTP/1.1\r\nHost: a\r\nConnection: Keep-Alive, X-Foo,, Upgrade\r\nConnection: close\r\n\r\n');
    expect(status).toBe(HEAD_OK);
    expect(head.connectionKeepAlive).toBe(true);
    expect(head.connectionUpgrade).toBe(true);
    expect(head.connectionClose).toBe(true);
    expect(head.connectionTokens).toEqual(['x-foo']);
  });

  it('reads chunked transfer coding case-insensitively, and Expect: 100-continue', () => {
    const { status, head } = request('POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\nExpect: 100-Continue\r\n\r\n');
    expect(status).toBe(HEAD_OK);
    expect(head.chunked).toBe(true);
    expect(head.expectContinue).toBe(true);
  });

  it('notes B3 fields', () => {
    expect(request('GET / HTTP/1.1\r\nHost: a\r\nX-B3-TraceId: 1\r\n\r\n').head.hasB3).toBe(true);
    expect(request('GET / HTTP/1.1\r\nHost: a\r\nb3: 1\r\n\r\n').head.hasB3).toBe(true);
    expect(request('GET / HTTP/1.1\r\nHost: a\r\n\r\n').head.hasB3).toBe(false);
  });

  it('joins a list field sent as several lines', () => {
    const { head } = request('GET / HTTP/1.1\r\nHost: a\r\nX-Forwarded-For: 1.1.1.1\r\nX: y\r\nX-Forwarded-For: 2.2.2.2\r\n\r\n');
    expect(head.joinedValuesOf(20)).toBe('1.1.1.1, 2.2.2.2');
  });

  it('a reused head forgets the previous message', () => {
    const head = new HttpHead();
    const first = 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nConnection: close, x\r\n\r\n';
    const second = 'GET / HTTP/1.1\r\nHost: b\r\n\r\n';
    expect(parseRequestHead(first, bytesOf(first), 3, head, LIMITS)).toBe(HEAD_OK);
    expect(parseRequestHead(second, bytesOf(second), 3, head, LIMITS)).toBe(HEAD_OK);
    expect(head.contentLength).toBe(-1);
    expect(head.connectionClose).toBe(false);
    expect(head.connectionTokens).toEqual([]);
    expect(head.valueOf(H_HOST)).toBe('b');
    expect(head.firstOf[H_CONTENT_LENGTH]).toBe(-1);
  });
});

describe('parseRequestHead: malformed heads are refused', () => {
  const cases: Array<[string, string, number, string]> = [
    ['double space in the request line', 'GET  / HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'request target'],
    ['tab in the request target', 'GET /a\tb HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'request target'],
    ['invalid method character', 'G@T / HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'method'],
    ['empty method', ' / HTTP/1.1\r\nHost: a\r\n\r\n', 400, 'method'],
    ['bare LF ending the request line', 'GET / HTTP/1.1\nHost: a\r\n\r\n', 400, 'CRLF'],
    ['trailing space after the version', 'GET / HTTP/1.1 \r\nHost: a\r\n\r\n', 400, 'CRLF'],
    ['unknown protocol', 'GET / HTTX/1.1\r\nHost: a\r\n\r\n', 400, 'version'],
    ['HTTP/2.0 in HTTP/1 syntax', 'GET / HTTP/2.0\r\nHost: a\r\n\r\n', 505, 'version'],
    ['missing version', 'GET /\r\nHost: a\r\n\r\n', 400, 'request target'],
    ['missing colon', 'GET / HTTP/1.1\r\nHost a\r\n\r\n', 400, 'whitespace'],
    ['no colon at all', 'GET / HTTP/1.1\r\nHost: a\r\nJunk\r\n\r\n', 400, 'field name'],
    ['whitespace before the colon', 'GET / HTTP/1.1\r\nHost : a\r\n\r\n', 400, 'whitespace'],
    ['empty field name', 'GET / HTTP/1.1\r\nHost: a\r\n: b\r\n\r\n', 400, 'field name'],
    ['obs-fold', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\r\n b\r\n\r\n', 400, 'obs-fold'],
    ['bare CR in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\rb\r\n\r\n', 400, 'bare CR'],
    ['bare LF in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\nb\r\n\r\n', 400, 'bare LF'],
    ['NUL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\u0000b\r\n\r\n', 400, 'invalid character'],
    ['DEL in a value', 'GET / HTTP/1.1\r\nHost: a\r\nX: a\u007fb\r\n\r\n', 400, 'invalid character'],
    ['non-token byte in a name', 'GET / HTTP/1.1\r\nHost: a\r\nX\u00e9: b\r\n\r\n', 400, 'field name'],
    ['Content-Length and Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n', 400, 'both'],
    ['Content-Length not a number', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: abc\r\n\r\n', 400, 'Content-Length'],
    ['negative Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n', 400, 'Content-Length'],
    ['signed Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n', 400, 'Content-Length'],
    ['fractional Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1.5\r\n\r\n', 400, 'Content-Length'],
    ['empty Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length:\r\n\r\n', 400, 'Content-Length'],
    ['huge Content-Length', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 12345678901234567\r\n\r\n', 400, 'Content-Length'],
    ['Content-Length list with differing values', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 6\r\n\r\n', 400, 'Content-Length'],
    ['differing Content-Length fields', 'POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n', 400, 'more than one Content-Length'],
    ['unsupported transfer coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip\r\n\r\n', 400, 'transfer coding'],
    ['coding before chunked', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n', 400, 'transfer coding'],
    ['chunked with a trailing no-break space (0xA0)', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\u00a0\r\n\r\n', 400, 'transfer coding'],
    ['chunked twice', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n', 400, 'transfer coding'],
    ['chunked then another coding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, identity\r\n\r\n', 400, 'transfer coding'],
    ['empty Transfer-Encoding', 'POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding:\r\n\r\n', 400, 'transfer coding'],
    ['Transfer-Encoding in HTTP/1.0', 'POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n', 400, 'HTTP/1.0'],
    ['missing Host in HTTP/1.1', 'GET / HTTP/1.1\r\nX: a\r\n\r\n', 400, 'missing Host'],
    ['two Host fields', 'GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n', 400, 'Host'],
    ['too many fields', 'GET / HTTP/1.1\r\nHost: a\r\n' + 'X: 1\r\n'.repeat(10) + '\r\n', 431, 'more than 10'],
    ['request target too long', `GET /${'a'.repeat(64)} HTTP/1.1\r\nHost: a\r\n\r\n`, 414, 'longer than 64'],
  ];
  for (const [name, text, status, reason] of cases) {
    it(`${name} → ${status}`, () => {
      const result = request(text);
      expect(result.status).toBe(status);
      expect(result.head.error).toContain(reason);
    });
  }
});

describe('parseResponseHead', () => {
  it('reads the status line with and without a reason phrase', () => {
    const ok = response('HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\n');
    expect(ok.status).toBe(HEAD_OK);
    expect(ok.head.statusCode).toBe(200);
    expect(ok.head.reason).toBe('OK');
    expect(ok.head.contentLength).toBe(5);
    const bare = response('HTTP/1.1 204\r\n\r\n');
    expect(bare.status).toBe(HEAD_OK);
    expect(bare.head.statusCode).toBe(204);
    expect(bare.head.reason).toBe('');
    const old = response('HTTP/1.0 404 Not Found Here\r\n\r\n');
    expect(old.head.versionMinor).toBe(0);
    expect(old.head.reason).toBe('Not Found Here');
  });

  it('reads transfer codings: chunked last means chunked, anything else does not', () => {
    expect(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n').head.chunked).toBe(true);
    expect(response('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked, gzip\r\n\r\n').head.chunked).toBe(false);
    const both = response('HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n');
    expect(both.status).toBe(HEAD_OK);
    expect(both.head.chunked).toBe(true);
    expect(both.head.transferEncoding).toBe(true);
  });

  const bad: Array<[string, string]> = [
    ['garbage', 'garbage garbage\r\n\r\n'],
    ['HTTP/2', 'HTTP/2 200 OK\r\n\r\n'],
    ['two-digit status', 'HTTP/1.1 20 OK\r\n\r\n'],
    ['status 600', 'HTTP/1.1 600 Odd\r\n\r\n'],
    ['letters in the status', 'HTTP/1.1 2x0 OK\r\n\r\n'],
    ['control byte in the reason', 'HTTP/1.1 200 O\u0001K\r\n\r\n'],
    ['obs-fold', 'HTTP/1.1 200 OK\r\nX: a\r\n b\r\n\r\n'],
    ['bad Content-Length', 'HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n'],
  ];
  for (const [name, text] of bad) {
    it(`refuses ${name}`, () => {
      const result = response(text);
      expect(result.status).not.toBe(HEAD_OK);
      expect(result.head.error).not.toBe('');
    });
  }
});

describe('a head split across reads', () => {
  it('is found and parsed the same when fed byte by byte', () => {
    const text = 'POST /x HTTP/1.1\r\nHost: a\r\nContent-Length: 2\r\n\r\nhi';
    const bytes = Buffer.from(text, 'latin1');
    const acc = new HeadBuffer();
    let end = -1;
    for (let i = 0; i < bytes.length && end < 0; i++) {
      const prev = acc.length;
      acc.append(bytes, i, i + 1);
      end = acc.findEnd(Math.max(0, prev - 3));
    }
    expect(end).toBe(text.indexOf('\r\n\r\n'));
    const head = new HttpHead();
    expect(parseRequestHead(acc.text(end + 4), acc.bytes, 0, head, LIMITS)).toBe(HEAD_OK);
    expect(head.contentLength).toBe(2);
  });

  it('never matches stale bytes left from a previous, longer head', () => {
    const acc = new HeadBuffer();
    const first = Buffer.from('GET / HTTP/1.1\r\nHost: a\r\n\r\n', 'latin1');
    acc.append(first, 0, first.length);
    expect(acc.findEnd(0)).toBeGreaterThan(0);
    acc.reset();
    const partial = Buffer.from('GET / HTTP/1.1\r\nHost', 'latin1');
    acc.append(partial, 0, partial.length);
    expect(acc.findEnd(0)).toBe(-1);
  });
});
