/**
 * Finds the end of a message head in a byte stream, for requests and
 * responses alike. The usual head arrives whole in one read: it is found with
 * one indexOf and decoded straight from that read, nothing copied. A head
 * split across reads is held in a HeadBuffer (bounded by the size limit) and
 * the search resumes where it stopped.
 */
import { HEAD_END } from './chars.js';
import { HeadBuffer } from './head-buffer.js';

const EMPTY = Buffer.alloc(0);

/** read(): the head is not complete yet; its bytes are held. */
export const HEAD_INCOMPLETE = -1;
/** read(): the head is over the size limit (its first bytes are held, for the caller to look at). */
export const HEAD_TOO_LARGE = -2;

export class HeadReader {
  /** Bytes of a head that has not ended yet. */
  readonly pending = new HeadBuffer();
  /** The last complete head, decoded as latin1, ending with CRLF CRLF. */
  text = '';
  /**
   * The same head as bytes: bytes[base, base + text.length). They are the
   * read's own buffer or the held copy, valid until the next read() (and,
   * for an upstream read, until its callback returns).
   */
  bytes: Buffer = EMPTY;
  base = 0;

  constructor(private readonly maxBytes: number) {}

  get holding(): boolean {
    return this.pending.length > 0;
  }

  /**
   * Reads head bytes from buf[start…]. Returns the offset just past the
   * head when it is complete (`text` holds it), HEAD_INCOMPLETE, or
   * HEAD_TOO_LARGE.
   */
  read(buf: Buffer, start: number): number {
    const max = this.maxBytes;
    const len = buf.length;
    const acc = this.pending;
    if (acc.length === 0) {
      const at = buf.indexOf(HEAD_END, start);
      if (at >= 0 && at + 4 - start <= max) {
        this.text = buf.toString('latin1', start, at + 4);
        this.bytes = buf;
        this.base = start;
        return at + 4;
      }
      acc.append(buf, start, Math.min(len, start + max + 4));
      return at >= 0 || len - start > max ? HEAD_TOO_LARGE : HEAD_INCOMPLETE;
    }
    const prev = acc.length;
    acc.append(buf, start, Math.min(len, start + max + 4 - prev));
    const at = acc.findEnd(Math.max(0, prev - 3));
    if (at < 0) return acc.length > max ? HEAD_TOO_LARGE : HEAD_INCOMPLETE;
    if (at + 4 > max) return HEAD_TOO_LARGE;
    this.text = acc.text(at + 4);
    this.bytes = acc.bytes;
    this.base = 0;
    acc.reset();
    return start + (at + 4 - prev);
  }

  /** Drops the reference to the last head's bytes once they are parsed, so a waiting connection keeps no read buffer alive. */
  forgetBytes(): void {
    this.bytes = EMPTY;
  }

  /** Forgets held bytes (a new message, or the connection is done). */
  reset(): void {
    this.pending.reset();
    this.bytes = EMPTY;
  }
}
