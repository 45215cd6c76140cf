/**
 * The config store on etcd (v3 API, through the etcd3 client), for several
 * control-plane replicas sharing one configuration. Layout and the meaning
 * of the revision in etcd-keys.ts. A set change is one etcd transaction:
 * documents put and deleted, the revision key rewritten, all on condition
 * that the revision key is where the writer read it.
 */
import { randomUUID } from 'node:crypto';
import { Etcd3 } from 'etcd3';
import type { IKeyValue, IOptions } from 'etcd3';
import { backoffMs, sleep } from '../../lib/backoff.js';
import { errorMessage } from '../../lib/errors.js';
import { checkKey, documentId, MAX_SET_BYTES } from './document-codec.js';
import { describeEtcdError, etcdFailure } from './etcd-errors.js';
import { DEFAULT_ETCD_PREFIX, EtcdKeys } from './etcd-keys.js';
import { decodeEtcdDocument, readEtcdSet, storedDocuments } from './etcd-reader.js';
import type { EtcdSet } from './etcd-reader.js';
import { EtcdWatch } from './etcd-watch.js';
import { checkRevision } from './revision-argument.js';
import { applyResult, checkSetChange, isEmptyPlan, planSetChange } from './set-change.js';
import type { CheckedChange, SetPlan } from './set-change.js';
import { storeError } from './store-errors.js';
import type { ApplyResult, ConfigStore, SetChange, StoredDocument, StoreListener, StoreSnapshot, StoreWatch, WatchOptions } from './types.js';

/** etcd's own defaults for --max-txn-ops and --max-request-bytes. */
export const ETCD_DEFAULT_MAX_TXN_OPS = 128;
export const ETCD_DEFAULT_MAX_REQUEST_BYTES = 1.5 * 1024 * 1024;
const DEFAULT_START_TIMEOUT_MS = 10_000;
const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;
/** Lost races in a row before an unconditional write gives up. */
const MAX_WRITE_ATTEMPTS = 20;
/** What a transaction carries besides keys and values (compare, headers, framing): generous. */
const TXN_OVERHEAD_BYTES = 4096;
const OP_OVERHEAD_BYTES = 32;

export interface EtcdStoreOptions {
  /** Client URLs of one etcd cluster, as parseEtcdUrls() returns them. */
  readonly urls: readonly string[];
  /** Key prefix; default /tracemesh/config/. */
  readonly prefix?: string;
  /** How long start() waits for etcd to answer. */
  readonly startTimeoutMs?: number;
  /** Deadline of each request. */
  readonly requestTimeoutMs?: number;
  /** The etcd server's --max-txn-ops: a set change needs one operation per document written or deleted, plus one. */
  readonly maxTxnOps?: number;
  /** The etcd server's --max-request-bytes. */
  readonly maxRequestBytes?: number;
}

type Lifecycle = 'new' | 'starting' | 'started' | 'closed';

