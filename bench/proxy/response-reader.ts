/**
 * Finds HTTP/1.1 response boundaries in a keep-alive byte stream, for the
 * constant-rate generator: Content-Length and chunked bodies, heads split
 * across reads. It reads only what framing needs (status, Content-Length,
 * Transfer-Encoding, Connection); a response it cannot frame is an error, not
 * a guess.
 */

/** A response head larger than this is not what the benchmark's upstream sends. */
export const MAX_HEAD_BYTES = 64 * 1024;

const HEAD_END = Buffer.from('\r\n\r\n', 'latin1');
const CRLF = Buffer.from('\r\n', 'latin1');

export interface ResponseEvents {
  /** One whole response (head and body) was read. */
  onResponse(status: number, close: boolean): void;
}

type State = 'head' | 'length' | 'chunk-size' | 'chunk-data' | 'trailers';

export class ResponseReader {
  private buffered: Buffer = Buffer.alloc(0);
  private state: State = 'head';
  /** Body bytes (or chunk bytes plus the chunk's CRLF) still to skip. */
  private remaining = 0;
  private status = 0;
  private close = false;

  constructor(private readonly events: ResponseEvents) {}

  /** Feeds bytes; throws on a response it cannot frame. */
  push(chunk: Buffer): void {
    let data = this.buffered.length === 0 ? chunk : Buffer.concat([this.buffered, chunk]);
    let offset = 0;
    for (;;) {
      if (this.state === 'length' || this.state === 'chunk-data') {
        const take = Math.min(this.remaining, data.length - offset);
        this.remaining -= take;
        offset += take;
        if (this.remaining > 0) break;
        if (this.state === 'length') this.finish();
        else this.state = 'chunk-size';
        continue;
      }
      const end = data.indexOf(this.state === 'head' ? HEAD_END : CRLF, offset);
      if (end < 0) {
        if (data.length - offset > MAX_HEAD_BYTES) throw new Error(`response head or chunk line longer than ${MAX_HEAD_BYTES} bytes`);
        break;
      }
      if (this.state === 'head') {
        this.readHead(data.toString('latin1', offset, end));
        offset = end + HEAD_END.length;
      } else if (this.state === 'chunk-size') {
        const line = data.toString('latin1', offset, end);
        offset = end + CRLF.length;
        const size = Number.parseInt(line, 16);
        if (!Number.isFinite(size) || size < 0 || !/^[0-9a-fA-F]+/.test(line)) throw new Error(`bad chunk size line '${line.slice(0, 40)}'`);
        if (size === 0) {
          this.state = 'trailers';
        } else {
          this.remaining = size + CRLF.length;
          this.state = 'chunk-data';
        }
      } else {
        // Trailer lines until the empty line that ends the message.
        const empty = end === offset;
        offset = end + CRLF.length;
        if (empty) this.finish();
      }
    }
    if (offset >= data.length) {
      this.buffered = Buffer.alloc(0);
    } else {
      // Keep only the unread tail (a copy, so the whole read buffer is not retained).
      data = Buffer.from(data.subarray(offset));
      this.buffered = data;
    }
  }

  private readHead(head: string): void {
    const lines = head.split('\r\n');
    const statusLine = /^HTTP\/1\.[01] (\d{3})/.exec(lines[0] ?? '');
    if (statusLine === null) throw new Error(`bad status line '${(lines[0] ?? '').slice(0, 80)}'`);
    this.status = Number(statusLine[1]);
    let length = -1;
    let chunked = false;
    this.close = false;
    for (let i = 1; i < lines.length; i++) {
      const line = lines[i]!;
      const colon = line.indexOf(':');
      if (colon < 0) continue;
      const name = line.slice(0, colon).trim().toLowerCase();
      const value = line.slice(colon + 1).trim().toLowerCase();
      if (name === 'content-length') length = Number(value);
      else if (name === 'transfer-encoding') chunked = value.endsWith('chunked');
      else if (name === 'connection') this.close = value.includes('close');
    }
    if (chunked) {
      this.state = 'chunk-size';
    } else if (length >= 0 && Number.isSafeInteger(length)) {
      this.remaining = length;
      this.state = 'length';
    } else if (this.status === 204 || this.status === 304 || (this.status >= 100 && this.status < 200)) {
      this.remaining = 0;
      this.state = 'length';
    } else {
      throw new Error(`response ${this.status} has neither Content-Length nor chunked framing`);
    }
  }

  private finish(): void {
    this.state = 'head';
    // 1xx responses (100 Continue) precede the real one and do not end the exchange.
    if (this.status >= 200) this.events.onResponse(this.status, this.close);
  }
}
