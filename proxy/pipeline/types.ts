/**
 * Traffic management, as the protocol paths see it. The pipeline stages in
 * this directory are protocol-neutral: they read RequestFacts and return
 * decisions (a RoutePlan, a Destination's endpoint, a limit's verdict); the
 * HTTP/1, HTTP/2 and TCP paths carry them out on the wire and put every
 * decision on the request's observation. A TrafficConfig is built whole from
 * one configuration version and swapped whole; what must outlive a swap
 * (ejections, health, token buckets, budgets) lives in TrafficState.
 */
import type { HeaderEdit, RetryPolicy } from '../../src/config/types.js';
import type { Cluster, ClusterEndpoint, ClusterRegistry } from '../clusters/types.js';

/** What routing, balancing and limits read about one request; built once per request by its protocol path. */
export interface RequestFacts {
  /** The authority's host without port, lowercase. */
  readonly host: string;
  readonly port: number;
  /** Uppercase. */
  readonly method: string;
  /** Path without the query. */
  readonly path: string;
  /** Query string without '?', '' when none. */
  readonly query: string;
  /** First value of a header (name lowercase); undefined when absent. */
  header(name: string): string | undefined;
  /** The calling workload: outbound, this proxy's own service; inbound, the caller's peer metadata ('' when unknown). */
  readonly sourceService: string;
  readonly sourceNamespace: string;
  /** The downstream socket's remote address. */
  readonly sourceAddress: string;
}

/**
 * How one attempt on an endpoint ended, for outlier detection and retry
 * decisions. `gateway` is 502, 503 or 504; `5xx` any other 5xx.
 */
export type AttemptOutcome = 'success' | '5xx' | 'gateway' | 'connect-failure' | 'reset' | 'timeout';

/** Which run of failures made outlier detection eject (or want to eject) an endpoint. */
export type EjectionReason = 'consecutive-5xx' | 'consecutive-gateway';

/**
 * What outlier detection did with one attempt's outcome, when it did
 * something: the attempt's failure ejected its endpoint (`ejected` true), or
 * would have but maxEjectionPercent refused it (`ejected` false). The
 * protocol paths put it on that attempt's span. Shared constant objects
 * (outlier-detection.ts), so recording an outcome never allocates.
 */
export interface OutlierDecision {
  readonly ejected: boolean;
  readonly reason: EjectionReason;
}

/** Connection-pool limits (Envoy's circuit breakers) and the retry budget of one destination, per proxy. */
export interface DestinationLimits {
  /** maxRequests: false → answer 503 with flag UO. Every true is paired with exactly one requestEnded(). */
  tryStartRequest(): boolean;
  requestEnded(): void;
  /**
   * A retry may start: under maxRetries and within the route's budget
   * (retries in flight ≤ percent of active requests, but at least
   * minRetriesPerSecond per second). Every true is paired with one retryEnded().
   */
  tryStartRetry(budget: RetryPolicy['budget']): boolean;
  retryEnded(): void;
  /** maxConnections across the destination's endpoints; the pools ask before opening one. Paired with connectionClosed(). */
  tryOpenConnection(): boolean;
  connectionClosed(): void;
  /** maxPendingRequests: requests waiting for a connection; false → UO. Paired with pendingEnded(). */
  tryStartPending(): boolean;
  pendingEnded(): void;
  /** connectTimeout of the policy, null: the proxy's default. */
  readonly connectTimeoutMs: number | null;
}

