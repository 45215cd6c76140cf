/**
 * A Destination: one service port, or one subset of it, with its traffic
 * policy. Built once per configuration version (createTrafficConfig); per
 * request only `pick` and `recordOutcome` run.
 *
 * pick = the usable endpoints (not ejected by outlier detection, not failing
 * active health checks) → the policy's balancer. The usable list is a cached
 * array rebuilt only when the destination's shared generation (TrafficState)
 * moved, so the balancer's tables (the hash ring) are rebuilt only then. No
 * usable endpoint → undefined (503 UH); there is no panic mode that would
 * send to unhealthy endpoints.
 *
 * The endpoints are the cluster's own ClusterEndpoint objects (filtered by
 * the subset's labels), so the live counters the protocol paths keep with
 * `destination.cluster.onRequestStart/End(endpoint)` (activeRequests, which
 * least request reads, totals and failures for the admin page) are the same
 * whichever destination picked the endpoint; `onRequestStart/End` here
 * forward to them for callers holding only the destination.
 */
import type { TrafficPolicy } from '../../src/config/types.js';
import type { Cluster, ClusterEndpoint } from '../clusters/types.js';
import { createBalancer, type Balancer } from './balancer.js';
import { startHealthChecks, type HealthChecker } from './health-check.js';
import { createDestinationLimits } from './limits.js';
import { OutlierDetector, type OutlierListener } from './outlier-detection.js';
import { DestinationTrafficState, type EndpointTrafficState, type LimitCounters, type TrafficState } from './traffic-state.js';
import type { AttemptOutcome, Destination, DestinationLimits, DestinationStatus, EndpointStatus, RequestFacts } from './types.js';

/** The policy of a service without a DestinationPolicy: round robin, no limits, no checks. */
export const DEFAULT_TRAFFIC_POLICY: TrafficPolicy = {
  loadBalancer: { kind: 'roundRobin' },
  endpointWeights: [],
  connectionPool: { maxConnections: null, maxPendingRequests: null, maxRequests: null, maxRetries: null, connectTimeoutMs: null },
  healthCheck: null,
  outlierDetection: null,
  tls: null,
};

export interface DestinationOptions {
  /** '' for the whole service. */
  readonly subset: string;
  /** The subset's labels; an endpoint belongs when it has every one. Empty for the whole service. */
  readonly labels: Readonly<Record<string, string>>;
  readonly policy: TrafficPolicy;
}

export interface DestinationDeps {
  /**
   * Where outlier, health and limit state lives. undefined: state of this
   * destination's own, not shared across versions (a cluster that is not in
   * the configuration, such as a passthrough destination).
   */
  readonly state: TrafficState | undefined;
  readonly random: () => number;
  readonly now: () => number;
  readonly onEjection: OutlierListener | undefined;
  /** Start the policy's active health checks (false in tests that do not want timers). */
  readonly healthChecks: boolean;
}

/** The name spans, metrics and the admin page use: "reviews.default:9080" or "reviews.default:9080|v2". */
export function destinationName(cluster: Cluster, subset: string): string {
  return subset === '' ? cluster.name : `${cluster.name}|${subset}`;
}

function hasLabels(endpoint: ClusterEndpoint, labels: Readonly<Record<string, string>>): boolean {
  for (const name in labels) if (endpoint.labels[name] !== labels[name]) return false;
  return true;
}

export class TrafficDestination implements Destination {
  readonly name: string;
  readonly endpoints: readonly ClusterEndpoint[];
  readonly limits: DestinationLimits;
  readonly policy: TrafficPolicy;
  private readonly shared: DestinationTrafficState;
  private readonly states: readonly EndpointTrafficState[];
  private readonly indexOf = new Map<ClusterEndpoint, number>();
  private readonly balancer: Balancer;
  private readonly outlier: OutlierDetector | undefined;
  private readonly health: HealthChecker | undefined;
  private usable: readonly ClusterEndpoint[] = [];
  private usableGeneration = -1;

