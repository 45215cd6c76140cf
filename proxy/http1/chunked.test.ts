import { describe, expect, it } from 'vitest';
import { CHUNKED_ERROR, CHUNKED_MORE, ChunkedScanner } from './chunked.js';

function scanWhole(body: string, maxMeta = 1024): { result: number; scanner: ChunkedScanner } {
  const scanner = new ChunkedScanner(maxMeta);
  const buf = Buffer.from(body, 'latin1');
  return { result: scanner.scan(buf, 0, buf.length), scanner };
}

/** Feeds one byte per call; returns the offset (in the whole input) where the body ended, or the last result. */
function scanByteByByte(body: string): { end: number; scanner: ChunkedScanner } {
  const scanner = new ChunkedScanner(1024);
  const buf = Buffer.from(body, 'latin1');
  for (let i = 0; i < buf.length; i++) {
    const r = scanner.scan(buf, i, i + 1);
    if (r === CHUNKED_ERROR) return { end: CHUNKED_ERROR, scanner };
    if (r !== CHUNKED_MORE) return { end: r, scanner };
  }
  return { end: CHUNKED_MORE, scanner };
}

const GOOD = '5\r\nhello\r\n6;name=value;flag\r\n world\r\nA \t; ext="q"\r\n0123456789\r\n0\r\nx-sum: 21\r\nx-other:\tv\r\n\r\n';

describe('ChunkedScanner', () => {
  it('finds the end of a chunked body with extensions and trailers', () => {
    const { result, scanner } = scanWhole(GOOD + 'NEXT REQUEST');
    expect(result).toBe(GOOD.length);
    expect(scanner.done).toBe(true);
    expect(scanner.dataBytes).toBe(21);
  });

  it('finds the same end when fed byte by byte', () => {
    const { end, scanner } = scanByteByByte(GOOD);
    expect(end).toBe(GOOD.length);
    expect(scanner.dataBytes).toBe(21);
  });

  it('finds the same end at every split point', () => {
    const buf = Buffer.from(GOOD, 'latin1');
    for (let split = 1; split < buf.length; split++) {
      const scanner = new ChunkedScanner(1024);
      expect(scanner.scan(buf, 0, split)).toBe(CHUNKED_MORE);
      expect(scanner.scan(buf, split, buf.length)).toBe(buf.length);
    }
  });

  it('asks for more while the body is incomplete', () => {
    expect(scanWhole('5\r\nhel').result).toBe(CHUNKED_MORE);
    expect(scanWhole('0\r\n').result).toBe(CHUNKED_MORE);
    expect(scanWhole('0\r\nx: 1\r\n').result).toBe(CHUNKED_MORE);
  });

  it('accepts upper-case hex and leading zeros', () => {
    const body = '00A\r\n0123456789\r\n000\r\n\r\n';
    expect(scanWhole(body).result).toBe(body.length);
  });

  it('skips large chunks by count in constant memory', () => {
    const scanner = new ChunkedScanner(1024);
    const headLine = Buffer.from('40000000\r\n', 'latin1'); // 1 GiB chunk
    expect(scanner.scan(headLine, 0, headLine.length)).toBe(CHUNKED_MORE);
    const block = Buffer.alloc(64 * 1024);
    for (let i = 0; i < 16 * 1024; i++) expect(scanner.scan(block, 0, block.length)).toBe(CHUNKED_MORE);
    const tail = Buffer.from('\r\n0\r\n\r\n', 'latin1');
    expect(scanner.scan(tail, 0, tail.length)).toBe(tail.length);
    expect(scanner.dataBytes).toBe(1024 * 1024 * 1024);
  });

  const bad: Array<[string, string]> = [
    ['a non-hex size', 'g\r\n'],
    ['an empty size line', '\r\n'],
    ['a bare LF after the size', '5\nhello\r\n0\r\n\r\n'],
    ['data longer than its size', '5\r\nhelloX\r\n0\r\n\r\n'],
    ['a bare LF after the data', '5\r\nhello\n0\r\n\r\n'],
    ['a size over 2^52', '10000000000000\r\n'],
    ['text after the size that is not an extension', '5 x\r\nhello\r\n'],
    ['a control byte in an extension', '5;a\u0001b\r\nhello\r\n'],
    ['a negative size', '-5\r\n'],
    ['a trailer without a colon', '0\r\nbad trailer\r\n\r\n'],
    ['a trailer with a bare LF', '0\r\nx: 1\n\r\n'],
    ['a folded trailer', '0\r\nx: 1\r\n y\r\n\r\n'],
    ['a last chunk not ended by CRLF', '0\r\n\rX'],
  ];
  for (const [name, body] of bad) {
    it(`refuses ${name}`, () => {
      const { result, scanner } = scanWhole(body);
      expect(result).toBe(CHUNKED_ERROR);
      expect(scanner.error).not.toBe('');
      expect(scanByteByByte(body).end).toBe(CHUNKED_ERROR);
    });
  }

  it('bounds chunk-size lines and trailers', () => {
    expect(scanWhole(`5;${'x'.repeat(100)}\r\nhello\r\n0\r\n\r\n`, 64).result).toBe(CHUNKED_ERROR);
    expect(scanWhole(`0\r\n${'x: yyyyyyyy\r\n'.repeat(10)}\r\n`, 64).result).toBe(CHUNKED_ERROR);
  });

  it('stays failed after an error', () => {
    const scanner = new ChunkedScanner(1024);
    const bad = Buffer.from('z\r\n', 'latin1');
    expect(scanner.scan(bad, 0, bad.length)).toBe(CHUNKED_ERROR);
    const good = Buffer.from('0\r\n\r\n', 'latin1');
    expect(scanner.scan(good, 0, good.length)).toBe(CHUNKED_ERROR);
  });
});