/** Rejects when `promise` has not settled within `ms` (the promise itself runs on, unobserved). */
function withDeadline<T>(promise: Promise<T>, ms: number): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${Math.max(0, Math.round(ms))} ms`)), Math.max(0, ms));
  });
  promise.catch(() => undefined);
  return Promise.race([promise, expired]).finally(() => clearTimeout(timer));
}

function positiveInteger(value: number | undefined, fallback: number, what: string): number {
  const result = value ?? fallback;
  if (!Number.isSafeInteger(result) || result <= 0) throw storeError('TM_ERR_CP_STORE_BAD_ARGUMENT', `${what}: expected a positive whole number, got ${String(value)}`);
  return result;
}

export class EtcdConfigStore implements ConfigStore {
  readonly location: string;
  /** The client URLs and the key prefix: the registry and the replica list live beside the set (siblingPrefix). */
  readonly urls: readonly string[];
  readonly prefix: string;
  private readonly keys: EtcdKeys;
  private readonly startTimeoutMs: number;
  private readonly requestTimeoutMs: number;
  private readonly maxTxnOps: number;
  private readonly maxRequestBytes: number;
  private readonly watches = new Set<EtcdWatch>();
  private client: Etcd3 | undefined = undefined;
  private state: Lifecycle = 'new';
  /** This process's writes one after another (fewer lost races); other writers are met by the compare. */
  private writes: Promise<unknown> = Promise.resolve();

  constructor(options: EtcdStoreOptions) {
    if (!Array.isArray(options.urls) || options.urls.length === 0) throw storeError('TM_ERR_CP_STORE_BAD_ARGUMENT', 'etcd: expected at least one client URL');
    this.urls = [...options.urls];
    this.location = this.urls.join(',');
    this.keys = new EtcdKeys(options.prefix ?? DEFAULT_ETCD_PREFIX);
    this.prefix = this.keys.prefix;
    this.startTimeoutMs = positiveInteger(options.startTimeoutMs, DEFAULT_START_TIMEOUT_MS, 'startTimeoutMs');
    this.requestTimeoutMs = positiveInteger(options.requestTimeoutMs, DEFAULT_REQUEST_TIMEOUT_MS, 'requestTimeoutMs');
    this.maxTxnOps = positiveInteger(options.maxTxnOps, ETCD_DEFAULT_MAX_TXN_OPS, 'maxTxnOps');
    this.maxRequestBytes = positiveInteger(options.maxRequestBytes, ETCD_DEFAULT_MAX_REQUEST_BYTES, 'maxRequestBytes');
  }

  async start(): Promise<void> {
    if (this.state === 'closed') throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store on etcd at ${this.location} is closed`);
    if (this.state !== 'new') return;
    this.state = 'starting';
    const requestTimeoutMs = this.requestTimeoutMs;
    const options: IOptions = {
      hosts: [...this.urls],
      // Streams (watches) live on; every other call has a deadline, so nothing waits forever on a silent host.
      defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + requestTimeoutMs }),
      // list() of a full set (up to MAX_SET_BYTES) in one answer.
      grpcOptions: { 'grpc.max_receive_message_length': MAX_SET_BYTES + 16 * 1024 * 1024 },
    };
    const client = new Etcd3(options);
    this.client = client;
    const deadline = Date.now() + this.startTimeoutMs;
    let lastError: unknown;
    for (let attempt = 0; this.state === 'starting'; attempt++) {
      const remaining = deadline - Date.now();
      try {
        // Raced against the deadline: the client's own retries could take longer than we promised to wait.
        await withDeadline(client.get(this.keys.revisionKey).exec(), remaining);
        lastError = undefined;
        break;
      } catch (err) {
        // Keep the most telling failure: the client's pause after failures says less than the failure itself.
        if (lastError === undefined || !/circuit breaker/i.test(errorMessage(err))) lastError = err;
      }
      const left = deadline - Date.now();
      if (left <= 0) break;
      await sleep(Math.min(backoffMs(attempt), left));
    }
    if (this.state !== 'starting') throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store on etcd at ${this.location} was closed while starting`);
    if (lastError !== undefined) {
      this.state = 'new';
      this.client = undefined;
      client.close();
      throw storeError('TM_ERR_CP_STORE_UNAVAILABLE', `etcd at ${this.location} did not answer within ${this.startTimeoutMs} ms: ${describeEtcdError(lastError)}`, lastError);
    }
    // A set that cannot be read back is said now, with its key, not at the first request.
    await readEtcdSet(client, this.keys, this.location);
    this.state = 'started';
  }

  async close(): Promise<void> {
    if (this.state === 'closed') return;
    this.state = 'closed';
    for (const watch of [...this.watches]) watch.stop();
    await this.writes.catch(() => undefined);
    this.client?.close();
    this.client = undefined;
  }

  async list(): Promise<StoreSnapshot> {
    const set = await readEtcdSet(this.started(), this.keys, this.location);
    return { revision: set.revision, documents: storedDocuments(set) };
  }

  async get(kind: string, namespace: string, name: string): Promise<StoredDocument | undefined> {
    const client = this.started();
    const key = checkKey({ kind, namespace, name }, 'get');
    let kv: IKeyValue | undefined;
    try {
      kv = (await client.get(this.keys.documentKey(key)).exec()).kvs[0];
    } catch (err) {
      throw etcdFailure(this.location, `read ${documentId(key)}`, err);
    }
    if (kv === undefined) return undefined;
    const found = decodeEtcdDocument(this.keys, this.location, kv);
    return { document: found.document, revision: found.revision };
  }

  async revision(): Promise<number> {
    const client = this.started();
    try {
      const response = await client.get(this.keys.revisionKey).exec();
      const kv = response.kvs[0];
      return kv === undefined ? 0 : Number(kv.mod_revision);
    } catch (err) {
      throw etcdFailure(this.location, 'read the store revision', err);
    }
  }

  applySet(change: SetChange, expectedRevision?: number): Promise<ApplyResult> {
    try {
      const client = this.started();
      const checked = checkSetChange(change);
      const expected = expectedRevision === undefined ? undefined : checkRevision(expectedRevision, 'expectedRevision');
      const run = this.writes.then(() => this.write(client, checked, expected));
      this.writes = run.catch(() => undefined);
      return run;
    } catch (err) {
      return Promise.reject(err);
    }
  }

  delete(kind: string, namespace: string, name: string, expectedRevision?: number): Promise<ApplyResult> {
    return this.applySet({ put: [], delete: [{ kind, namespace, name }] }, expectedRevision);
  }

  async watch(listener: StoreListener, options: WatchOptions = {}): Promise<StoreWatch> {
    const client = this.started();
    if (options.fromRevision !== undefined) checkRevision(options.fromRevision, 'fromRevision');
    const watch = await EtcdWatch.start({ client, keys: this.keys, location: this.location }, listener, options, (stopped) => this.watches.delete(stopped));
    if (this.state !== 'started') {
      watch.stop();
      throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store on etcd at ${this.location} was closed while the watch started`);
    }
    this.watches.add(watch);
    return watch;
  }

  private async write(client: Etcd3, checked: CheckedChange, expected: number | undefined): Promise<ApplyResult> {
    for (let attempt = 1; ; attempt++) {
      if (this.state !== 'started') throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store on etcd at ${this.location} is closed`);
      const base = await readEtcdSet(client, this.keys, this.location);
      if (expected !== undefined && base.revision !== expected) throw this.conflict(base.revision, expected);
      const plan = planSetChange(base.documents, base.bytes, checked);
      if (isEmptyPlan(plan)) return applyResult(plan, base.revision);
      this.checkTransactionSize(plan);
      const committed = await this.commit(client, base, plan);
      if (committed !== undefined) return applyResult(plan, committed);
      if (expected !== undefined) throw this.conflict(await this.revision(), expected);
      if (attempt >= MAX_WRITE_ATTEMPTS) {
        throw storeError('TM_ERR_CP_STORE_CONFLICT', `the config store on etcd at ${this.location}: other writers won ${MAX_WRITE_ATTEMPTS} races in a row; nothing was written`);
      }
    }
  }

  /** The new revision, or undefined when the revision key moved since `base` was read. */
  private async commit(client: Etcd3, base: EtcdSet, plan: SetPlan): Promise<number | undefined> {
    const writeId = randomUUID();
    const operations = [
      ...plan.writes.map((encoded) => client.put(this.keys.documentKey(encoded.key)).value(encoded.text)),
      ...plan.removals.map((key) => client.delete().key(this.keys.documentKey(key))),
      client.put(this.keys.revisionKey).value(writeId),
    ];
    try {
      const response = await client.if(this.keys.revisionKey, 'Mod', '==', base.revision).then(...operations).commit();
      return response.succeeded ? Number(response.header.revision) : undefined;
    } catch (err) {
      // The answer was lost, not necessarily the write (or a retry inside the client ran it twice and the second lost the compare): ask the revision key.
      const now = await readEtcdSet(client, this.keys, this.location).catch(() => undefined);
      if (now?.writeId === writeId) return now.revision;
      const outcome = now === undefined ? 'it may or may not have been applied' : 'it was not applied, or another writer has written since';
      throw etcdFailure(this.location, `apply the set change (${outcome}: read the set to see)`, err);
    }
  }

  private checkTransactionSize(plan: SetPlan): void {
    const operations = plan.writes.length + plan.removals.length + 1;
    if (operations > this.maxTxnOps) {
      throw storeError(
        'TM_ERR_CP_STORE_TOO_LARGE',
        `this set change writes or deletes ${operations - 1} documents: ${operations} operations in one etcd transaction, and etcd at ${this.location} takes at most ${this.maxTxnOps} (its --max-txn-ops); nothing was written`,
      );
    }
    let bytes = TXN_OVERHEAD_BYTES;
    for (const encoded of plan.writes) bytes += Buffer.byteLength(this.keys.documentKey(encoded.key)) + encoded.bytes + OP_OVERHEAD_BYTES;
    for (const key of plan.removals) bytes += Buffer.byteLength(this.keys.documentKey(key)) + OP_OVERHEAD_BYTES;
    if (bytes > this.maxRequestBytes) {
      throw storeError(
        'TM_ERR_CP_STORE_TOO_LARGE',
        `this set change is about ${bytes} bytes in one etcd transaction, and etcd at ${this.location} takes at most ${this.maxRequestBytes} (its --max-request-bytes); nothing was written`,
      );
    }
  }

  private conflict(current: number, expected: number): Error {
    return storeError(
      'TM_ERR_CP_STORE_CONFLICT',
      `the config store on etcd at ${this.location} is at revision ${current}, not ${expected} as expected: another writer changed the set; read it again and retry`,
    );
  }

  private started(): Etcd3 {
    if (this.state === 'closed') throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store on etcd at ${this.location} is closed`);
    if (this.state !== 'started' || this.client === undefined) throw storeError('TM_ERR_CP_STORE_CLOSED', `the config store on etcd at ${this.location} is not started (call start() first)`);
    return this.client;
  }
}
