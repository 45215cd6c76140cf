import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../lib/errors.js';
import { LineSplitter, MAX_LINE_BYTES, formatStockRequest, parseInventoryRequest, parseStockAnswer } from './inventory-protocol.js';

const TRACEPARENT = '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01';

describe('parseInventoryRequest', () => {
  it('reads STOCK <id> with and without a traceparent', () => {
    expect(parseInventoryRequest('STOCK 42')).toEqual({ kind: 'stock', productId: '42', traceparent: undefined });
    expect(parseInventoryRequest(`STOCK sku_7-a ${TRACEPARENT}`)).toEqual({ kind: 'stock', productId: 'sku_7-a', traceparent: TRACEPARENT });
    expect(parseInventoryRequest(formatStockRequest('42', TRACEPARENT).trimEnd())).toEqual({
      kind: 'stock',
      productId: '42',
      traceparent: TRACEPARENT,
    });
  });

  it('says what is wrong with anything else', () => {
    expect(parseInventoryRequest('HELLO')).toEqual({ kind: 'invalid', reason: "unknown command 'HELLO' (expected STOCK <id>)" });
    expect(parseInventoryRequest('stock 42')).toMatchObject({ kind: 'invalid' });
    expect(parseInventoryRequest('STOCK')).toMatchObject({ kind: 'invalid', reason: expect.stringContaining('expected STOCK <id>') });
    expect(parseInventoryRequest('STOCK a/b')).toMatchObject({ kind: 'invalid' });
    expect(parseInventoryRequest(`STOCK 42 ${TRACEPARENT} extra`)).toMatchObject({ kind: 'invalid' });
    expect(parseInventoryRequest('STOCK 42 00-abc')).toEqual({
      kind: 'invalid',
      reason: 'malformed traceparent (expected 00-<32 hex>-<16 hex>-<2 hex>)',
    });
    expect(parseInventoryRequest('')).toMatchObject({ kind: 'invalid' });
  });
});

describe('parseStockAnswer', () => {
  it('returns the units for the asked id', () => {
    expect(parseStockAnswer('42 17', '42')).toBe(17);
  });

  it('turns ERR lines and mismatches into TM_ERR_UPSTREAM', () => {
    for (const line of ['ERR out of coffee', '43 17', '42 many', '']) {
      let caught: unknown;
      try {
        parseStockAnswer(line, '42');
      } catch (err) {
        caught = err;
      }
      expect(isTracemeshError(caught, 'TM_ERR_UPSTREAM'), line).toBe(true);
    }
  });
});

describe('LineSplitter', () => {
  it('joins lines split across chunks and drops \\n or \\r\\n', () => {
    const splitter = new LineSplitter(MAX_LINE_BYTES);
    expect(splitter.push(Buffer.from('STOCK 4'))).toEqual([]);
    expect(splitter.push(Buffer.from('2\r\nSTOCK 7\nSTO'))).toEqual(['STOCK 42', 'STOCK 7']);
    expect(splitter.push(Buffer.from('CK 9\n'))).toEqual(['STOCK 9']);
    expect(splitter.push(Buffer.from('\n'))).toEqual(['']);
  });

  it('refuses a line longer than the limit, with or without its newline yet', () => {
    expect(new LineSplitter(8).push(Buffer.from('123456789'))).toBeUndefined();
    expect(new LineSplitter(8).push(Buffer.from('12345678\n'))).toBeUndefined();
    expect(new LineSplitter(8).push(Buffer.from('1234567\n'))).toEqual(['1234567']);
    const splitter = new LineSplitter(8);
    expect(splitter.push(Buffer.from('1234'))).toEqual([]);
    expect(splitter.push(Buffer.from('5678'))).toBeUndefined();
  });
});
