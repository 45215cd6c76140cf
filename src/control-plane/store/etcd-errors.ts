/**
 * etcd client failures as store errors that name the etcd URL. etcd3 and
 * gRPC describe what happened only in message text (and etcd's own reasons,
 * such as compaction, only there too), so this is the one place that reads
 * foreign messages; the rest of the code branches on our codes.
 */
import { errorMessage } from '../../lib/errors.js';
import type { TracemeshError } from '../../lib/errors.js';
import { isStoreError, storeError } from './store-errors.js';

/** The first line of a client failure, in words for people. */
export function describeEtcdError(err: unknown): string {
  const message = errorMessage(err).split('\n')[0]?.trim() ?? '';
  // cockatiel's words for "etcd3 stopped trying this host for a few seconds after failures".
  if (/circuit breaker is open/i.test(message)) return 'recent requests to it failed, so the client pauses before trying again';
  return message.length > 300 ? `${message.slice(0, 300)}…` : message;
}

/** etcd answered that history before a revision is gone (`mvcc: required revision has been compacted`). */
export function isCompacted(err: unknown): boolean {
  return /compacted/i.test(errorMessage(err));
}

/** etcd refused a request for its size or number of operations (--max-request-bytes, --max-txn-ops). */
function isRequestTooLarge(err: unknown): boolean {
  return /too many operations in txn|request is too large|larger than max/i.test(errorMessage(err));
}

export function etcdFailure(location: string, action: string, err: unknown): TracemeshError {
  if (isStoreError(err)) return err;
  if (isRequestTooLarge(err)) {
    return storeError('TM_ERR_CP_STORE_TOO_LARGE', `etcd at ${location} refused to ${action}: ${describeEtcdError(err)} (its --max-txn-ops and --max-request-bytes bound one set change)`, err);
  }
  return storeError('TM_ERR_CP_STORE_UNAVAILABLE', `etcd at ${location}: cannot ${action}: ${describeEtcdError(err)}`, err);
}
