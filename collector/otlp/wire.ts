/**
 * The protobuf wire format: a bounds-checked reader for request bodies and a
 * tiny writer for responses (and for crafting test input).
 *
 * The reader is one object per request over the whole body. Nested messages
 * are not sliced: every read takes the `end` of the message being decoded, so
 * entering a sub-message is just computing its end offset. Errors are
 * OtlpMalformedError with the absolute byte offset; the decoders add the path.
 */
import { OtlpMalformedError } from './malformed.js';

export const WIRE_VARINT = 0;
export const WIRE_FIXED64 = 1;
export const WIRE_LEN = 2;
export const WIRE_START_GROUP = 3;
export const WIRE_END_GROUP = 4;
export const WIRE_FIXED32 = 5;

const WIRE_TYPE_NAMES: readonly string[] = [
  'varint',
  'fixed64',
  'length-delimited',
  'start group',
  'end group',
  'fixed32',
  'invalid',
  'invalid',
];

export function wireTypeName(wireType: number): string {
  return `${wireType} (${WIRE_TYPE_NAMES[wireType & 7]})`;
}

const TWO_POW_32 = 4294967296;
/**
 * Short-string memo: attribute keys and many values repeat from span to span,
 * and comparing bytes with the last string seen in a slot costs about half of
 * decoding a new one (and the records then share one string). Sized by the
 * body, so that a one-span request does not pay for a table it cannot fill.
 */
const STRING_MEMO_MAX_SLOTS = 1024;
const STRING_MEMO_MIN_SLOTS = 8;
/** About one slot per this many body bytes (a span with ten attributes is ~400 bytes). */
const STRING_MEMO_BYTES_PER_SLOT = 16;
const STRING_MEMO_MAX_BYTES = 64;
/** Hits a memoized string can bank against eviction. */
const STRING_MEMO_MAX_CREDIT = 8;
/**
 * Id memo: a batch often holds several spans of one trace (a proxy's server
 * span and its client spans), and a parent id is another span's id.
 */
const HEX_MEMO_MAX_SLOTS = 512;
const HEX_MEMO_MIN_SLOTS = 8;
const HEX_MEMO_BYTES_PER_SLOT = 64;
const HEX_MEMO_MAX_BYTES = 16;

/** A power of two near `bodyLength / bytesPerSlot`, within [min, max]. */
function memoSlots(bodyLength: number, bytesPerSlot: number, min: number, max: number): number {
  const want = Math.ceil(bodyLength / bytesPerSlot);
  if (want <= min) return min;
  if (want >= max) return max;
  return 2 ** (32 - Math.clz32(want - 1));
}

const MAX_FIELD_NUMBER = 536870911;
const MAX_VARINT_BYTES = 10;

export class ProtoReader {
  readonly buf: Buffer;
  readonly view: DataView;
  pos = 0;
  /** Field number of the last tag read. */
  field = 0;
  /** Wire type of the last tag read. */
  wireType = 0;
  /** Byte offset of the last tag read, for messages about that field. */
  tagPos = 0;
  /** Low and high 32 bits (unsigned) of the last varint read by varint64(). */
  lo = 0;
  hi = 0;
  /** One request's memo of recently decoded short strings, with where their bytes are in the body. */
  private readonly memo: string[];
  private readonly memoStart: Int32Array;
  private readonly memoLen: Int32Array;
  private readonly memoCredit: Int32Array;
  /** 32 - log2(slots): the top bits of the multiplicative hash pick the slot pair. */
  private readonly memoShift: number;
  /** Recently converted ids, with where their bytes are in the body. */
  private readonly hexMemo: string[];
  private readonly hexMemoStart: Int32Array;
  private readonly hexMemoLen: Int32Array;

