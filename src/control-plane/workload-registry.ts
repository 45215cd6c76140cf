/**
 * The registry as the control plane's server sees it, whatever keeps it:
 * in this process's memory (the directory store, one control plane), or in
 * etcd (several replicas, each seeing every replica's registrations, see
 * store/etcd-workload-registry.ts). Writes are asynchronous because the
 * shared one waits for etcd; reads are of a local view, so building a
 * snapshot never waits on the network.
 */
import type { EndpointSpec } from '../config/types.js';
import { EndpointRegistry, type ProxyRegistration, type RegisteredProxy } from './endpoint-registry.js';

export interface WorkloadRegistry {
  /** True when registrations outlive this process (kept in etcd): a restarted replica finds them again. */
  readonly shared: boolean;
  /** Loads what is already registered (etcd) and starts expiring; a clear error when the store cannot be read. */
  start(): Promise<void>;
  /** Stops timers and watches and releases connections; registrations are left to their TTL. Safe twice. */
  close(): Promise<void>;
  /** Adds or replaces a registration (a proxy registers again under its id after any reconnect). */
  register(registration: ProxyRegistration): Promise<void>;
  /** Renews a registration; false when the id is unknown or expired: the proxy must register again. */
  heartbeat(id: string): Promise<boolean>;
  deregister(id: string): Promise<boolean>;
  list(): RegisteredProxy[];
  /** Registered workloads by "service.namespace", each list in a stable order (see EndpointRegistry). */
  endpointsByService(): Map<string, EndpointSpec[]>;
  /** Called after every change of the endpoint set (not on plain heartbeats). Returns the unsubscribe. */
  onChange(listener: () => void): () => void;
}

export interface MemoryRegistryOptions {
  readonly ttlMs: number;
  readonly maxProxies: number;
}

/** The registry of one control plane: in memory, gone with the process (hence the start-up grace, server.ts). */
export class MemoryWorkloadRegistry implements WorkloadRegistry {
  readonly shared = false;
  private readonly registry: EndpointRegistry;
  private expiry: NodeJS.Timeout | undefined;

  constructor(private readonly options: MemoryRegistryOptions) {
    this.registry = new EndpointRegistry({ ttlMs: options.ttlMs, maxProxies: options.maxProxies, now: Date.now });
  }

  start(): Promise<void> {
    if (this.expiry === undefined) {
      this.expiry = setInterval(() => this.registry.expire(), Math.max(100, Math.floor(this.options.ttlMs / 3)));
      this.expiry.unref();
    }
    return Promise.resolve();
  }

  close(): Promise<void> {
    if (this.expiry !== undefined) clearInterval(this.expiry);
    return Promise.resolve();
  }

  register(registration: ProxyRegistration): Promise<void> {
    try {
      this.registry.register(registration);
      return Promise.resolve();
    } catch (err) {
      return Promise.reject(err);
    }
  }

  heartbeat(id: string): Promise<boolean> {
    return Promise.resolve(this.registry.heartbeat(id));
  }

  deregister(id: string): Promise<boolean> {
    return Promise.resolve(this.registry.deregister(id));
  }

  list(): RegisteredProxy[] {
    return this.registry.list();
  }

  endpointsByService(): Map<string, EndpointSpec[]> {
    return this.registry.endpointsByService();
  }

  onChange(listener: () => void): () => void {
    return this.registry.onChange(listener);
  }
}
