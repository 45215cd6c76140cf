/**
 * A ClickHouse RowBinary writer over one growing buffer: strings as varint
 * length + UTF-8 bytes, integers little-endian, Map and Array as a varint count
 * followed by their items. The collector's spool format for otel_traces: the
 * engine parses it about 1.7x faster than JSONEachRow (bench/results), and
 * writing it costs no JSON escaping and no string-to-Buffer copy of a whole batch.
 */
export class RowBinaryWriter {
  #buf: Buffer;
  #pos = 0;

  constructor(initialBytes = 1 << 20) {
    this.#buf = Buffer.allocUnsafe(initialBytes);
  }

  get length(): number {
    return this.#pos;
  }

  #ensure(bytes: number): void {
    const needed = this.#pos + bytes;
    if (needed <= this.#buf.length) return;
    let size = this.#buf.length * 2;
    while (size < needed) size *= 2;
    const next = Buffer.allocUnsafe(size);
    this.#buf.copy(next, 0, 0, this.#pos);
    this.#buf = next;
  }

  varint(value: number): void {
    this.#ensure(5);
    let v = value;
    while (v >= 0x80) {
      this.#buf[this.#pos++] = (v & 0x7f) | 0x80;
      v >>>= 7;
    }
    this.#buf[this.#pos++] = v;
  }

  /** UTF-8 with its byte length in front. The length is not known before encoding:
   * the bytes go one place right of the length, which almost always fits in one
   * byte; when it does not, they are moved right to make room. */
  string(value: string): void {
    this.#ensure(5 + value.length * 3);
    const start = this.#pos + 1;
    const written = this.#buf.write(value, start, 'utf8');
    if (written < 0x80) {
      this.#buf[this.#pos] = written;
      this.#pos = start + written;
      return;
    }
    const lengthBytes = written < 0x4000 ? 2 : written < 0x200000 ? 3 : written < 0x10000000 ? 4 : 5;
    this.#buf.copyWithin(this.#pos + lengthBytes, start, start + written);
    this.varint(written);
    this.#pos += written;
  }

  /** An ASCII string whose length is already known to be < 128 bytes (hex ids, enum names). */
  shortAscii(value: string): void {
    this.#ensure(1 + value.length);
    this.#buf[this.#pos] = value.length;
    this.#pos += 1 + this.#buf.write(value, this.#pos + 1, 'latin1');
  }

  uint8(value: number): void {
    this.#ensure(1);
    this.#buf[this.#pos++] = value;
  }

  uint64(value: number): void {
    this.#ensure(8);
    this.#buf.writeUInt32LE(value >>> 0, this.#pos);
    this.#buf.writeUInt32LE(Math.floor(value / 0x1_0000_0000), this.#pos + 4);
    this.#pos += 8;
  }

  int64(value: bigint): void {
    this.#ensure(8);
    this.#buf.writeBigInt64LE(value, this.#pos);
    this.#pos += 8;
  }

  /** Copies bytes encoded earlier (a cached run of columns). */
  raw(bytes: Buffer): void {
    this.#ensure(bytes.length);
    bytes.copy(this.#buf, this.#pos);
    this.#pos += bytes.length;
  }

  /** The bytes written since the last take, as a Buffer of their own; the writer starts over. */
  take(): Buffer {
    const out = Buffer.allocUnsafe(this.#pos);
    this.#buf.copy(out, 0, 0, this.#pos);
    this.#pos = 0;
    return out;
  }
}
