import type { DecodeResult } from '../model.js';
import type { OtlpMalformedError } from './malformed.js';

/** How many rejection messages a DecodeResult keeps (the count keeps going). */
export const MAX_KEPT_ERRORS = 10;

/**
 * Accumulates one request's accepted items and rejections. One instance per
 * decode call, so nothing is shared between requests.
 */
export class DecodeCollector<T> {
  readonly items: T[] = [];
  rejected = 0;
  readonly errors: string[] = [];

  /** Counts one rejected item; `err` already carries the item's full path. */
  reject(err: OtlpMalformedError): void {
    this.rejected++;
    if (this.errors.length < MAX_KEPT_ERRORS) this.errors.push(err.message);
  }

  result(): DecodeResult<T> {
    return { items: this.items, rejected: this.rejected, errors: this.errors };
  }
}
