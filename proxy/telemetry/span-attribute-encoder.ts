/**
 * Encodes the attributes a record hands over through writeAttributes (the
 * HTTP path's spans) as OTLP Span.attributes KeyValue fields, reusing the
 * previous span's bytes wherever the same key carries the same value.
 *
 * Why: a proxy span has some 25 attributes, and from one request to the
 * next almost all of them repeat (method, scheme, host, port, peer
 * addresses, protocol, the six service/namespace/version labels, flags,
 * attempt, status, user agent...). Encoding each one costs a key copy, a
 * string copy and three length bytes, byte by byte in JS: about 2 µs per
 * span. Here the attributes are compared, by position, with the previous
 * span's; a run of equal ones is copied from that span's encoded block in
 * one native copy, and only the ones that changed (request id, client port,
 * body sizes) are encoded.
 */
import type { LeanProtoWriter } from './lean-proto-writer.js';
import type { AttributeValue, SpanAttributeWriter } from './span-record.js';

/** The encoder of one attribute the cache did not have: writes the whole KeyValue field. */
export interface AttributeFieldWriter {
  stringField(key: string, value: string): void;
  intField(key: string, value: number): void;
  boolField(key: string, value: boolean): void;
}

/** A span whose attributes encode to more than this is not kept for the next (it would only be a rare, odd span). */
const MAX_BLOCK_BYTES = 16 * 1024;
/** Attributes per span the cache follows; past it they are encoded each time. */
const MAX_ATTRIBUTES = 64;

export class SpanAttributeEncoder implements SpanAttributeWriter {
  // The previous span's attributes: key, value and where its KeyValue field starts in `prevBlock`.
  private prevKeys: string[] = [];
  private prevValues: AttributeValue[] = [];
  private prevOffsets = new Int32Array(MAX_ATTRIBUTES + 1);
  private prevCount = 0;
  private prevBlock = Buffer.allocUnsafe(4096);
  // The span being written.
  private curKeys: string[] = [];
  private curValues: AttributeValue[] = [];
  private curOffsets = new Int32Array(MAX_ATTRIBUTES + 1);
  private count = 0;
  private blockStart = 0;
  /** The pending run of repeated attributes, [runFrom, runTo); runFrom -1 when none. */
  private runFrom = -1;
  private runTo = 0;

  constructor(
    private readonly w: LeanProtoWriter,
    private readonly fields: AttributeFieldWriter,
  ) {}

  /** Before a span's writeAttributes. */
  begin(): void {
    this.count = 0;
    this.runFrom = -1;
    this.blockStart = this.w.pos;
  }

  /** After it: copies the last run out, and keeps this span's attributes for the next one. */
  end(): void {
    this.flushRun();
    const n = this.count;
    const length = this.w.pos - this.blockStart;
    if (n > MAX_ATTRIBUTES || length > MAX_BLOCK_BYTES) {
      this.prevCount = 0;
      return;
    }
    this.curOffsets[n] = length;
    if (this.prevBlock.length < length) this.prevBlock = Buffer.allocUnsafe(Math.max(length, this.prevBlock.length * 2));
    this.w.buf.copy(this.prevBlock, 0, this.blockStart, this.w.pos);
    // Swap current and previous (no allocation per span).
    const keys = this.prevKeys;
    this.prevKeys = this.curKeys;
    this.curKeys = keys;
    const values = this.prevValues;
    this.prevValues = this.curValues;
    this.curValues = values;
    const offsets = this.prevOffsets;
    this.prevOffsets = this.curOffsets;
    this.curOffsets = offsets;
    this.prevCount = n;
  }

  string(key: string, value: string): void {
    if (this.repeats(key, value)) return;
    this.fields.stringField(key, value);
  }

  int(key: string, value: number): void {
    if (this.repeats(key, value)) return;
    this.fields.intField(key, value);
  }

  bool(key: string, value: boolean): void {
    if (this.repeats(key, value)) return;
    this.fields.boolField(key, value);
  }

  /**
   * True when the attribute equals the previous span's at the same position:
   * its bytes join the pending run. Otherwise the run is copied out and the
   * caller encodes the attribute where it now stands.
   */
  private repeats(key: string, value: AttributeValue): boolean {
    const i = this.count++;
    if (i >= MAX_ATTRIBUTES) {
      this.flushRun();
      return false;
    }
    this.curKeys[i] = key;
    this.curValues[i] = value;
    if (i < this.prevCount && this.prevKeys[i] === key && this.prevValues[i] === value) {
      if (this.runFrom < 0) this.runFrom = i;
      this.runTo = i + 1;
      return true;
    }
    this.flushRun();
    this.curOffsets[i] = this.w.pos - this.blockStart;
    return false;
  }

  /** Copies the pending run from the previous block, in one copy. */
  private flushRun(): void {
    const from = this.runFrom;
    if (from < 0) return;
    this.runFrom = -1;
    const to = this.runTo;
    const w = this.w;
    const srcStart = this.prevOffsets[from] as number;
    const srcEnd = this.prevOffsets[to] as number;
    const base = w.pos - this.blockStart - srcStart;
    for (let j = from; j < to; j++) this.curOffsets[j] = base + (this.prevOffsets[j] as number);
    w.ensure(srcEnd - srcStart);
    this.prevBlock.copy(w.buf, w.pos, srcStart, srcEnd);
    w.pos += srcEnd - srcStart;
  }
}
