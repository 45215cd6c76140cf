/**
 * One configuration version's traffic management, built whole from a
 * MeshConfig and swapped whole: the registry, one Destination per cluster
 * (the whole service, subset '') and per cluster × subset of the service's
 * DestinationPolicy, the route table and the rate limiter. What must outlive
 * the swap lives in the TrafficState passed in, the active health checks
 * included: destinations of a new version acquire the same probes (one per
 * endpoint and check, whichever destinations share the endpoint), and
 * close() releases this version's hold on them.
 *
 * Building a version also prunes the state to it (TrafficState.retain): call
 * this for the version being applied, then close() the previous config once
 * the new one is in place. The previous version's destinations keep working
 * for requests still in flight on them (their counters are the shared ones).
 */
import type { DestinationPolicySpec, MeshConfig } from '../../src/config/types.js';
import { createStaticRegistry } from '../clusters/static-registry.js';
import type { Cluster } from '../clusters/types.js';
import { createDestination, DEFAULT_PANIC_THRESHOLD_PERCENT, DEFAULT_TRAFFIC_POLICY, TrafficDestination, type DestinationDeps } from './destination.js';
import type { OutlierListener } from './outlier-detection.js';
import { createRateLimiter } from './rate-limit.js';
import { createRouteTable } from './route-table.js';
import type { TrafficState } from './traffic-state.js';
import type { Destination, RateLimiter, RouteTable, TrafficConfig } from './types.js';

const NO_ROUTES: RouteTable = {
  select() {
    throw new Error('traffic config used before its route table was built');
  },
};
const ADMIT_ALL: RateLimiter = { admit: () => undefined };

export interface TrafficConfigDeps {
  /** Balancers, weighted choices (default Math.random). */
  readonly random?: () => number;
  /** Ejection clock and retry-budget bucket (default Date.now); also the rate limiter's clock when given. */
  readonly now?: () => number;
  /** Outlier ejections, un-ejections and overflows, for metrics. */
  readonly onEjection?: OutlierListener;
  /** Run the policies' active health checks (default true; tests that build configs without wanting timers pass false). */
  readonly healthChecks?: boolean;
  /**
   * Envoy's healthy_panic_threshold for every destination (default 50, 0:
   * off): below this percent of usable endpoints, balance over all of them
   * (destination.ts), for policies that do not set `panicThreshold`.
   */
  readonly panicThresholdPercent?: number;
}

class BuiltTrafficConfig implements TrafficConfig {
  readonly destinations: readonly TrafficDestination[];
  /** cluster → subset → destination, for clusters of this version's registry. */
  private readonly byCluster = new Map<Cluster, Map<string, TrafficDestination>>();
  /** cluster name → subsets, for cluster objects of another version naming the same service port. */
  private readonly byName = new Map<string, Map<string, TrafficDestination>>();
  /** Clusters outside the configuration (passthrough, original destination): a default destination each, not kept in the state. */
  private readonly foreign = new WeakMap<Cluster, TrafficDestination>();
  private closed = false;

  // Set right after construction: the route table resolves its destinations through this object, maybe while it is built.
  routes: RouteTable = NO_ROUTES;
  rateLimits: RateLimiter = ADMIT_ALL;

  constructor(
    readonly version: string,
    readonly registry: TrafficConfig['registry'],
    destinations: readonly TrafficDestination[],
    private readonly foreignDeps: DestinationDeps,
  ) {
    this.destinations = destinations;
    for (const destination of destinations) {
      let subsets = this.byCluster.get(destination.cluster);
      if (subsets === undefined) {
        subsets = new Map();
        this.byCluster.set(destination.cluster, subsets);
        this.byName.set(destination.cluster.name, subsets);
      }
      subsets.set(destination.subset, destination);
    }
  }

  destination(cluster: Cluster, subset: string): Destination | undefined {
    const subsets = this.byCluster.get(cluster) ?? this.byName.get(cluster.name);
    if (subsets !== undefined) return subsets.get(subset);
    if (subset !== '') return undefined;
    let destination = this.foreign.get(cluster);
    if (destination === undefined) {
      destination = createDestination(cluster, { subset: '', labels: {}, policy: DEFAULT_TRAFFIC_POLICY }, this.foreignDeps);
      this.foreign.set(cluster, destination);
    }
    return destination;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    for (const destination of this.destinations) destination.close();
  }
}

function policyKey(name: string, namespace: string): string {
  return `${name}.${namespace}`;
}

export function createTrafficConfig(config: MeshConfig, version: string, state: TrafficState, deps: TrafficConfigDeps = {}): TrafficConfig {
  const random = deps.random ?? Math.random;
  const now = deps.now ?? Date.now;
  const destinationDeps: DestinationDeps = {
    state,
    random,
    now,
    onEjection: deps.onEjection,
    healthChecks: deps.healthChecks ?? true,
    panicThresholdPercent: deps.panicThresholdPercent ?? DEFAULT_PANIC_THRESHOLD_PERCENT,
  };
  const registry = createStaticRegistry(config.services, version);

  // The validation rejects two policies for one service; should one slip through, the first wins.
  const policies = new Map<string, DestinationPolicySpec>();
  for (const policy of config.destinationPolicies ?? []) {
    const key = policyKey(policy.host.name, policy.host.namespace);
    if (!policies.has(key)) policies.set(key, policy);
  }

  const destinations: TrafficDestination[] = [];
  const retained = new Map<string, string[]>();
  for (const cluster of registry.clusters) {
    const policy = policies.get(policyKey(cluster.service, cluster.namespace));
    destinations.push(createDestination(cluster, { subset: '', labels: {}, policy: policy?.policy ?? DEFAULT_TRAFFIC_POLICY }, destinationDeps));
    for (const subset of policy?.subsets ?? []) {
      destinations.push(createDestination(cluster, { subset: subset.name, labels: subset.labels, policy: subset.policy }, destinationDeps));
    }
  }
  for (const destination of destinations) retained.set(destination.name, destination.endpoints.map((endpoint) => endpoint.key));
  state.retain(retained);

  const foreignDeps: DestinationDeps = { ...destinationDeps, state: undefined, onEjection: undefined, healthChecks: false };
  const built = new BuiltTrafficConfig(version, registry, destinations, foreignDeps);
  built.routes = createRouteTable(config.routes ?? [], registry, (cluster, subset) => built.destination(cluster, subset), random);
  built.rateLimits = createRateLimiter(config.rateLimits ?? [], state.rateLimitBuckets, deps.now);
  return built;
}
