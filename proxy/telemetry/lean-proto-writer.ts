/**
 * A growable protobuf byte writer for the proxy's OTLP encoders (spans and
 * metrics).
 *
 * Why not the collector's ProtoWriter: it copies a nested message's bytes on
 * every join() and allocates a Buffer per string, which is right for crafting
 * test input and responses but costs several copies per span here. This
 * writer reserves one length byte per nested message and, in the rare case a
 * message is 128 bytes or longer, slides it right in place (copyWithin);
 * strings are written straight into the buffer.
 */

const TWO_POW_32 = 4294967296;
/** A string this short is at most 126 UTF-8 bytes: its length fits one varint byte. */
const SHORT_STRING_CHARS = 42;

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_FIXED32 = 5;

export function tag(field: number, wireType: number): number {
  return (field << 3) | wireType;
}

function hexDigit(c: number): number {
  if (c >= 48 && c <= 57) return c - 48;
  if (c >= 97 && c <= 102) return c - 87;
  return -1;
}

/** Bytes a varint of `value` (non-negative, < 2^53) takes. */
export function varintSize(value: number): number {
  let n = 1;
  let v = value;
  while (v >= 0x80) {
    v = Math.floor(v / 0x80);
    n++;
  }
  return n;
}

export class LeanProtoWriter {
  buf: Buffer;
  pos = 0;

  constructor(initialSize = 64 * 1024) {
    this.buf = Buffer.allocUnsafe(initialSize);
  }

  reset(): void {
    this.pos = 0;
  }

  ensure(bytes: number): void {
    const needed = this.pos + bytes;
    if (needed <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.buf.copy(next, 0, 0, this.pos);
    this.buf = next;
  }

  byte(value: number): void {
    this.ensure(1);
    this.buf[this.pos++] = value;
  }

  /** Non-negative integers up to 2^53. */
  varint(value: number): void {
    this.ensure(10);
    const buf = this.buf;
    let v = value;
    while (v >= 0x80) {
      buf[this.pos++] = (v % 0x80) | 0x80;
      v = Math.floor(v / 0x80);
    }
    buf[this.pos++] = v;
  }

  /** int64 varint: negatives as 64-bit two's complement (ten bytes), as protobuf does. */
  int64(value: number): void {
    if (value >= 0) {
      this.varint(value);
      return;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(10);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
  }

  fixed32(value: number): void {
    this.ensure(4);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.pos += 4;
  }

  /** fixed64 of a non-negative integer below 2^53. */
  fixed64(value: number): void {
    this.ensure(8);
    this.buf.writeUInt32LE(value >>> 0, this.pos);
    this.buf.writeUInt32LE(Math.floor(value / TWO_POW_32) >>> 0, this.pos + 4);
    this.pos += 8;
  }

  double(value: number): void {
    this.ensure(8);
    this.buf.writeDoubleLE(value, this.pos);
    this.pos += 8;
  }

  /** Unix nanoseconds of an epoch-microsecond integer (< 2^53), as fixed64 without bigint. */
  fixed64NanosFromMicros(micros: number): void {
    this.ensure(8);
    const microsHigh = Math.floor(micros / TWO_POW_32);
    const lowNanos = (micros >>> 0) * 1000; // < 2^42: exact
    const carry = Math.floor(lowNanos / TWO_POW_32);
    this.buf.writeUInt32LE(lowNanos >>> 0, this.pos);
    this.buf.writeUInt32LE((microsHigh * 1000 + carry) >>> 0, this.pos + 4);
    this.pos += 8;
  }

  /**
   * Length-prefixed UTF-8. Short ASCII strings (methods, paths, service
   * names: most of a span) are copied by a JS loop, which for a few dozen
   * bytes is several times cheaper than a call into Buffer.write.
   */
  string(value: string): void {
    const len = value.length;
    if (len <= SHORT_STRING_CHARS) {
      this.ensure(1 + len * 3);
      const buf = this.buf;
      const start = this.pos + 1;
      let i = 0;
      for (; i < len; i++) {
        const c = value.charCodeAt(i);
        if (c >= 0x80) break;
        buf[start + i] = c;
      }
      const n = i === len ? len : buf.write(value, start, 'utf8');
      buf[this.pos] = n;
      this.pos = start + n;
      return;
    }
    const n = Buffer.byteLength(value, 'utf8');
    this.varint(n);
    this.ensure(n);
    this.pos += this.buf.write(value, this.pos, 'utf8');
  }

  /** Length-prefixed bytes of a lowercase hex id. */
  hexBytes(hex: string): void {
    const len = hex.length;
    if ((len === 32 || len === 16) && this.hexLoop(hex, len)) return;
    this.ensure(1 + (hex.length >>> 1));
    // The length is what was written: a malformed id stays malformed (and the collector says so) instead of corrupting the message.
    const n = this.buf.write(hex, this.pos + 1, 'hex');
    this.buf[this.pos] = n;
    this.pos += 1 + n;
  }

  /** The usual 8- and 16-byte ids without a call into Buffer.write; false (nothing written) if not lowercase hex. */
  private hexLoop(hex: string, len: number): boolean {
    this.ensure(1 + (len >>> 1));
    const buf = this.buf;
    const start = this.pos + 1;
    for (let i = 0, o = start; i < len; i += 2, o++) {
      const hi = hexDigit(hex.charCodeAt(i));
      const lo = hexDigit(hex.charCodeAt(i + 1));
      if (hi < 0 || lo < 0) return false;
      buf[o] = (hi << 4) | lo;
    }
    buf[this.pos] = len >>> 1;
    this.pos = start + (len >>> 1);
    return true;
  }

  /** Copies bytes in; a JS loop for the short ones (precomputed keys), where a call into set() costs more. */
  raw(bytes: Uint8Array): void {
    const n = bytes.length;
    this.ensure(n);
    if (n <= 64) {
      const buf = this.buf;
      const at = this.pos;
      for (let i = 0; i < n; i++) buf[at + i] = bytes[i] as number;
    } else {
      this.buf.set(bytes, this.pos);
    }
    this.pos += n;
  }

  /** Starts a nested message: reserves one length byte, returns where it is. */
  begin(): number {
    this.ensure(1);
    return this.pos++;
  }

  /** Ends the message begun at `at`: writes its length, sliding the content if it needs more than one byte. */
  end(at: number): void {
    const len = this.pos - at - 1;
    if (len < 0x80) {
      this.buf[at] = len;
      return;
    }
    const lenBytes = len < 0x4000 ? 2 : len < 0x200000 ? 3 : len < 0x10000000 ? 4 : 5;
    const extra = lenBytes - 1;
    this.ensure(extra);
    this.buf.copyWithin(at + 1 + extra, at + 1, this.pos);
    this.pos += extra;
    let v = len;
    let p = at;
    while (v >= 0x80) {
      this.buf[p++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.buf[p] = v;
  }

  /** A copy of what was written: the scratch buffer is reused while the copy is still being sent. */
  finish(): Buffer {
    return Buffer.from(this.buf.subarray(0, this.pos));
  }
}
