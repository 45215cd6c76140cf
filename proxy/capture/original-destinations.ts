/**
 * Transparent outbound: where a captured connection goes, decided from its
 * original destination (the address and port the app connected to):
 *  - a service name's VIP → that service's cluster, load-balanced;
 *  - one endpoint's address at one of the service's ports → that service,
 *    pinned to that endpoint (the app chose the pod; Istio does the same for
 *    pod addresses);
 *  - anything else → passthrough to where it was going, as TCP with a span,
 *    or nothing at all under `registry-only`.
 * The pinned and passthrough clusters are made once per destination and
 * kept in a bounded map, dropped whole when the registry is replaced.
 */
import { singleEndpointCluster } from '../clusters/static-registry.js';
import type { Cluster, ClusterRegistry, ServicePort } from '../clusters/types.js';

export type OutboundPolicy = 'allow-any' | 'registry-only';
export const OUTBOUND_POLICIES: readonly OutboundPolicy[] = ['allow-any', 'registry-only'];

/** The service name spans and metrics carry for traffic to destinations the mesh does not know. */
export const PASSTHROUGH_SERVICE = 'passthrough';

const DEFAULT_MAX_CACHED = 4096;

export class OriginalDestinations {
  private readonly cache = new Map<string, Cluster>();
  private cachedFor: ClusterRegistry | undefined;

  constructor(
    private readonly registry: () => ClusterRegistry,
    private readonly policy: OutboundPolicy,
    private readonly maxCached = DEFAULT_MAX_CACHED,
  ) {}

  /** The cluster a captured connection to address:port goes to; undefined = refuse (registry-only). */
  decide(address: string, port: number): Cluster | undefined {
    return this.service(address, port) ?? (this.policy === 'allow-any' ? this.cached(`p ${address} ${port}`, () => passthrough(address, port)) : undefined);
  }

  /** As `decide`, but only destinations of a known service (HTTP routing falls back to this). */
  service(address: string, port: number): Cluster | undefined {
    const registry = this.registry();
    const byVip = registry.resolve(address, port);
    if (byVip !== undefined) return byVip;
    const match = registry.resolveEndpointAddress(address, port);
    if (match === undefined) return undefined;
    const c = match.cluster;
    return this.cached(`s ${address} ${port}`, () => singleEndpointCluster(c.service, c.namespace, c.port, { address, port, ports: {}, labels: match.labels }));
  }

  private cached(key: string, make: () => Cluster): Cluster {
    const registry = this.registry();
    if (registry !== this.cachedFor) {
      this.cache.clear();
      this.cachedFor = registry;
    }
    let cluster = this.cache.get(key);
    if (cluster === undefined) {
      cluster = make();
      // Oldest first out: a pod scanning many addresses cannot grow the map without bound.
      if (this.cache.size >= this.maxCached) this.cache.delete(this.cache.keys().next().value as string);
      this.cache.set(key, cluster);
    }
    return cluster;
  }
}

function passthrough(address: string, port: number): Cluster {
  const servicePort: ServicePort = { name: PASSTHROUGH_SERVICE, port, protocol: 'tcp' };
  return singleEndpointCluster(PASSTHROUGH_SERVICE, '', servicePort, { address, port, ports: {}, labels: {} });
}
