import { storeError } from './store-errors.js';

/** A revision given to the store (expectedRevision, fromRevision): a whole number from 0. */
export function checkRevision(value: unknown, what: string): number {
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < 0) {
    throw storeError('TM_ERR_CP_STORE_BAD_ARGUMENT', `${what}: expected a store revision (a whole number from 0), got ${String(value)}`);
  }
  return value;
}
