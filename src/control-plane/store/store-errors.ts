/**
 * The config store's error codes (all in ErrorCode, src/lib/errors.ts):
 *
 * - TM_ERR_CP_STORE_CONFLICT: the compare-and-swap lost; the store moved past the expected revision.
 * - TM_ERR_CP_STORE_TOO_LARGE: a document or a set over the size limits, or a change etcd cannot take in one transaction.
 * - TM_ERR_CP_STORE_BAD_DOCUMENT: not a storable configuration document (shape, key, JSON).
 * - TM_ERR_CP_STORE_CORRUPT: what the store holds cannot be read back (bad JSON, missing file, wrong key).
 * - TM_ERR_CP_STORE_UNAVAILABLE: the directory cannot be used or etcd cannot be reached.
 * - TM_ERR_CP_STORE_BAD_ARGUMENT: a revision or an option that cannot be used.
 * - TM_ERR_CP_STORE_LISTENER_FAILED: a watch listener threw (reported to onProblem; the watch goes on).
 * - TM_ERR_CP_STORE_CLOSED: used before start() or after close().
 */
import { TracemeshError } from '../../lib/errors.js';
import type { ErrorCode } from '../../lib/errors.js';

export type StoreErrorCode = Extract<ErrorCode, `TM_ERR_CP_STORE_${string}`>;

export function storeError(code: StoreErrorCode, message: string, cause?: unknown): TracemeshError {
  return new TracemeshError(code, message, cause === undefined ? undefined : { cause });
}

export function isStoreError(err: unknown, code?: StoreErrorCode): err is TracemeshError {
  return err instanceof TracemeshError && (code === undefined ? err.code.startsWith('TM_ERR_CP_STORE_') : err.code === code);
}
