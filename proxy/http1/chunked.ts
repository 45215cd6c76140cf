/**
 * Finds where a chunked body ends (RFC 9112 §7.1) without decoding it: the
 * body is forwarded raw, so this state machine only walks chunk-size lines,
 * skips chunk data by count, and validates the trailer section. It keeps no
 * bytes, so memory is constant however the body is split across reads.
 * Strict on everything that could frame differently elsewhere: bare LF,
 * missing CRLF after data, non-hex sizes, oversized sizes.
 */
import { COLON, CR, HTAB, LF, SEMICOLON, SP, TCHAR, hexValue, isBadValueChar } from './chars.js';

const S_SIZE_START = 0; // expecting the first hex digit of a chunk size
const S_SIZE = 1; // more hex digits, or the end of the size
const S_SIZE_BWS = 2; // whitespace after the size: only ';' may follow
const S_EXT = 3; // chunk extension after its name, up to CR
const S_EXT_NAME = 15; // after ';': optional whitespace, then a token (the extension's name)
const S_SIZE_LF = 4; // LF after the chunk-size line's CR
const S_DATA = 5; // chunk data, `remaining` bytes
const S_DATA_CR = 6; // CR after chunk data
const S_DATA_LF = 7; // LF after chunk data
const S_TRAILER_START = 8; // start of a trailer field line, or the final CRLF
const S_TRAILER_NAME = 9;
const S_TRAILER_VALUE = 10;
const S_TRAILER_LF = 11; // LF after a trailer line's CR
const S_FINAL_LF = 12; // LF of the final empty line
const S_DONE = 13;
const S_ERROR = 14;

/** Returned by scan() when the body continues past the given bytes. */
export const CHUNKED_MORE = -1;
/** Returned by scan() when the framing is invalid (see `error`). */
export const CHUNKED_ERROR = -2;

// 2^53 needs 14 hex digits; 13 keeps every size exact as a double.
const MAX_SIZE_DIGITS = 13;

export class ChunkedScanner {
  private state = S_SIZE_START;
  private remaining = 0;
  private sizeDigits = 0;
  /** Bytes of chunk-size lines and trailers seen, against `maxLineBytes`. */
  private metaBytes = 0;
  /** Sum of chunk sizes: the body size without the chunked framing. */
  dataBytes = 0;
  error = '';

  constructor(private maxMetaBytes: number) {}

  reset(maxMetaBytes: number): void {
    this.state = S_SIZE_START;
    this.remaining = 0;
    this.sizeDigits = 0;
    this.metaBytes = 0;
    this.dataBytes = 0;
    this.error = '';
    this.maxMetaBytes = maxMetaBytes;
  }

  get done(): boolean {
    return this.state === S_DONE;
  }

  private fail(reason: string): number {
    this.state = S_ERROR;
    this.error = reason;
    return CHUNKED_ERROR;
  }

  /**
   * Scans buf[start, end). Returns the offset just past the end of the chunked
   * body when it ends inside, CHUNKED_MORE when every byte belongs to the body
   * and more is to come, or CHUNKED_ERROR.
   */
  scan(buf: Buffer, start: number, end: number): number {
    let pos = start;
    let state = this.state;
    if (state === S_ERROR) return CHUNKED_ERROR;
    while (pos < end) {
      if (state === S_DATA) {
        const available = end - pos;
        if (available < this.remaining) {
          this.remaining -= available;
          this.state = S_DATA;
          return CHUNKED_MORE;
        }
        pos += this.remaining;
        this.remaining = 0;
        state = S_DATA_CR;
        continue;
      }
      const c = buf[pos++] as number;
      if (++this.metaBytes > this.maxMetaBytes && state !== S_DATA_CR && state !== S_DATA_LF) {
        return this.fail(`chunk-size lines or trailers longer than ${this.maxMetaBytes} bytes`);
      }
      switch (state) {
        case S_SIZE_START: {
          const v = hexValue(c);
          if (v < 0) return this.fail('invalid chunk size');
          this.remaining = v;
          this.sizeDigits = 1;
          state = S_SIZE;
          break;
        }
        case S_SIZE: {
          const v = hexValue(c);
          if (v >= 0) {
            if (++this.sizeDigits > MAX_SIZE_DIGITS) return this.fail('chunk size too large');
            this.remaining = this.remaining * 16 + v;
          } else if (c === CR) state = S_SIZE_LF;
          else if (c === SEMICOLON) state = S_EXT_NAME;
          else if (c === SP || c === HTAB) state = S_SIZE_BWS;
          else return this.fail('invalid chunk size');
          break;
        }
        case S_SIZE_BWS:
          if (c === SEMICOLON) state = S_EXT_NAME;
          else if (c !== SP && c !== HTAB) return this.fail('invalid chunk size line');
          break;
        case S_EXT_NAME:
          // RFC 9112 §7.1.1: chunk-ext = *( BWS ";" BWS chunk-ext-name [ ... ] ), the name a token.
          // Forwarded raw, so anything the next hop might read differently is refused here.
          if (TCHAR[c] === 1) state = S_EXT;
          else if (c !== SP && c !== HTAB) return this.fail('chunk extension without a token name');
          break;
        case S_EXT:
          if (c === CR) state = S_SIZE_LF;
          else if (c === SEMICOLON) state = S_EXT_NAME;
          else if (isBadValueChar(c)) return this.fail('invalid character in chunk extension');
          break;
        case S_SIZE_LF:
          if (c !== LF) return this.fail('chunk size line not ended by CRLF');
          this.metaBytes = 0;
          if (this.remaining === 0) {
            state = S_TRAILER_START;
          } else {
            this.dataBytes += this.remaining;
            state = S_DATA;
          }
          break;
        case S_DATA_CR:
          if (c !== CR) return this.fail('chunk data not followed by CRLF');
          state = S_DATA_LF;
          break;
        case S_DATA_LF:
          if (c !== LF) return this.fail('chunk data not followed by CRLF');
          this.metaBytes = 0;
          state = S_SIZE_START;
          break;
        case S_TRAILER_START:
          if (c === CR) state = S_FINAL_LF;
          else if (TCHAR[c] === 1) state = S_TRAILER_NAME;
          else return this.fail('invalid trailer field');
          break;
        case S_TRAILER_NAME:
          if (c === COLON) state = S_TRAILER_VALUE;
          else if (TCHAR[c] !== 1) return this.fail('invalid trailer field name');
          break;
        case S_TRAILER_VALUE:
          if (c === CR) state = S_TRAILER_LF;
          else if (isBadValueChar(c)) return this.fail('invalid character in trailer field');
          break;
        case S_TRAILER_LF:
          if (c !== LF) return this.fail('trailer field not ended by CRLF');
          state = S_TRAILER_START;
          break;
        case S_FINAL_LF:
          if (c !== LF) return this.fail('chunked body not ended by CRLF');
          this.state = S_DONE;
          return pos;
        default:
          return this.fail('data after the end of the chunked body');
      }
    }
    this.state = state;
    return CHUNKED_MORE;
  }
}
