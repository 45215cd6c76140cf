/**
 * Where the etcd store keeps things, under its prefix (default
 * `/tracemesh/config/`):
 *
 *   <prefix>docs/<kind>/<namespace>/<name>   a document's JSON
 *   <prefix>revision                         touched by every set change
 *
 * Every set change is one transaction that compares the revision key's mod
 * revision with the one read and writes it again; so the store revision is
 * that key's mod revision, an etcd revision: the compare-and-swap and the
 * point a watch resumes from are the same number.
 */
import { storeError } from './store-errors.js';
import type { DocumentKey } from './types.js';

export const DEFAULT_ETCD_PREFIX = '/tracemesh/config/';

const PREFIX = /^\/[A-Za-z0-9._\-/]{0,254}\/$/;

export class EtcdKeys {
  readonly prefix: string;
  readonly revisionKey: string;
  readonly docsPrefix: string;

  constructor(prefix: string = DEFAULT_ETCD_PREFIX) {
    if (!PREFIX.test(prefix)) {
      throw storeError('TM_ERR_CP_STORE_BAD_ARGUMENT', `etcd key prefix: expected a path such as ${DEFAULT_ETCD_PREFIX} (starting and ending with '/', letters, digits, '.', '_', '-'), got '${prefix}'`);
    }
    this.prefix = prefix;
    this.revisionKey = `${prefix}revision`;
    this.docsPrefix = `${prefix}docs/`;
  }

  documentKey(key: DocumentKey): string {
    return `${this.docsPrefix}${key.kind}/${key.namespace}/${key.name}`;
  }

  /** The document key an etcd key stands for; undefined for keys that are not documents. */
  parseDocumentKey(etcdKey: string): DocumentKey | undefined {
    if (!etcdKey.startsWith(this.docsPrefix)) return undefined;
    const parts = etcdKey.slice(this.docsPrefix.length).split('/');
    if (parts.length !== 3 || parts.some((part) => part.length === 0)) return undefined;
    const [kind, namespace, name] = parts as [string, string, string];
    return { kind, namespace, name };
  }
}

/**
 * Where a replica group keeps what is not configuration, beside its config
 * prefix: `/tracemesh/config/` → `/tracemesh/config-registry/` (workload
 * registrations) and `/tracemesh/config-replicas/` (the replicas' URLs).
 * Siblings rather than children, so that reading the set (one range over
 * the config prefix) and the config watch never carry them; one
 * `--etcd-prefix` still separates everything of one mesh from another's.
 */
export function siblingPrefix(configPrefix: string, what: 'registry' | 'replicas'): string {
  return `${configPrefix.slice(0, -1)}-${what}/`;
}
