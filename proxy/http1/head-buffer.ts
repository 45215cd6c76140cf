/**
 * Collects a head that arrives in more than one read. The usual head comes
 * whole in one read and never touches this; a split one is copied into a
 * buffer that grows by doubling, so a head fed byte by byte costs linear
 * time, and the search for the empty line resumes where it stopped.
 */
import { HEAD_END } from './chars.js';

const EMPTY = Buffer.alloc(0);
const INITIAL_CAPACITY = 1024;

export class HeadBuffer {
  private buf: Buffer = EMPTY;
  length = 0;

  append(src: Buffer, start: number, end: number): void {
    const needed = this.length + (end - start);
    if (needed > this.buf.length) {
      let capacity = Math.max(INITIAL_CAPACITY, this.buf.length * 2);
      while (capacity < needed) capacity *= 2;
      const grown = Buffer.allocUnsafe(capacity);
      this.buf.copy(grown, 0, 0, this.length);
      this.buf = grown;
    }
    src.copy(this.buf, this.length, start, end);
    this.length = needed;
  }

  /**
   * Offset of the CRLF CRLF that ends the head, searching from `from`; -1
   * when not there yet. Bytes past `length` are stale and never count.
   */
  findEnd(from: number): number {
    return this.indexOf(HEAD_END, from);
  }

  /** Offset of `needle` wholly before `length`, -1 when absent. */
  indexOf(needle: Buffer, from: number): number {
    const at = this.buf.indexOf(needle, from);
    return at >= 0 && at + needle.length <= this.length ? at : -1;
  }

  text(end: number): string {
    return this.buf.toString('latin1', 0, end);
  }

  /** The held bytes from offset 0 (the head parser reads them beside text()); valid until the next append or reset. */
  get bytes(): Buffer {
    return this.buf;
  }

  /** Forgets the contents; a large buffer is released so an idle connection stays small. */
  reset(): void {
    this.length = 0;
    if (this.buf.length > 16 * 1024) this.buf = EMPTY;
  }
}
