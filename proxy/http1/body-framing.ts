/**
 * Where a message body ends (RFC 9112 §6.3): no body, Content-Length bytes,
 * a chunked body (raw, see chunked.ts), or until the connection closes
 * (responses only). One per connection and direction, reset per message.
 */
import { CHUNKED_ERROR, CHUNKED_MORE, ChunkedScanner } from './chunked.js';
import type { HttpHead } from './head.js';

export const BODY_NONE = 0;
export const BODY_LENGTH = 1;
export const BODY_CHUNKED = 2;
export const BODY_UNTIL_CLOSE = 3;

/** Returned by consume() when the body continues past the given bytes. */
export const BODY_MORE = CHUNKED_MORE;
/** Returned by consume() when a chunked body is malformed (see `error`). */
export const BODY_ERROR = CHUNKED_ERROR;

export class BodyFraming {
  mode = BODY_NONE;
  /** BODY_LENGTH: bytes still to come. */
  private remaining = 0;
  /** Body bytes seen so far (chunk data only for chunked bodies). */
  private lengthBytes = 0;
  private readonly chunked: ChunkedScanner;

  constructor(maxChunkMetaBytes: number) {
    this.chunked = new ChunkedScanner(maxChunkMetaBytes);
  }

  /** Request framing; the head was already checked by parseRequestHead. */
  startRequest(head: HttpHead, maxChunkMetaBytes: number): void {
    this.lengthBytes = 0;
    if (head.chunked) {
      this.mode = BODY_CHUNKED;
      this.chunked.reset(maxChunkMetaBytes);
    } else if (head.contentLength > 0) {
      this.mode = BODY_LENGTH;
      this.remaining = head.contentLength;
    } else {
      this.mode = BODY_NONE;
    }
  }

  /**
   * Response framing. Returns false when the response cannot be framed (a
   * chunked coding that is not the last one).
   */
  startResponse(head: HttpHead, requestMethod: string, maxChunkMetaBytes: number): boolean {
    this.lengthBytes = 0;
    const status = head.statusCode;
    if (requestMethod === 'HEAD' || status < 200 || status === 204 || status === 304) {
      this.mode = BODY_NONE;
    } else if (head.transferEncoding) {
      if (head.chunkedMisplaced) return false;
      if (head.chunked) {
        this.mode = BODY_CHUNKED;
        this.chunked.reset(maxChunkMetaBytes);
      } else {
        this.mode = BODY_UNTIL_CLOSE;
      }
    } else if (head.contentLength > 0) {
      this.mode = BODY_LENGTH;
      this.remaining = head.contentLength;
    } else if (head.contentLength === 0) {
      this.mode = BODY_NONE;
    } else {
      this.mode = BODY_UNTIL_CLOSE;
    }
    return true;
  }

  get error(): string {
    return this.chunked.error;
  }

  /** Body size as the span reports it: data bytes, without chunked framing. */
  get bodyBytes(): number {
    return this.mode === BODY_CHUNKED ? this.chunked.dataBytes : this.lengthBytes;
  }

  /**
   * Consumes body bytes from buf[start, end). Returns the offset just past
   * the body's end when it ends there, BODY_MORE when all of them are body
   * and more is to come, or BODY_ERROR.
   */
  consume(buf: Buffer, start: number, end: number): number {
    switch (this.mode) {
      case BODY_LENGTH: {
        const available = end - start;
        if (available < this.remaining) {
          this.remaining -= available;
          this.lengthBytes += available;
          return BODY_MORE;
        }
        const bodyEnd = start + this.remaining;
        this.lengthBytes += this.remaining;
        this.remaining = 0;
        return bodyEnd;
      }
      case BODY_CHUNKED:
        return this.chunked.scan(buf, start, end);
      case BODY_UNTIL_CLOSE:
        this.lengthBytes += end - start;
        return BODY_MORE;
      default:
        return start;
    }
  }
}
