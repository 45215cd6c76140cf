/**
 * The workload registry shared by every control-plane replica on one etcd.
 * A registration is one key, `<registry prefix><proxy id>`, attached to a
 * lease of its own whose TTL is the registry's TTL: a proxy that stops
 * heartbeating (to whichever replica) disappears when its lease runs out,
 * and a replica that dies takes nothing with it, since its proxies'
 * leases are theirs. Every replica watches the prefix and keeps a view of
 * it, so a snapshot built anywhere holds every registered endpoint.
 *
 * etcd load, per proxy: a registration is a lease grant and a put (two
 * writes through raft); registering again with the same endpoint (every
 * reconnect, to any replica) renews the lease instead. A heartbeat renews
 * the lease over one shared keep-alive stream, at most three times per TTL
 * whatever the proxies' heartbeat interval (6 a minute with the 30 s
 * default); renewals are served by the etcd leader without a raft write.
 * So in steady state: 0 KV writes and at most 6 lease renewals per proxy
 * per minute.
 */
import { Etcd3, type IKeyValue, type Watcher } from 'etcd3';
import type { EndpointSpec } from '../../config/types.js';
import { backoffMs } from '../../lib/backoff.js';
import { TracemeshError, errorMessage } from '../../lib/errors.js';
import { endpointChanged, endpointsByService, type ProxyRegistration, type RegisteredProxy } from '../endpoint-registry.js';
import type { WorkloadRegistry } from '../workload-registry.js';
import { describeEtcdError, etcdFailure } from './etcd-errors.js';
import { LeaseKeepAlive } from './etcd-lease-keepalive.js';

export interface EtcdRegistryOptions {
  readonly urls: readonly string[];
  /** Key prefix of the registrations, e.g. /tracemesh/config-registry/ (siblingPrefix in etcd-keys.ts). */
  readonly prefix: string;
  readonly ttlMs: number;
  readonly maxProxies: number;
  readonly requestTimeoutMs?: number;
  /** Problems the registry survives (etcd away for a while, a damaged key). */
  readonly log: (message: string) => void;
}

interface Entry extends RegisteredProxy {
  readonly leaseId: string;
}

/** What one key holds. */
interface StoredRegistration extends ProxyRegistration {
  readonly leaseId: string;
  readonly registeredAtMs: number;
}

const DEFAULT_REQUEST_TIMEOUT_MS = 5_000;

export class EtcdWorkloadRegistry implements WorkloadRegistry {
  readonly shared = true;
  private readonly location: string;
  private readonly ttlSeconds: number;
  private readonly requestTimeoutMs: number;
  private readonly view = new Map<string, Entry>();
  /** When this replica last renewed each lease: renewals are spaced by a third of the TTL at least. */
  private readonly renewedAt = new Map<string, number>();
  private readonly listeners = new Set<() => void>();
  private client: Etcd3 | undefined;
  private keepAlive: LeaseKeepAlive | undefined;
  private watcher: Watcher | undefined;
  private reconnectTimer: NodeJS.Timeout | undefined;
  private attempt = 0;
  private closed = false;

  constructor(private readonly options: EtcdRegistryOptions) {
    this.location = options.urls.join(',');
    // etcd counts leases in whole seconds; never below 2 (its own minimum is about 1.5 s).
    this.ttlSeconds = Math.max(2, Math.ceil(options.ttlMs / 1000));
    this.requestTimeoutMs = options.requestTimeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS;
  }

