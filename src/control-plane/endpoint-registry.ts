/**
 * The registry half of the control plane: proxies register the workload
 * they front (service, namespace, version and labels, and the address and
 * port peers should call) and heartbeat; a registration not renewed within
 * the TTL expires. Endpoints of Service documents (static entries) are merged
 * with the registered ones when a proxy's view of the mesh is built.
 *
 * State is bounded (at most `maxProxies` registrations) and the clock is
 * injected, so expiry is tested without waiting.
 */
import type { EndpointSpec } from '../config/types.js';
import { TracemeshError } from '../lib/errors.js';

export interface ProxyRegistration {
  /** Chosen by the proxy, stable across its reconnects (e.g. service-namespace-host-pid). */
  readonly id: string;
  readonly service: string;
  readonly namespace: string;
  readonly version: string;
  readonly labels: Readonly<Record<string, string>>;
  /** Where peers reach this workload: its inbound listener in explicit mode, the app's address under capture. */
  readonly address: string;
  readonly port: number;
}

export interface RegisteredProxy extends ProxyRegistration {
  readonly registeredAtMs: number;
  lastHeartbeatMs: number;
}

export interface EndpointRegistryOptions {
  readonly ttlMs: number;
  readonly maxProxies: number;
  readonly now: () => number;
}

export const DEFAULT_REGISTRY_OPTIONS: EndpointRegistryOptions = { ttlMs: 30_000, maxProxies: 20_000, now: Date.now };

export class EndpointRegistry {
  private readonly proxies = new Map<string, RegisteredProxy>();
  private readonly listeners = new Set<() => void>();

  constructor(private readonly options: EndpointRegistryOptions = DEFAULT_REGISTRY_OPTIONS) {}

  /** Adds or replaces a registration (a restarted proxy registers again under its id). */
  register(registration: ProxyRegistration): RegisteredProxy {
    const existing = this.proxies.get(registration.id);
    if (existing === undefined && this.proxies.size >= this.options.maxProxies) {
      throw new TracemeshError('TM_ERR_CP_REGISTRY_FULL', `the registry holds ${this.options.maxProxies} proxies already; ${registration.id} was not registered`);
    }
    const now = this.options.now();
    const entry: RegisteredProxy = { ...registration, labels: { ...registration.labels }, registeredAtMs: now, lastHeartbeatMs: now };
    this.proxies.set(registration.id, entry);
    if (existing === undefined || endpointChanged(existing, entry)) this.changed();
    return entry;
  }

  /** False when the id is unknown (expired or never registered): the proxy must register again. */
  heartbeat(id: string): boolean {
    const entry = this.proxies.get(id);
    if (entry === undefined) return false;
    entry.lastHeartbeatMs = this.options.now();
    return true;
  }

  deregister(id: string): boolean {
    const removed = this.proxies.delete(id);
    if (removed) this.changed();
    return removed;
  }

  /** Removes registrations older than the TTL; returns their ids. Called on a timer by the server. */
  expire(): string[] {
    const cutoff = this.options.now() - this.options.ttlMs;
    const expired: string[] = [];
    for (const [id, entry] of this.proxies) {
      if (entry.lastHeartbeatMs < cutoff) {
        this.proxies.delete(id);
        expired.push(id);
      }
    }
    if (expired.length > 0) this.changed();
    return expired;
  }

  list(): RegisteredProxy[] {
    return [...this.proxies.values()];
  }

  get(id: string): RegisteredProxy | undefined {
    return this.proxies.get(id);
  }

  /** Called after every change of the endpoint set (not on plain heartbeats). Returns the unsubscribe. */
  onChange(listener: () => void): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Every registered workload as an endpoint (see the function below). */
  endpointsByService(): Map<string, EndpointSpec[]> {
    return endpointsByService(this.proxies.values());
  }

  private changed(): void {
    for (const listener of this.listeners) listener();
  }
}

/**
 * Every registered workload as an endpoint, by "service.namespace", each
 * list in a stable order (the same registrations always give the same
 * snapshot version). The snapshot merges them into the Service documents.
 */
export function endpointsByService(registrations: Iterable<ProxyRegistration>): Map<string, EndpointSpec[]> {
  const byService = new Map<string, EndpointSpec[]>();
  for (const entry of registrations) {
    const key = `${entry.service}.${entry.namespace}`;
    let list = byService.get(key);
    if (list === undefined) byService.set(key, (list = []));
    list.push({ address: entry.address, port: entry.port, labels: { ...entry.labels, version: entry.version } });
  }
  for (const list of byService.values()) list.sort(byAddress);
  return byService;
}

/** Whether what peers see of a workload (its endpoint) differs; a plain re-registration changes nothing. */
export function endpointChanged(a: ProxyRegistration, b: ProxyRegistration): boolean {
  if (a.service !== b.service || a.namespace !== b.namespace || a.version !== b.version || a.address !== b.address || a.port !== b.port) return true;
  const aKeys = Object.keys(a.labels);
  return aKeys.length !== Object.keys(b.labels).length || aKeys.some((k) => a.labels[k] !== b.labels[k]);
}

/** A stable order, so the same set of registrations always gives the same config version. */
function byAddress(a: EndpointSpec, b: EndpointSpec): number {
  return a.address === b.address ? a.port - b.port : a.address < b.address ? -1 : 1;
}
