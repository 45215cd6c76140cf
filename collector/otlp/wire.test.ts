import { describe, it, expect } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { int64Text } from './attributes.js';
import { ProtoReader, ProtoWriter, WIRE_FIXED32, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from './wire.js';

function reader(build: (w: ProtoWriter) => void): ProtoReader {
  const w = new ProtoWriter(4);
  build(w);
  return new ProtoReader(w.finish());
}

function thrown(fn: () => unknown): string {
  try {
    fn();
  } catch (err) {
    if (isTracemeshError(err, 'TM_ERR_OTLP_MALFORMED')) return err.message;
    throw err;
  }
  throw new Error('nothing thrown');
}

describe('ProtoWriter and ProtoReader varints', () => {
  it.each([0, 1, 127, 128, 300, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 53 - 1])('round-trips %d as a number', (v) => {
    const r = reader((w) => w.varint(v));
    expect(r.varint(r.buf.length)).toBe(v);
    expect(r.pos).toBe(r.buf.length);
  });

  it.each([0n, 1n, 2n ** 53n + 1n, 2n ** 63n, 2n ** 64n - 1n])('round-trips %s as uint64', (v) => {
    const r = reader((w) => w.varint(v));
    expect(r.uint64(r.buf.length)).toBe(v);
  });

  it('writes negatives as 10-byte two’s complement, read back as int32/int64', () => {
    const r = reader((w) => w.varint(-1).varint(-5).varint(-(2 ** 40)).varint(-(2n ** 63n)));
    expect(r.buf.length).toBe(40);
    const end = r.buf.length;
    expect(r.int32(end)).toBe(-1);
    r.varint64(end);
    expect(int64Text(r.lo, r.hi)).toBe('-5');
    r.varint64(end);
    expect(int64Text(r.lo, r.hi)).toBe(String(-(2 ** 40)));
    r.varint64(end);
    expect(int64Text(r.lo, r.hi)).toBe('-9223372036854775808');
  });

  it('int64Text keeps full precision above 2^53', () => {
    const r = reader((w) => w.varint(2n ** 53n + 1n).varint(9223372036854775807n));
    r.varint64(r.buf.length);
    expect(int64Text(r.lo, r.hi)).toBe('9007199254740993');
    r.varint64(r.buf.length);
    expect(int64Text(r.lo, r.hi)).toBe('9223372036854775807');
  });

  it.each([0, 1, -1, 63, -64, 2 ** 31 - 1, -(2 ** 31)])('zigzag sint32 %d', (v) => {
    const r = reader((w) => w.sint32(v));
    expect(r.sint32(r.buf.length)).toBe(v);
  });

  it('reports a truncated varint and an over-long one with their offsets', () => {
    expect(thrown(() => new ProtoReader(new Uint8Array([0x80, 0x80])).varint64(2))).toBe('varint at byte 0 runs past the end');
    const r = new ProtoReader(new Uint8Array([0, 0x80, 0x80]));
    r.pos = 1;
    expect(thrown(() => r.varint(3))).toBe('varint at byte 1 runs past the end');
    expect(thrown(() => new ProtoReader(new Uint8Array(11).fill(0xff)).varint(11))).toBe('varint at byte 0 is longer than 10 bytes');
  });
});

describe('ProtoReader fixed-width values, lengths and skipping', () => {
  it('reads fixed32, sfixed32, fixed64, sfixed64, double and float', () => {
    const r = reader((w) => {
      w.fixed32(0xfffffffe).fixed32(-2).fixed64(2n ** 64n - 1n).fixed64(-3n).fixed64(-3n).double(-0.125);
      w.raw(new Uint8Array(new Float32Array([1.5]).buffer));
    });
    const end = r.buf.length;
    expect(r.fixed32(end)).toBe(0xfffffffe);
    expect(r.sfixed32(end)).toBe(-2);
    expect(r.fixed64(end)).toBe(2n ** 64n - 1n);
    expect(r.sfixed64(end)).toBe(-3n);
    expect(r.sfixed64Number(end)).toBe(-3);
    expect(r.double(end)).toBe(-0.125);
    expect(r.float(end)).toBe(1.5);
    expect(r.pos).toBe(end);
  });

  it('names the field, its offset and the shortfall when a fixed64 or a length runs past the end', () => {
    const r = reader((w) => w.tag(7, WIRE_FIXED64).raw([1, 2, 3]));
    r.tag(r.buf.length);
    expect(thrown(() => r.fixed64(r.buf.length))).toBe('fixed64 field 7 at byte 0 runs past the end (needs 8 bytes, 3 left)');
    const r2 = reader((w) => w.raw([9]).tag(2, WIRE_LEN).varint(300).raw([1]));
    r2.pos = 1;
    r2.tag(r2.buf.length);
    expect(thrown(() => r2.lengthDelimited(r2.buf.length))).toBe(
      'length-delimited field 2 at byte 1 runs past the end (needs 300 bytes, 1 left)',
    );
  });

  it('respects the end it is given, not the buffer end', () => {
    const r = reader((w) => w.fixed64(1n));
    expect(thrown(() => r.fixed64(4))).toBe('fixed64 field 0 at byte 0 runs past the end (needs 8 bytes, 4 left)');
  });

  it('skips each wire type and stops at the next tag', () => {
    const r = reader((w) => {
      w.tag(1, WIRE_VARINT).varint(2n ** 63n);
      w.tag(2, WIRE_FIXED64).fixed64(5n);
      w.tag(3, WIRE_LEN).string('skip me');
      w.tag(4, WIRE_FIXED32).fixed32(9);
      w.tag(5, WIRE_LEN).string('end');
    });
    const end = r.buf.length;
    for (let f = 1; f <= 4; f++) {
      expect(r.tag(end)).toBe(f);
      r.skip(end);
    }
    expect(r.tag(end)).toBe(5);
    expect(r.string(end)).toBe('end');
  });

  it('reads repeated scalars packed and unpacked', () => {
    const r = reader((w) => {
      w.fork().fixed64(1n).fixed64(2n).join(6);
      w.tag(6, WIRE_FIXED64).fixed64(3n);
      w.fork().double(0.5).double(1.5).join(7);
      w.tag(7, WIRE_FIXED64).double(2.5);
      w.fork().varint(7).varint(2n ** 60n).join(2);
      w.tag(2, WIRE_VARINT).varint(9);
    });
    const end = r.buf.length;
    const counts: bigint[] = [];
    const bounds: number[] = [];
    const varints: bigint[] = [];
    while (r.pos < end) {
      const f = r.tag(end);
      if (f === 6) r.repeatedFixed64(end, counts);
      else if (f === 7) r.repeatedDouble(end, bounds);
      else if (f === 2) r.repeatedUint64(end, varints);
      else r.skip(end);
    }
    expect(counts).toEqual([1n, 2n, 3n]);
    expect(bounds).toEqual([0.5, 1.5, 2.5]);
    expect(varints).toEqual([7n, 2n ** 60n, 9n]);
  });

  it('decodes strings with the memo without mixing up different bytes of the same shape', () => {
    // 'abcx' and 'azcx' share length and first, middle and last bytes: the same memo slot.
    const words = ['abcx', 'abcy', 'abcx', 'azcx', 'abcx', 'é', 'xbcx', 'abcx', 'abyx', '', 'a'.repeat(100), 'a'.repeat(100)];
    const r = reader((w) => {
      for (const s of words) w.tag(1, WIRE_LEN).string(s);
    });
    const out: string[] = [];
    while (r.pos < r.buf.length) {
      r.tag(r.buf.length);
      out.push(r.string(r.buf.length));
    }
    expect(out).toEqual(words);
  });

  it('hex() gives the right id for ids that share a memo slot', () => {
    const a = Buffer.from('0102030405060708', 'hex');
    const b = Buffer.from('01ff030405060708', 'hex'); // same first and last byte as `a`
    const r = new ProtoReader(Buffer.concat([a, b, a]));
    expect([r.hex(0, 8), r.hex(8, 16), r.hex(16, 24), r.hex(0, 8)]).toEqual([
      '0102030405060708',
      '01ff030405060708',
      '0102030405060708',
      '0102030405060708',
    ]);
  });

  it('bytes() is a view of the field content', () => {
    const r = reader((w) => w.tag(1, WIRE_LEN).bytes(new Uint8Array([7, 8, 9])).tag(2, WIRE_VARINT).varint(1));
    r.tag(r.buf.length);
    expect(Array.from(r.bytes(r.buf.length))).toEqual([7, 8, 9]);
    expect(r.tag(r.buf.length)).toBe(2);
  });

  it('reads from a Uint8Array view with an offset into a larger buffer', () => {
    const backing = new Uint8Array(64);
    const w = new ProtoWriter().tag(1, WIRE_LEN).string('hi').tag(2, WIRE_FIXED64).fixed64(42n).finish();
    backing.set(w, 10);
    const r = new ProtoReader(backing.subarray(10, 10 + w.length));
    const end = r.buf.length;
    r.tag(end);
    expect(r.string(end)).toBe('hi');
    r.tag(end);
    expect(r.fixed64(end)).toBe(42n);
  });
});

describe('ProtoWriter nesting', () => {
  it('join() writes the tag and the right length, also past 127 bytes', () => {
    const w = new ProtoWriter(2);
    w.fork();
    w.tag(1, WIRE_LEN).string('x'.repeat(200));
    w.join(3);
    const bytes = w.finish();
    const r = new ProtoReader(bytes);
    expect(r.tag(bytes.length)).toBe(3);
    const end = r.lengthDelimited(bytes.length);
    expect(end).toBe(bytes.length);
    r.tag(end);
    expect(r.string(end)).toBe('x'.repeat(200));
  });

  it('refuses join without fork and finish with an open fork', () => {
    expect(() => new ProtoWriter().join(1)).toThrow(/join without fork/);
    expect(() => new ProtoWriter().fork().finish()).toThrow(/open fork/);
  });
});