  async start(): Promise<void> {
    if (this.client !== undefined) return;
    const timeout = this.requestTimeoutMs;
    const client = new Etcd3({ hosts: [...this.options.urls], defaultCallOptions: (context) => (context.isStream ? {} : { deadline: Date.now() + timeout }) });
    this.client = client;
    this.keepAlive = new LeaseKeepAlive(client, this.location, timeout);
    try {
      const revision = await this.relist();
      this.open(revision);
    } catch (err) {
      await this.close();
      throw err;
    }
  }

  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.reconnectTimer);
    this.abandonWatch();
    this.keepAlive?.close();
    this.client?.close();
  }

  async register(registration: ProxyRegistration): Promise<void> {
    const client = this.started();
    const existing = this.view.get(registration.id);
    if (existing === undefined && this.view.size >= this.options.maxProxies) {
      throw new TracemeshError('TM_ERR_CP_REGISTRY_FULL', `the registry holds ${this.options.maxProxies} proxies already; ${registration.id} was not registered`);
    }
    // The same workload again (a reconnect, to this replica or another): renewing its lease is enough.
    if (existing !== undefined && !endpointChanged(existing, registration) && (await this.renew(existing.leaseId, true))) return;
    let leaseId: string;
    try {
      leaseId = String((await client.leaseClient.leaseGrant({ TTL: this.ttlSeconds })).ID);
    } catch (err) {
      throw etcdFailure(this.location, `grant a lease for ${registration.id}`, err);
    }
    const stored: StoredRegistration = { ...registration, labels: { ...registration.labels }, leaseId, registeredAtMs: Date.now() };
    try {
      await client.put(this.key(registration.id)).value(JSON.stringify(stored)).lease(leaseId).exec();
    } catch (err) {
      void client.leaseClient.leaseRevoke({ ID: leaseId }).catch(() => undefined);
      throw etcdFailure(this.location, `register ${registration.id}`, err);
    }
    this.renewedAt.set(leaseId, Date.now());
    // Into the view now, not when the watch brings it back: the snapshot that follows must already hold it.
    this.accept(stored);
    // The key has moved to the new lease; the old one holds nothing any more.
    if (existing !== undefined && existing.leaseId !== leaseId) this.forgetLease(existing.leaseId, true);
  }

  async heartbeat(id: string): Promise<boolean> {
    this.started();
    const entry = this.view.get(id);
    if (entry === undefined) return false;
    const alive = await this.renew(entry.leaseId, false);
    if (alive) entry.lastHeartbeatMs = Date.now();
    return alive;
  }

  async deregister(id: string): Promise<boolean> {
    const client = this.started();
    const entry = this.view.get(id);
    if (entry === undefined) return false;
    try {
      // Revoking the lease deletes the key; every replica's watch removes it.
      await client.leaseClient.leaseRevoke({ ID: entry.leaseId });
    } catch (err) {
      throw etcdFailure(this.location, `deregister ${id}`, err);
    }
    this.renewedAt.delete(entry.leaseId);
    this.remove(id);
    return true;
  }

  list(): RegisteredProxy[] {
    return [...this.view.values()].map(({ leaseId: _leaseId, ...rest }) => rest);
  }

  endpointsByService(): Map<string, EndpointSpec[]> {
    return endpointsByService(this.view.values());
  }

  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Renews a lease unless this replica did within a third of the TTL; false when etcd says it has expired. */
  private async renew(leaseId: string, force: boolean): Promise<boolean> {
    const last = this.renewedAt.get(leaseId);
    const now = Date.now();
    if (!force && last !== undefined && now - last < (this.ttlSeconds * 1000) / 3) return true;
    const ttl = await this.keepAlive!.renew(leaseId);
    if (ttl <= 0) {
      this.renewedAt.delete(leaseId);
      return false;
    }
    this.renewedAt.set(leaseId, now);
    return true;
  }

  private forgetLease(leaseId: string, revoke: boolean): void {
    this.renewedAt.delete(leaseId);
    if (revoke) void this.client?.leaseClient.leaseRevoke({ ID: leaseId }).catch(() => undefined);
  }

  private key(id: string): string {
    return `${this.options.prefix}${encodeURIComponent(id)}`;
  }

  /** Reads every registration, replaces the view with them (reporting a change if any) and returns the etcd revision read at. */
  private async relist(): Promise<number> {
    const client = this.started();
    let kvs: IKeyValue[];
    let revision: number;
    try {
      const response = await client.getAll().prefix(this.options.prefix).exec();
      kvs = response.kvs;
      revision = Number(response.header.revision);
    } catch (err) {
      throw etcdFailure(this.location, 'read the registry', err);
    }
    const fresh = new Map<string, Entry>();
    for (const kv of kvs) {
      const stored = this.decode(kv);
      if (stored !== undefined) fresh.set(stored.id, entryOf(stored));
    }
    let changed = fresh.size !== this.view.size;
    for (const [id, entry] of fresh) {
      const old = this.view.get(id);
      if (old === undefined || endpointChanged(old, entry)) changed = true;
    }
    this.view.clear();
    for (const [id, entry] of fresh) this.view.set(id, entry);
    if (changed) this.changed();
    return revision;
  }

  private open(afterRevision: number): void {
    const watcher = this.started().watch().prefix(this.options.prefix).startRevision(String(afterRevision + 1)).watcher();
    this.watcher = watcher;
    watcher.on('connected', () => {
      if (this.watcher === watcher) this.attempt = 0;
    });
    watcher.on('put', (kv) => {
      if (this.watcher !== watcher) return;
      const stored = this.decode(kv);
      if (stored !== undefined) this.accept(stored);
    });
    watcher.on('delete', (kv) => {
      if (this.watcher !== watcher) return;
      const id = decodeURIComponent(kv.key.toString().slice(this.options.prefix.length));
      this.remove(id);
    });
    const lost = (err: unknown): void => {
      if (this.watcher !== watcher) return;
      this.abandonWatch();
      this.options.log(`registry watch on etcd at ${this.location} broke (${describeEtcdError(err)}); reading the registry again`);
      this.reconnect();
    };
    watcher.on('disconnected', lost);
    watcher.on('error', lost);
  }

  /** Reads the whole registry again and watches from there: whatever happened meanwhile (expiries too) is caught up. */
  private reconnect(): void {
    if (this.closed || this.reconnectTimer !== undefined) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.closed) return;
      this.relist().then(
        (revision) => {
          if (!this.closed) this.open(revision);
        },
        (err: unknown) => {
          this.options.log(errorMessage(err));
          this.reconnect();
        },
      );
    }, backoffMs(this.attempt++));
    this.reconnectTimer.unref();
  }

  private abandonWatch(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    watcher?.cancel().catch(() => undefined);
  }

  private accept(stored: StoredRegistration): void {
    const old = this.view.get(stored.id);
    if (old !== undefined && old.leaseId !== stored.leaseId) this.renewedAt.delete(old.leaseId);
    this.view.set(stored.id, entryOf(stored));
    if (old === undefined || endpointChanged(old, stored)) this.changed();
  }

  private remove(id: string): void {
    const old = this.view.get(id);
    if (old === undefined) return;
    this.view.delete(id);
    this.renewedAt.delete(old.leaseId);
    this.changed();
  }

  /** A key's registration; a damaged one is logged and skipped (the lease still clears it). */
  private decode(kv: IKeyValue): StoredRegistration | undefined {
    const key = kv.key.toString();
    try {
      const value = JSON.parse(kv.value.toString('utf8')) as Partial<StoredRegistration>;
      const text = (v: unknown): v is string => typeof v === 'string' && v.length > 0;
      if (!text(value.id) || !text(value.service) || !text(value.namespace) || typeof value.version !== 'string' || !text(value.address) || typeof value.port !== 'number') {
        throw new Error('not a registration (id, service, namespace, version, address, port)');
      }
      if (typeof value.labels !== 'object' || value.labels === null) throw new Error('"labels" is not an object');
      // The lease the key is attached to is what counts (a value copied by hand could name another).
      return { ...(value as StoredRegistration), leaseId: String(kv.lease) };
    } catch (err) {
      this.options.log(`etcd key ${key} at ${this.location}: ${errorMessage(err)}; skipped`);
      return undefined;
    }
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }

  private started(): Etcd3 {
    if (this.closed || this.client === undefined) throw new TracemeshError('TM_ERR_CP_STORE_CLOSED', `the registry on etcd at ${this.location} is ${this.closed ? 'closed' : 'not started'}`);
    return this.client;
  }
}

function entryOf(stored: StoredRegistration): Entry {
  return {
    id: stored.id,
    service: stored.service,
    namespace: stored.namespace,
    version: stored.version,
    labels: { ...stored.labels },
    address: stored.address,
    port: stored.port,
    leaseId: stored.leaseId,
    registeredAtMs: stored.registeredAtMs,
    lastHeartbeatMs: stored.registeredAtMs,
  };
}