  constructor(body: Uint8Array) {
    // A zero-copy Buffer view: Buffer's toString('utf8'|'hex'|'base64', start, end)
    // is the fastest documented way to turn byte ranges into strings.
    this.buf = Buffer.isBuffer(body) ? body : Buffer.from(body.buffer, body.byteOffset, body.byteLength);
    this.view = new DataView(this.buf.buffer, this.buf.byteOffset, this.buf.byteLength);
    const slots = memoSlots(body.length, STRING_MEMO_BYTES_PER_SLOT, STRING_MEMO_MIN_SLOTS, STRING_MEMO_MAX_SLOTS);
    this.memo = new Array<string>(slots).fill('');
    this.memoStart = new Int32Array(slots);
    this.memoLen = new Int32Array(slots);
    this.memoCredit = new Int32Array(slots);
    this.memoShift = Math.clz32(slots) + 1;
    const hexSlots = memoSlots(body.length, HEX_MEMO_BYTES_PER_SLOT, HEX_MEMO_MIN_SLOTS, HEX_MEMO_MAX_SLOTS);
    this.hexMemo = new Array<string>(hexSlots).fill('');
    this.hexMemoStart = new Int32Array(hexSlots);
    this.hexMemoLen = new Int32Array(hexSlots);
  }

  /**
   * Reads a field tag and returns its field number. The caller checks
   * `pos < end` first. Groups (3, 4) and wire types 6 and 7 are rejected:
   * OTLP never uses them and a group cannot be skipped without parsing it.
   */
  tag(end: number): number {
    return this.checkTag(this.rawTag(end));
  }

  /**
   * Reads a tag and returns it whole (field number << 3 | wire type), for the
   * hot decoders that switch on the exact tags they expect: a tag that matches
   * one needs no further check. Any other must go through checkTag().
   */
  rawTag(end: number): number {
    const pos = this.pos;
    this.tagPos = pos;
    let t = this.buf[pos] as number;
    if (t < 0x80) this.pos = pos + 1;
    else {
      this.varint64(end);
      if (this.hi !== 0) throw new OtlpMalformedError(`tag at byte ${pos} has a field number over 2^29`);
      t = this.lo;
    }
    this.field = t >>> 3;
    this.wireType = t & 7;
    return t;
  }

  /** Validates a tag from rawTag() and returns its field number. */
  checkTag(t: number): number {
    const pos = this.tagPos;
    const wireType = t & 7;
    const field = t >>> 3;
    if (wireType === WIRE_START_GROUP || wireType === WIRE_END_GROUP) {
      throw new OtlpMalformedError(
        `field ${field} at byte ${pos} uses wire type ${wireTypeName(wireType)}; groups are not supported`,
      );
    }
    if (wireType > WIRE_FIXED32) throw new OtlpMalformedError(`invalid wire type ${wireType} at byte ${pos}`);
    if (field === 0 || field > MAX_FIELD_NUMBER) {
      throw new OtlpMalformedError(`invalid field number ${field} at byte ${pos}`);
    }
    return field;
  }

  /**
   * The default branch of a switch on whole tags (rawTag): `wireTypes[field]`
   * is the wire type of each known field (-1 or absent: unknown). A known
   * field sent with another wire type is an error; an unknown field, from a
   * newer schema, is skipped.
   */
  skipUnexpected(t: number, wireTypes: readonly number[], end: number): void {
    const known = wireTypes[this.checkTag(t)];
    if (known !== undefined && known >= 0) this.expect(known);
    this.skip(end);
  }

  /** Throws unless the last tag had `wireType`. */
  expect(wireType: number): void {
    if (this.wireType !== wireType) {
      throw new OtlpMalformedError(
        `wire type ${wireTypeName(this.wireType)}, expected ${wireTypeName(wireType)}, at byte ${this.tagPos}`,
      );
    }
  }

  /**
   * Reads a varint into `lo`/`hi` (unsigned 32-bit halves of the 64-bit value).
   * Bits past 64 in a 10th byte are dropped, as the reference decoders do.
   */
  varint64(end: number): void {
    const buf = this.buf;
    const start = this.pos;
    let pos = start;
    let lo = 0;
    let hi = 0;
    for (let i = 0; i < MAX_VARINT_BYTES; i++) {
      if (pos >= end) throw new OtlpMalformedError(`varint at byte ${start} runs past the end`);
      const b = buf[pos++] as number;
      const bits = b & 0x7f;
      if (i < 4) lo |= bits << (7 * i);
      else if (i === 4) {
        lo |= bits << 28;
        hi = bits >>> 4;
      } else hi |= bits << (7 * i - 32);
      if (b < 0x80) {
        this.pos = pos;
        this.lo = lo >>> 0;
        this.hi = hi >>> 0;
        return;
      }
    }
    throw new OtlpMalformedError(`varint at byte ${start} is longer than 10 bytes`);
  }

