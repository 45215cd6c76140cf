/**
 * The inventory line protocol, shared by the server and web's client:
 *
 *   request  STOCK <id>[ <traceparent>]\n      (a trailing \r is tolerated)
 *   answer   <id> <n>\n                        n = units in stock
 *            ERR <reason>\n                    anything the server cannot answer
 *
 * Plain TCP has no headers, so the optional W3C `traceparent` token is how a
 * caller's trace continues into inventory's span; without it the server span
 * starts a new trace.
 */
import { TracemeshError } from '../../lib/errors.js';
import { isProductId } from './catalog.js';

/** Longest line either side accepts, newline included; longer is an error, never buffered. */
export const MAX_LINE_BYTES = 256;

const TRACEPARENT_PATTERN = /^[0-9a-f]{2}-[0-9a-f]{32}-[0-9a-f]{16}-[0-9a-f]{2}$/;

export type InventoryRequest =
  | { readonly kind: 'stock'; readonly productId: string; readonly traceparent: string | undefined }
  | { readonly kind: 'invalid'; readonly reason: string };

export function parseInventoryRequest(line: string): InventoryRequest {
  const words = line.split(' ');
  const [command, productId, traceparent] = words;
  if (command !== 'STOCK') {
    return { kind: 'invalid', reason: `unknown command '${(command ?? '').slice(0, 16)}' (expected STOCK <id>)` };
  }
  if (words.length > 3 || productId === undefined || !isProductId(productId)) {
    return { kind: 'invalid', reason: 'expected STOCK <id> [traceparent], id of 1-64 letters, digits, _ or -' };
  }
  if (traceparent !== undefined && !TRACEPARENT_PATTERN.test(traceparent)) {
    return { kind: 'invalid', reason: 'malformed traceparent (expected 00-<32 hex>-<16 hex>-<2 hex>)' };
  }
  return { kind: 'stock', productId, traceparent };
}

export function formatStockRequest(productId: string, traceparent: string | undefined): string {
  return traceparent === undefined ? `STOCK ${productId}\n` : `STOCK ${productId} ${traceparent}\n`;
}

export function formatStockAnswer(productId: string, units: number): string {
  return `${productId} ${units}\n`;
}

export function formatErrorAnswer(reason: string): string {
  return `ERR ${reason}\n`;
}

/** The units in an answer line for `productId`; TM_ERR_UPSTREAM naming the line when it is an ERR or malformed. */
export function parseStockAnswer(line: string, productId: string): number {
  if (line.startsWith('ERR ')) throw new TracemeshError('TM_ERR_UPSTREAM', `inventory answered: ${line.slice(4, 4 + 200)}`);
  const match = /^(\S+) (\d{1,9})$/.exec(line);
  if (match === null || match[1] !== productId) {
    throw new TracemeshError('TM_ERR_UPSTREAM', `inventory answered a malformed line for ${productId}: '${line.slice(0, 80)}'`);
  }
  return Number(match[2]);
}

/**
 * Cuts a byte stream into lines of at most `maxLineBytes`. Keeps at most one
 * partial line; a line that grows past the limit makes push() return
 * undefined and the caller closes the connection.
 */
export class LineSplitter {
  private pending: Buffer;
  private readonly maxLineBytes: number;

  constructor(maxLineBytes: number) {
    this.pending = Buffer.alloc(0);
    this.maxLineBytes = maxLineBytes;
  }

  /** Complete lines in this chunk (without \n or \r\n), or undefined when a line is too long. */
  push(chunk: Buffer): string[] | undefined {
    const data = this.pending.length === 0 ? chunk : Buffer.concat([this.pending, chunk]);
    const lines: string[] = [];
    let start = 0;
    for (let newline = data.indexOf(0x0a, start); newline !== -1; newline = data.indexOf(0x0a, start)) {
      if (newline + 1 - start > this.maxLineBytes) return undefined;
      const end = newline > start && data[newline - 1] === 0x0d ? newline - 1 : newline;
      lines.push(data.toString('utf8', start, end));
      start = newline + 1;
    }
    if (data.length - start >= this.maxLineBytes) return undefined;
    this.pending = start === data.length ? Buffer.alloc(0) : Buffer.from(data.subarray(start));
    return lines;
  }
}
