/**
 * A Destination: one service port, or one subset of it, with its traffic
 * policy. Built once per configuration version (createTrafficConfig); per
 * request only `pick` and `recordOutcome` run.
 *
 * pick = the usable endpoints (not ejected by outlier detection, not failing
 * the policy's active health check) → the policy's balancer. The usable list
 * is a cached array rebuilt only when the destination's ejection generation
 * (DestinationTrafficState) or the health checks' generation
 * (HealthCheckPool) moved, and replaced only when the set really changed, so
 * the balancer's tables (the hash ring) are rebuilt only then.
 *
 * Panic mode, as Envoy's healthy_panic_threshold (default 50 %): when fewer
 * than that share of the endpoints are usable (100 × usable < threshold ×
 * endpoints), the balancer gets ALL the endpoints, unhealthy and ejected
 * included: a mass failure of checks or a mass ejection is more likely the
 * checks' fault than every endpoint's, and some answers beat 503 UH for
 * everyone. `status().panic` and `lastPickPanicked` say so. Threshold 0
 * turns it off (no usable endpoint → undefined → 503 UH). Consistency with
 * outlier detection: ejections alone never cause panic while
 * maxEjectionPercent ≤ 100 − threshold (Istio's default 10 %, any value up
 * to 50 % with the default threshold), except for a one-endpoint
 * destination, whose one allowed ejection (outlier-detection.ts) leaves 0 %
 * usable: it keeps receiving traffic, as in Envoy. Panic needs a larger
 * maxEjectionPercent or health-check failures on top of ejections. The
 * threshold is the policy's `panicThreshold` (Istio's minHealthPercent,
 * default 0 there), else the builder's default
 * (TrafficConfigDeps.panicThresholdPercent, 50 as Envoy's).
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
import { HealthCheckPool, type HealthVerdict } from './health-check.js';
import { createDestinationLimits } from './limits.js';
import { OutlierDetector, type OutlierListener } from './outlier-detection.js';
import { DestinationTrafficState, type EndpointTrafficState, type LimitCounters, type TrafficState } from './traffic-state.js';
import type { AttemptOutcome, Destination, DestinationLimits, DestinationStatus, EndpointStatus, OutlierDecision, RequestFacts } from './types.js';

/** Envoy's default healthy_panic_threshold, in percent of a destination's endpoints. */
export const DEFAULT_PANIC_THRESHOLD_PERCENT = 50;

