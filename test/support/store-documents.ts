/**
 * What the config-store tests share, whichever store they drive (the
 * directory store in src/control-plane/store, etcd in test/system): document
 * builders and the check that a call fails with a given store error.
 */
import { expect } from 'vitest';
import type { TracemeshError } from '../../src/lib/errors.js';
import { isStoreError } from '../../src/control-plane/store/store-errors.js';
import type { StoreErrorCode } from '../../src/control-plane/store/store-errors.js';
import type { ConfigDocument, JsonValue } from '../../src/control-plane/store/types.js';

export function doc(kind: string, name: string, spec: JsonValue = { ports: [{ name: 'http', port: 80, protocol: 'http' }] }, namespace = 'default'): ConfigDocument {
  return { apiVersion: 'tracemesh.dev/v1', kind, metadata: { name, namespace }, spec };
}

export const service = (name: string, spec?: JsonValue, namespace?: string): ConfigDocument => doc('Service', name, spec, namespace);

/** The promise rejects with `code` and a message matching `message`; returns the error. */
export async function expectStoreError(promise: Promise<unknown>, code: StoreErrorCode, message: RegExp): Promise<TracemeshError> {
  const err: unknown = await promise.then(
    () => new Error('expected a rejection'),
    (rejection: unknown) => rejection,
  );
  if (!isStoreError(err, code)) throw new Error(`expected ${code}, got ${String(err)}`);
  expect(err.message).toMatch(message);
  return err;
}