  constructor(
    readonly cluster: Cluster,
    readonly subset: string,
    labels: Readonly<Record<string, string>>,
    policy: TrafficPolicy,
    deps: DestinationDeps,
  ) {
    this.name = destinationName(cluster, subset);
    this.policy = policy;
    this.endpoints = subset === '' ? cluster.endpoints : cluster.endpoints.filter((endpoint) => hasLabels(endpoint, labels));
    this.shared = deps.state?.destination(this.name) ?? new DestinationTrafficState();
    const states: EndpointTrafficState[] = [];
    const keys: string[] = [];
    for (let i = 0; i < this.endpoints.length; i++) {
      const endpoint = this.endpoints[i]!;
      this.indexOf.set(endpoint, i);
      states.push(this.shared.endpoint(endpoint.key));
      keys.push(endpoint.key);
    }
    this.states = states;
    if (policy.healthCheck === null) {
      // A version without checks must not keep endpoints out on an older version's verdict.
      for (const state of states) resetHealth(state, this.shared);
    }
    this.limits = createDestinationLimits(policy.connectionPool, this.shared.limits, deps.now);
    this.balancer = createBalancer(policy.loadBalancer, policy.endpointWeights, deps.random);
    this.outlier =
      policy.outlierDetection === null
        ? undefined
        : new OutlierDetector({ spec: policy.outlierDetection, destination: this.name, keys, states, shared: this.shared, now: deps.now, onEvent: deps.onEjection });
    this.health =
      policy.healthCheck === null || !deps.healthChecks || states.length === 0
        ? undefined
        : startHealthChecks({
            spec: policy.healthCheck,
            endpoints: this.endpoints,
            states,
            shared: this.shared,
            authority: `${cluster.service}.${cluster.namespace}:${cluster.port.port}`,
            random: deps.random,
          });
  }

  pick(facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined {
    this.outlier?.refresh();
    if (this.usableGeneration !== this.shared.generation) this.rebuildUsable();
    return this.balancer.pick(this.usable, facts, exclude);
  }

  recordOutcome(endpoint: ClusterEndpoint, outcome: AttemptOutcome): void {
    if (this.outlier === undefined) return;
    const index = this.indexOf.get(endpoint);
    if (index !== undefined) this.outlier.record(index, outcome);
  }

  /** The cluster's live counters (as Cluster.onRequestStart). */
  onRequestStart(endpoint: ClusterEndpoint): void {
    this.cluster.onRequestStart(endpoint);
  }

  onRequestEnd(endpoint: ClusterEndpoint, failure: string | undefined): void {
    this.cluster.onRequestEnd(endpoint, failure);
  }

  status(): DestinationStatus {
    this.outlier?.refresh();
    const endpoints: EndpointStatus[] = [];
    for (let i = 0; i < this.endpoints.length; i++) {
      const endpoint = this.endpoints[i]!;
      const state = this.states[i]!;
      const ejected = this.outlier !== undefined && state.ejected;
      endpoints.push({
        endpoint: endpoint.key,
        healthy: state.healthy,
        ejectedUntilMs: ejected ? state.ejectedUntilMs : 0,
        ejections: state.ejections,
        lastCheckFailure: state.lastCheckFailure,
        activeRequests: endpoint.activeRequests,
      });
    }
    const counters: LimitCounters = this.shared.limits;
    return {
      name: this.name,
      loadBalancer: this.policy.loadBalancer.kind,
      activeRequests: counters.requests,
      pendingRequests: counters.pending,
      connections: counters.connections,
      activeRetries: counters.retries,
      endpoints,
    };
  }

  /** Stops this version's timers (outlier interval, health checks); the state stays. */
  close(): void {
    this.outlier?.close();
    this.health?.close();
  }

  private rebuildUsable(): void {
    this.usableGeneration = this.shared.generation;
    const outlier = this.outlier !== undefined;
    const usable: ClusterEndpoint[] = [];
    for (let i = 0; i < this.endpoints.length; i++) if (this.states[i]!.usable(outlier)) usable.push(this.endpoints[i]!);
    this.usable = usable;
  }
}

function resetHealth(state: EndpointTrafficState, shared: DestinationTrafficState): void {
  if (!state.healthy) shared.generation++;
  state.healthy = true;
  state.checkFailures = 0;
  state.checkSuccesses = 0;
  state.lastCheckFailure = '';
}

export function createDestination(cluster: Cluster, options: DestinationOptions, deps: DestinationDeps): TrafficDestination {
  return new TrafficDestination(cluster, options.subset, options.labels, options.policy, deps);
}