  /** A varint as a number: exact up to 2^53 (lengths, counts, uint32), rounded above. */
  varint(end: number): number {
    const pos = this.pos;
    if (pos < end) {
      const b = this.buf[pos] as number;
      if (b < 0x80) {
        this.pos = pos + 1;
        return b;
      }
    }
    this.varint64(end);
    return this.hi * TWO_POW_32 + this.lo;
  }

  /** uint32 fields: the low 32 bits, as protobuf truncates. */
  uint32(end: number): number {
    this.varint64(end);
    return this.lo;
  }

  /** int32 and enum fields: the low 32 bits as signed (negatives arrive as 10-byte varints). */
  int32(end: number): number {
    this.varint64(end);
    return this.lo | 0;
  }

  bool(end: number): boolean {
    this.varint64(end);
    return this.lo !== 0 || this.hi !== 0;
  }

  /** sint32 (zigzag). */
  sint32(end: number): number {
    this.varint64(end);
    const n = this.lo;
    return (n >>> 1) ^ -(n & 1);
  }

  /** uint64 as bigint. */
  uint64(end: number): bigint {
    this.varint64(end);
    return this.hi === 0 ? BigInt(this.lo) : (BigInt(this.hi) << 32n) | BigInt(this.lo);
  }

  private need(bytes: number, end: number, what: string): number {
    const pos = this.pos;
    if (end - pos < bytes) {
      throw new OtlpMalformedError(
        `${what} field ${this.field} at byte ${this.tagPos} runs past the end (needs ${bytes} bytes, ${end - pos} left)`,
      );
    }
    this.pos = pos + bytes;
    return pos;
  }

  fixed32(end: number): number {
    return this.view.getUint32(this.need(4, end, 'fixed32'), true);
  }

  sfixed32(end: number): number {
    return this.view.getInt32(this.need(4, end, 'fixed32'), true);
  }

  float(end: number): number {
    return this.view.getFloat32(this.need(4, end, 'fixed32'), true);
  }

  /** fixed64 as bigint (times in nanoseconds, counts). */
  fixed64(end: number): bigint {
    return this.view.getBigUint64(this.need(8, end, 'fixed64'), true);
  }

  /** sfixed64 as bigint. */
  sfixed64(end: number): bigint {
    return this.view.getBigInt64(this.need(8, end, 'fixed64'), true);
  }

  /** sfixed64 as a number without a bigint allocation (exact up to 2^53). */
  sfixed64Number(end: number): number {
    const pos = this.need(8, end, 'fixed64');
    return this.view.getInt32(pos + 4, true) * TWO_POW_32 + this.view.getUint32(pos, true);
  }

  double(end: number): number {
    return this.view.getFloat64(this.need(8, end, 'fixed64'), true);
  }

  /**
   * Reads the length of a length-delimited field, checks it fits before
   * `end`, leaves `pos` at the first content byte and returns the content end.
   */
  lengthDelimited(end: number): number {
    const len = this.varint(end);
    const start = this.pos;
    const left = end - start;
    if (len > left) {
      throw new OtlpMalformedError(
        `length-delimited field ${this.field} at byte ${this.tagPos} runs past the end (needs ${len} bytes, ${left} left)`,
      );
    }
    return start + len;
  }

  /** A bytes field as a view into the body (no copy: it is only valid while the body is). */
  bytes(end: number): Uint8Array {
    const e = this.lengthDelimited(end);
    const s = this.pos;
    this.pos = e;
    return this.buf.subarray(s, e);
  }

