/**
 * What a control plane shares with its replicas, chosen by its store: with
 * etcd, the workload registry and the replica list live in etcd beside the
 * configuration; with a directory (one control plane) the registry is in
 * memory and there are no replicas.
 */
import { randomUUID } from 'node:crypto';
import { hostname } from 'node:os';
import { MemoryWorkloadRegistry, type WorkloadRegistry } from './workload-registry.js';
import { SoloReplica, type ReplicaSet } from './replica-set.js';
import { siblingPrefix } from './store/etcd-keys.js';
import { EtcdReplicaSet } from './store/etcd-replica-set.js';
import { EtcdConfigStore } from './store/etcd-store.js';
import { EtcdWorkloadRegistry } from './store/etcd-workload-registry.js';
import type { ConfigStore } from './store/types.js';

export interface Replication {
  readonly registry: WorkloadRegistry;
  readonly replicas: ReplicaSet;
}

export interface ReplicationOptions {
  readonly registryTtlMs: number;
  readonly maxProxies: number;
  readonly log: (message: string) => void;
}

export function createReplication(store: ConfigStore, options: ReplicationOptions): Replication {
  // Unique per process and start: a replica restarted on the same host is a new entry, the old one expires.
  const id = `${hostname()}-${process.pid}-${randomUUID().slice(0, 8)}`;
  if (!(store instanceof EtcdConfigStore)) {
    return { registry: new MemoryWorkloadRegistry({ ttlMs: options.registryTtlMs, maxProxies: options.maxProxies }), replicas: new SoloReplica(id) };
  }
  return {
    registry: new EtcdWorkloadRegistry({ urls: store.urls, prefix: siblingPrefix(store.prefix, 'registry'), ttlMs: options.registryTtlMs, maxProxies: options.maxProxies, log: options.log }),
    replicas: new EtcdReplicaSet({ urls: store.urls, prefix: siblingPrefix(store.prefix, 'replicas'), id, log: options.log }),
  };
}