/** One service port, or one subset of it: the endpoints a request may go to and the policy governing them. */
export interface Destination {
  /** The service port (service, namespace, port and protocol, all endpoints). */
  readonly cluster: Cluster;
  /** '' for the whole service. */
  readonly subset: string;
  /** "reviews.default:9080" or "reviews.default:9080|v2": for spans, metrics and the admin page. */
  readonly name: string;
  /** The subset's endpoints (all of the cluster's when subset is ''). */
  readonly endpoints: readonly ClusterEndpoint[];
  /**
   * The load balancer's choice among the endpoints usable now (not ejected,
   * not failing active health checks). `exclude` is avoided when another is
   * usable (a retry tries elsewhere). undefined → 503 UH.
   */
  pick(facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined;
  /**
   * Passive health: the end of one attempt on an endpoint (outlier
   * detection). Returns what that outcome made outlier detection do (an
   * ejection, or one refused by maxEjectionPercent); undefined when nothing
   * (most outcomes, and destinations without outlier detection).
   */
  recordOutcome(endpoint: ClusterEndpoint, outcome: AttemptOutcome): OutlierDecision | undefined;
  readonly limits: DestinationLimits;
  /** For the admin `/clusters` page: per-endpoint health and ejection, the limit counters. */
  status?(): DestinationStatus;
  /**
   * True when the latest pick() was made in panic mode (Envoy's
   * healthy_panic_threshold): fewer than the threshold's share of the
   * endpoints were usable, so it balanced over all of them, unhealthy and
   * ejected included, instead of answering 503 UH. Read it right after
   * pick() (same tick) to put it on the attempt's span; absent: never panics.
   */
  readonly lastPickPanicked?: boolean;
}

/** One endpoint of a destination as the admin page shows it. */
export interface EndpointStatus {
  /** "address:port". */
  readonly endpoint: string;
  /** false: failing active health checks. */
  readonly healthy: boolean;
  /** Epoch ms the outlier ejection ends; 0 when not ejected. */
  readonly ejectedUntilMs: number;
  /** Outlier detection's ejection multiplier (ejections so far, decayed). */
  readonly ejections: number;
  /** Why the last active check failed; '' when it passed or none ran. */
  readonly lastCheckFailure: string;
  readonly activeRequests: number;
}

export interface DestinationStatus {
  readonly name: string;
  readonly loadBalancer: string;
  /** The DestinationLimits counters (shared across configuration versions). */
  readonly activeRequests: number;
  readonly pendingRequests: number;
  readonly connections: number;
  readonly activeRetries: number;
  readonly endpoints: readonly EndpointStatus[];
  /** Balancing over all endpoints now: fewer than the panic threshold's share are usable (see lastPickPanicked). */
  readonly panic?: boolean;
  /** Picks made in panic mode by this configuration version's destination. */
  readonly panicPicks?: number;
  /**
   * Picks made in panic mode under this destination's name since the proxy
   * started (kept in TrafficState, so configuration swaps do not restart it;
   * it restarts only when a version drops the destination and a later one
   * brings it back). The tracemesh_lb_panic_picks_total counter reads it.
   */
  readonly panicPicksTotal?: number;
}

/** A fault decided for one request (percentages already rolled). */
export interface FaultDecision {
  /** 0: no delay. */
  readonly delayMs: number;
  /** undefined: no abort. `grpc` is true when the status is a gRPC status code. */
  readonly abort: { readonly status: number; readonly grpc: boolean } | undefined;
}

export const NO_FAULT: FaultDecision = { delayMs: 0, abort: undefined };

/** What routing decided for one request. */
export interface RoutePlan {
  /** The rule's name ('' when no Route covers the service: the whole service, defaults). */
  readonly routeName: string;
  /** Redirect rules answer locally; everything else is forwarded to `destination`. */
  readonly redirect: { readonly status: number; readonly location: string } | undefined;
  /** The weighted choice among the rule's destinations; undefined for redirects, for noRuleMatched, and when the chosen destination names a service port that has no cluster or a subset that is not defined (→ 503 UH). */
  readonly destination: Destination | undefined;
  /** The path and query to send upstream after a rewrite; undefined: unchanged. */
  readonly path: string | undefined;
  /** The authority to send upstream after a rewrite; undefined: unchanged. */
  readonly authority: string | undefined;
  readonly requestHeaders: HeaderEdit;
  readonly responseHeaders: HeaderEdit;
  /** The whole request, all attempts included; 0: none. */
  readonly timeoutMs: number;
  /** null: no retries beyond the keep-alive race. */
  readonly retry: RetryPolicy | null;
  readonly fault: FaultDecision;
  /** Decided by the mirror's percent: a copy of this request goes there and its answer is discarded. */
  readonly mirror: Destination | undefined;
  /**
   * True when a Route covers the service but none of its rules matched the
   * request: Istio answers 404 with flag NR then, and so must the protocol
   * path (before the fault, destination and limits). `destination` is
   * undefined in that case and `routeName` ''. Absent or false otherwise
   * (optional only so that plans built elsewhere need not name it).
   */
  readonly noRuleMatched?: boolean;
}

export interface RouteTable {
  /** The plan for a request addressed to `cluster` (the service port its authority named). Never throws. */
  select(cluster: Cluster, facts: RequestFacts): RoutePlan;
}

/** A local token bucket's verdict on one request. */
export interface RateLimitVerdict {
  /** The RateLimit document that refused it. */
  readonly limitName: string;
  /** The status to answer (429 unless the document says otherwise). */
  readonly statusCode: number;
}

export interface RateLimiter {
  /**
   * Inbound, before the request reaches the app: `service` is this workload's
   * own, `routeName` the caller's route rule (its x-tracemesh-route header,
   * '' when none), `sourceService` the caller's. undefined: admitted.
   */
  admit(service: string, namespace: string, routeName: string, sourceService: string, sourceNamespace: string): RateLimitVerdict | undefined;
}

/** Everything traffic management needs for one configuration version, built whole and swapped whole. */
export interface TrafficConfig {
  readonly version: string;
  readonly registry: ClusterRegistry;
  readonly routes: RouteTable;
  readonly rateLimits: RateLimiter;
  /** The destination for a service port and subset ('' = whole service); undefined when the subset is not defined. */
  destination(cluster: Cluster, subset: string): Destination | undefined;
  /** All destinations built for this version, for the admin page. */
  readonly destinations: readonly Destination[];
  /** Stops this version's timers and releases its active health checks (a check stops when no version holds it); its state stays in TrafficState. */
  close(): void;
}