  /** A string field. Invalid UTF-8 becomes U+FFFD, as TextDecoder does; it is not an error. */
  string(end: number): string {
    const e = this.lengthDelimited(end);
    const s = this.pos;
    this.pos = e;
    const len = e - s;
    if (len === 0) return '';
    const buf = this.buf;
    if (len > STRING_MEMO_MAX_BYTES) return buf.toString('utf8', s, e);
    // Two-way set: the hash of the length and three bytes picks a pair of slots.
    const h = Math.imul(
      len ^ ((buf[s] as number) << 8) ^ ((buf[s + (len >>> 1)] as number) << 16) ^ ((buf[e - 1] as number) << 24),
      0x9e3779b1,
    );
    const a = (h >>> this.memoShift) & ~1;
    const b = a + 1;
    const memoLen = this.memoLen;
    const credit = this.memoCredit;
    // The memoized strings' bytes are still in this body at memoStart: compare
    // body to body, four bytes at a time. Same bytes, same string.
    if (memoLen[a] === len && this.sameBytes(this.memoStart[a] as number, s, len)) {
      if ((credit[a] as number) < STRING_MEMO_MAX_CREDIT) credit[a]!++;
      return this.memo[a] as string;
    }
    if (memoLen[b] === len && this.sameBytes(this.memoStart[b] as number, s, len)) {
      if ((credit[b] as number) < STRING_MEMO_MAX_CREDIT) credit[b]!++;
      return this.memo[b] as string;
    }
    const str = buf.toString('utf8', s, e);
    // The slot with fewer hits is the candidate, and is replaced only once its
    // hits are used up by misses: unique values (URLs, ids) passing through do
    // not push out a key that every span repeats.
    const victim = (credit[a] as number) <= (credit[b] as number) ? a : b;
    if ((credit[victim] as number) > 0) credit[victim]!--;
    else {
      this.memo[victim] = str;
      this.memoStart[victim] = s;
      memoLen[victim] = len;
    }
    return str;
  }

  /** Whether the `len` bytes at `a` and at `b` are equal. */
  private sameBytes(a: number, b: number, len: number): boolean {
    const view = this.view;
    let i = 0;
    for (; i + 4 <= len; i += 4) {
      if (view.getInt32(a + i) !== view.getInt32(b + i)) return false;
    }
    const buf = this.buf;
    for (; i < len; i++) {
      if (buf[a + i] !== buf[b + i]) return false;
    }
    return true;
  }

  /** Lowercase hex of the bytes in [start, end) (ids: up to 16 bytes are memoized). */
  hex(start: number, end: number): string {
    const buf = this.buf;
    const len = end - start;
    if (len === 0) return '';
    if (len > HEX_MEMO_MAX_BYTES) return buf.toString('hex', start, end);
    // Mix both ends: some id generators put a timestamp in the first bytes.
    const slot = ((buf[end - 1] as number) ^ ((buf[start] as number) << 1) ^ (len << 5)) & (this.hexMemo.length - 1);
    if (this.hexMemoLen[slot] === len && this.sameBytes(this.hexMemoStart[slot] as number, start, len)) {
      return this.hexMemo[slot] as string;
    }
    const hex = buf.toString('hex', start, end);
    this.hexMemo[slot] = hex;
    this.hexMemoStart[slot] = start;
    this.hexMemoLen[slot] = len;
    return hex;
  }

  /** Skips the value of the last tag read. */
  skip(end: number): void {
    switch (this.wireType) {
      case WIRE_VARINT:
        this.varint64(end);
        return;
      case WIRE_FIXED64:
        this.need(8, end, 'fixed64');
        return;
      case WIRE_LEN:
        this.pos = this.lengthDelimited(end);
        return;
      default:
        this.need(4, end, 'fixed32');
    }
  }

  /**
   * Repeated fixed64 (bigint), packed or not: protobuf parsers must accept
   * both encodings for repeated scalars.
   */
  repeatedFixed64(end: number, out: bigint[]): void {
    if (this.wireType === WIRE_FIXED64) {
      out.push(this.fixed64(end));
      return;
    }
    const e = this.packedEnd(end, 8);
    const view = this.view;
    for (let p = this.pos; p < e; p += 8) out.push(view.getBigUint64(p, true));
    this.pos = e;
  }

  /** Repeated double, packed or not. */
  repeatedDouble(end: number, out: number[]): void {
    if (this.wireType === WIRE_FIXED64) {
      out.push(this.double(end));
      return;
    }
    const e = this.packedEnd(end, 8);
    const view = this.view;
    for (let p = this.pos; p < e; p += 8) out.push(view.getFloat64(p, true));
    this.pos = e;
  }

  /** Repeated uint64 varints (bigint), packed or not. */
  repeatedUint64(end: number, out: bigint[]): void {
    if (this.wireType === WIRE_VARINT) {
      out.push(this.uint64(end));
      return;
    }
    this.expect(WIRE_LEN);
    const e = this.lengthDelimited(end);
    while (this.pos < e) out.push(this.uint64(e));
  }

