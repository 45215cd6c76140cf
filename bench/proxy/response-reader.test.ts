import { describe, expect, it } from 'vitest';
import { MAX_HEAD_BYTES, ResponseReader } from './response-reader.js';

function collect(): { reader: ResponseReader; seen: Array<[number, boolean]> } {
  const seen: Array<[number, boolean]> = [];
  return { reader: new ResponseReader({ onResponse: (status, close) => seen.push([status, close]) }), seen };
}

const LENGTH = 'HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello';
const CHUNKED = 'HTTP/1.1 404 Not Found\r\nTransfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n1;ext=1\r\n!\r\n0\r\nX-Trailer: y\r\n\r\n';
const CONTINUE = 'HTTP/1.1 100 Continue\r\n\r\n';
const EMPTY = 'HTTP/1.1 204 No Content\r\n\r\n';

describe('ResponseReader', () => {
  it('frames Content-Length, chunked (with trailers), 100 Continue and 204 responses split at every byte', () => {
    const stream = Buffer.from(LENGTH + CONTINUE + CHUNKED + EMPTY + LENGTH, 'latin1');
    for (let cut = 0; cut <= stream.length; cut++) {
      const { reader, seen } = collect();
      reader.push(stream.subarray(0, cut));
      reader.push(stream.subarray(cut));
      expect(seen, `cut at ${cut}`).toEqual([
        [200, false],
        [404, true],
        [204, false],
        [200, false],
      ]);
    }
  });

  it('frames a stream fed one byte at a time', () => {
    const { reader, seen } = collect();
    for (const byte of Buffer.from(CHUNKED + LENGTH)) reader.push(Buffer.from([byte]));
    expect(seen).toEqual([
      [404, true],
      [200, false],
    ]);
  });

  it('rejects a response it cannot frame, a bad status line, a bad chunk size and an endless head', () => {
    expect(() => collect().reader.push(Buffer.from('HTTP/1.1 200 OK\r\n\r\n'))).toThrow(/neither Content-Length nor chunked/);
    expect(() => collect().reader.push(Buffer.from('SSH-2.0-x\r\n\r\n'))).toThrow(/bad status line/);
    expect(() => collect().reader.push(Buffer.from('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n'))).toThrow(/bad chunk size/);
    expect(() => collect().reader.push(Buffer.alloc(MAX_HEAD_BYTES + 1, 'a'))).toThrow(/longer than/);
  });
});
