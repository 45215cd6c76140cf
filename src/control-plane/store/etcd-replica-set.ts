/**
 * Control-plane replicas on one etcd find each other here: each keeps one
 * key, `<replicas prefix><replica id>` → `{ id, url }`, on a lease it keeps
 * alive itself (etcd3's Lease: one renewal every TTL/3), so a replica that
 * dies drops out within the TTL and one that stops drops out at once.
 */
import { Etcd3, type Lease } from 'etcd3';
import { errorMessage } from '../../lib/errors.js';
import type { ReplicaInfo, ReplicaSet } from '../replica-set.js';
import { etcdFailure } from './etcd-errors.js';

export interface EtcdReplicaSetOptions {
  readonly urls: readonly string[];
  /** e.g. /tracemesh/config-replicas/ (siblingPrefix in etcd-keys.ts). */
  readonly prefix: string;
  readonly id: string;
  readonly log: (message: string) => void;
  /** How long a dead replica stays listed. */
  readonly ttlSeconds?: number;
  readonly requestTimeoutMs?: number;
}

const DEFAULT_TTL_SECONDS = 10;
const RETRY_MS = 1_000;

export class EtcdReplicaSet implements ReplicaSet {
  readonly id: string;
  private readonly location: string;
  private readonly client: Etcd3;
  private lease: Lease | undefined;
  private url: string | undefined;
  private retry: NodeJS.Timeout | undefined;
  private closed = false;

  constructor(private readonly options: EtcdReplicaSetOptions) {
    this.id = options.id;
    this.location = options.urls.join(',');
    const timeout = options.requestTimeoutMs ?? 5_000;
    this.client = new Etcd3({ hosts: [...options.urls], defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }) });
  }

  async announce(url: string): Promise<void> {
    this.url = url;
    const lease = this.client.lease(this.options.ttlSeconds ?? DEFAULT_TTL_SECONDS);
    this.lease = lease;
    lease.on('lost', (err) => {
      if (this.closed || this.lease !== lease) return;
      this.options.log(`this replica's entry in etcd at ${this.location} was lost (${errorMessage(err)}); announcing it again`);
      this.again();
    });
    try {
      await lease.put(this.key()).value(JSON.stringify({ id: this.id, url }));
    } catch (err) {
      throw etcdFailure(this.location, `announce this control plane (${url})`, err);
    }
  }

  async peers(): Promise<ReplicaInfo[]> {
    let values: Record<string, string>;
    try {
      values = await this.client.getAll().prefix(this.options.prefix).strings();
    } catch (err) {
      throw etcdFailure(this.location, 'list the control-plane replicas', err);
    }
    const peers: ReplicaInfo[] = [];
    for (const [key, text] of Object.entries(values)) {
      try {
        const value = JSON.parse(text) as Partial<ReplicaInfo>;
        if (typeof value.id === 'string' && typeof value.url === 'string' && value.id !== this.id) peers.push({ id: value.id, url: value.url });
      } catch {
        this.options.log(`etcd key ${key} at ${this.location} is not a replica entry; skipped`);
      }
    }
    return peers;
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.retry);
    const lease = this.lease;
    this.lease = undefined;
    // Revoked, so the others stop asking this replica now rather than after the TTL.
    await lease?.revoke().catch(() => undefined);
    this.client.close();
  }

  private again(): void {
    if (this.closed || this.url === undefined || this.retry !== undefined) return;
    const url = this.url;
    this.retry = setTimeout(() => {
      this.retry = undefined;
      this.announce(url).catch((err: unknown) => {
        this.options.log(errorMessage(err));
        this.again();
      });
    }, RETRY_MS);
    this.retry.unref();
  }

  private key(): string {
    return `${this.options.prefix}${encodeURIComponent(this.id)}`;
  }
}