  private packedEnd(end: number, elementSize: number): number {
    if (this.wireType !== WIRE_LEN) {
      throw new OtlpMalformedError(
        `wire type ${wireTypeName(this.wireType)}, expected ${wireTypeName(WIRE_LEN)} or ${wireTypeName(WIRE_FIXED64)}, at byte ${this.tagPos}`,
      );
    }
    const e = this.lengthDelimited(end);
    if ((e - this.pos) % elementSize !== 0) {
      throw new OtlpMalformedError(
        `packed field ${this.field} at byte ${this.tagPos} is ${e - this.pos} bytes long, not a multiple of ${elementSize}`,
      );
    }
    return e;
  }
}

/**
 * A small protobuf writer: export responses, and hand-made (also deliberately
 * broken) requests in tests. Nested messages use fork()/join(field), which
 * writes the content first and slides it to make room for the length.
 */
export class ProtoWriter {
  private buf: Uint8Array;
  private view: DataView;
  private pos = 0;
  private readonly forks: number[] = [];

  constructor(initialSize = 256) {
    this.buf = new Uint8Array(initialSize);
    this.view = new DataView(this.buf.buffer);
  }

  private ensure(bytes: number): void {
    const needed = this.pos + bytes;
    if (needed <= this.buf.length) return;
    let size = this.buf.length * 2;
    while (size < needed) size *= 2;
    const next = new Uint8Array(size);
    next.set(this.buf.subarray(0, this.pos));
    this.buf = next;
    this.view = new DataView(next.buffer);
  }

  tag(field: number, wireType: number): this {
    return this.varint(field * 8 + wireType);
  }

  /** Non-negative numbers as they are; negative numbers and bigints as 64-bit two's complement. */
  varint(value: number | bigint): this {
    if (typeof value === 'number' && value >= 0 && value <= Number.MAX_SAFE_INTEGER) {
      this.ensure(MAX_VARINT_BYTES);
      let v = value;
      while (v >= 0x80) {
        this.buf[this.pos++] = (v % 0x80) | 0x80;
        v = Math.floor(v / 0x80);
      }
      this.buf[this.pos++] = v;
      return this;
    }
    let v = BigInt.asUintN(64, BigInt(value));
    this.ensure(MAX_VARINT_BYTES);
    while (v >= 0x80n) {
      this.buf[this.pos++] = Number(v & 0x7fn) | 0x80;
      v >>= 7n;
    }
    this.buf[this.pos++] = Number(v);
    return this;
  }

  sint32(value: number): this {
    return this.varint(((value << 1) ^ (value >> 31)) >>> 0);
  }

  fixed32(value: number): this {
    this.ensure(4);
    this.view.setUint32(this.pos, value >>> 0, true);
    this.pos += 4;
    return this;
  }

  fixed64(value: bigint | number): this {
    this.ensure(8);
    this.view.setBigUint64(this.pos, BigInt.asUintN(64, BigInt(value)), true);
    this.pos += 8;
    return this;
  }

  double(value: number): this {
    this.ensure(8);
    this.view.setFloat64(this.pos, value, true);
    this.pos += 8;
    return this;
  }

  /** Length-prefixed bytes. */
  bytes(value: Uint8Array): this {
    this.varint(value.length);
    return this.raw(value);
  }

  string(value: string): this {
    return this.bytes(Buffer.from(value, 'utf8'));
  }

  /** Bytes with no length prefix (for crafting input by hand). */
  raw(value: Uint8Array | readonly number[]): this {
    this.ensure(value.length);
    this.buf.set(value, this.pos);
    this.pos += value.length;
    return this;
  }

  /** Starts a nested message; end it with join(field). */
  fork(): this {
    this.forks.push(this.pos);
    return this;
  }

  /** Ends the innermost fork() as length-delimited field `field`. */
  join(field: number): this {
    const start = this.forks.pop();
    if (start === undefined) throw new Error('ProtoWriter.join without fork');
    const content = this.buf.slice(start, this.pos);
    this.pos = start;
    this.tag(field, WIRE_LEN);
    return this.bytes(content);
  }

  finish(): Uint8Array {
    if (this.forks.length !== 0) throw new Error('ProtoWriter.finish with an open fork');
    return this.buf.slice(0, this.pos);
  }
}