/** The policy of a service without a DestinationPolicy: round robin, no limits, no checks. */
export const DEFAULT_TRAFFIC_POLICY: TrafficPolicy = {
  loadBalancer: { kind: 'roundRobin' },
  endpointWeights: [],
  connectionPool: { maxConnections: null, maxPendingRequests: null, maxRequests: null, maxRetries: null, connectTimeoutMs: null },
  healthCheck: null,
  outlierDetection: null,
  panicThresholdPercent: null,
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
  /** Balance over all endpoints when fewer than this percent are usable; 0: never (default DEFAULT_PANIC_THRESHOLD_PERCENT). */
  readonly panicThresholdPercent?: number;
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
  lastPickPanicked = false;
  private readonly shared: DestinationTrafficState;
  private readonly states: readonly EndpointTrafficState[];
  /** Index-aligned with endpoints; empty when the policy has no active check (or checks are off). */
  private readonly verdicts: readonly HealthVerdict[];
  private readonly healthPool: HealthCheckPool | undefined;
  private readonly indexOf = new Map<ClusterEndpoint, number>();
  private readonly balancer: Balancer;
  private readonly outlier: OutlierDetector | undefined;
  private readonly panicThresholdPercent: number;
  private usable: readonly ClusterEndpoint[] = [];
  private panic = false;
  private panicPicks = 0;
  private usableGeneration = -1;
  private usableHealthGeneration = -1;
  private closed = false;

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
    this.panicThresholdPercent = policy.panicThresholdPercent ?? deps.panicThresholdPercent ?? DEFAULT_PANIC_THRESHOLD_PERCENT;
    const states: EndpointTrafficState[] = [];
    const keys: string[] = [];
    for (let i = 0; i < this.endpoints.length; i++) {
      const endpoint = this.endpoints[i]!;
      this.indexOf.set(endpoint, i);
      states.push(this.shared.endpoint(endpoint.key));
      keys.push(endpoint.key);
    }
    this.states = states;
    this.limits = createDestinationLimits(policy.connectionPool, this.shared.limits, deps.now);
    this.balancer = createBalancer(policy.loadBalancer, policy.endpointWeights, deps.random);
    this.outlier =
      policy.outlierDetection === null
        ? undefined
        : new OutlierDetector({ spec: policy.outlierDetection, destination: this.name, keys, states, shared: this.shared, now: deps.now, onEvent: deps.onEjection });
    // One probe per endpoint and check, shared with every destination (and version) checking the same.
    const check = policy.healthCheck;
    const verdicts: HealthVerdict[] = [];
    if (check !== null && deps.healthChecks && this.endpoints.length > 0) {
      this.healthPool = deps.state?.healthChecks ?? new HealthCheckPool();
      const authority = `${cluster.service}.${cluster.namespace}:${cluster.port.port}`;
      for (const endpoint of this.endpoints) {
        verdicts.push(this.healthPool.acquire({ address: endpoint.address, port: endpoint.port, key: endpoint.key, authority }, check, deps.random));
      }
    }
    this.verdicts = verdicts;
  }

  pick(facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined {
    this.outlier?.refresh();
    if (this.usableGeneration !== this.shared.generation || (this.healthPool !== undefined && this.usableHealthGeneration !== this.healthPool.generation)) {
      this.rebuildUsable();
    }
    this.lastPickPanicked = this.panic;
    if (this.panic) {
      this.panicPicks++;
      this.shared.panicPicks++;
    }
    return this.balancer.pick(this.usable, facts, exclude);
  }

  recordOutcome(endpoint: ClusterEndpoint, outcome: AttemptOutcome): OutlierDecision | undefined {
    if (this.outlier === undefined) return undefined;
    const index = this.indexOf.get(endpoint);
    return index === undefined ? undefined : this.outlier.record(index, outcome);
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
    this.rebuildUsable();
    const endpoints: EndpointStatus[] = [];
    for (let i = 0; i < this.endpoints.length; i++) {
      const endpoint = this.endpoints[i]!;
      const state = this.states[i]!;
      const verdict = this.verdicts[i];
      const ejected = this.outlier !== undefined && state.ejected;
      endpoints.push({
        endpoint: endpoint.key,
        healthy: verdict === undefined || verdict.healthy,
        ejectedUntilMs: ejected ? state.ejectedUntilMs : 0,
        ejections: state.ejections,
        lastCheckFailure: verdict === undefined ? '' : verdict.probe.lastCheckFailure,
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
      panic: this.panic,
      panicPicks: this.panicPicks,
      panicPicksTotal: this.shared.panicPicks,
    };
  }

  /** Stops this version's timers (outlier interval) and releases its health checks; the state stays. Safe twice. */
  close(): void {
    if (this.closed) return;
    this.closed = true;
    this.outlier?.close();
    if (this.healthPool !== undefined) for (const verdict of this.verdicts) this.healthPool.release(verdict);
  }

  private rebuildUsable(): void {
    this.usableGeneration = this.shared.generation;
    this.usableHealthGeneration = this.healthPool === undefined ? -1 : this.healthPool.generation;
    const outlier = this.outlier !== undefined;
    const all = this.endpoints;
    const usable: ClusterEndpoint[] = [];
    for (let i = 0; i < all.length; i++) {
      const verdict = this.verdicts[i];
      if ((outlier && this.states[i]!.ejected) || (verdict !== undefined && !verdict.healthy)) continue;
      usable.push(all[i]!);
    }
    this.panic = usable.length < all.length && 100 * usable.length < this.panicThresholdPercent * all.length;
    const next = this.panic || usable.length === all.length ? all : usable;
    // Same set, same array: the balancer keeps its tables (ring, weights, round-robin position).
    if (!sameEndpoints(next, this.usable)) this.usable = next;
  }
}

function sameEndpoints(a: readonly ClusterEndpoint[], b: readonly ClusterEndpoint[]): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

export function createDestination(cluster: Cluster, options: DestinationOptions, deps: DestinationDeps): TrafficDestination {
  return new TrafficDestination(cluster, options.subset, options.labels, options.policy, deps);
}
