/**
 * The mesh configuration model as the rest of the code sees it, after
 * validation (DESIGN.md, "Configuration model"). The kinds' schemas
 * (*-schema.ts) produce exactly these shapes; proxies and the control plane
 * consume them. Durations are milliseconds, absent optional parts are null
 * (so a model survives JSON unchanged), and every object of a type has the
 * same fields.
 */
import type { PortProtocol } from '../../proxy/clusters/types.js';

export interface ServicePortSpec {
  name: string;
  port: number;
  protocol: PortProtocol;
}

export interface EndpointSpec {
  address: string;
  /** Where every service port is sent, unless `ports` names another target for it. */
  port: number;
  /**
   * Per service port (by its name) the endpoint's own port, like Kubernetes'
   * targetPort: a multi-port service whose ports are served on different
   * endpoint ports. Empty: every service port goes to `port`. Validation
   * always sets it; it is optional because endpoints written in code (tests,
   * registrations) rarely need it.
   */
  ports?: Record<string, number>;
  labels: Record<string, string>;
}

export interface ServiceSpec {
  name: string;
  namespace: string;
  ports: ServicePortSpec[];
  vips: string[];
  endpoints: EndpointSpec[];
}

/**
 * A service named by a document: `reviews` (the document's own namespace) or
 * `reviews.shop`, resolved to both parts.
 */
export interface ServiceRef {
  readonly name: string;
  readonly namespace: string;
}

/**
 * How a string is matched. A regex is kept as its JavaScript source and must
 * match the whole value (compile it as `^(?:source)$`), as Istio's do.
 */
export type StringMatch =
  | { readonly kind: 'exact'; readonly value: string }
  | { readonly kind: 'prefix'; readonly value: string }
  | { readonly kind: 'regex'; readonly value: string };

/** Headers and query parameters may also be matched on being there or not. */
export type PresenceMatch = StringMatch | { readonly kind: 'present' } | { readonly kind: 'absent' };

export interface NamedMatch {
  /** Header names are lowercase; query parameter names as written. */
  readonly name: string;
  readonly match: PresenceMatch;
}

/** One condition set of a route rule; all of its parts must hold. */
export interface RouteMatch {
  /** The request's host without port, lowercase; null for any. */
  readonly host: string | null;
  readonly path: StringMatch | null;
  /** Uppercase; null for any. */
  readonly method: string | null;
  readonly headers: readonly NamedMatch[];
  readonly queryParams: readonly NamedMatch[];
}

export interface RouteDestination {
  readonly service: ServiceRef;
  readonly subset: string | null;
  /** null: the service's port the request was sent to. */
  readonly port: number | null;
  /** Share of requests, 0..100; 100 when the rule has one destination. */
  readonly weight: number;
}

export type RedirectCode = 301 | 302 | 303 | 307 | 308;

export interface RedirectSpec {
  readonly host: string | null;
  readonly path: string | null;
  readonly code: RedirectCode;
}

export interface RewriteSpec {
  /** Replaces the part of the path a prefix match matched (the whole path for other matches). */
  readonly pathPrefix: string | null;
  readonly host: string | null;
}

export interface HeaderValue {
  /** Lowercase. */
  readonly name: string;
  readonly value: string;
}

export interface HeaderEdit {
  /** Replace the header (or add it when absent). */
  readonly set: readonly HeaderValue[];
  /** Append a value, keeping existing ones. */
  readonly add: readonly HeaderValue[];
  /** Lowercase names. */
  readonly remove: readonly string[];
}

export interface HeaderEdits {
  readonly request: HeaderEdit;
  readonly response: HeaderEdit;
}

export interface MirrorSpec {
  readonly service: ServiceRef;
  readonly subset: string | null;
  readonly port: number | null;
  /** Share of requests copied, 0..100. */
  readonly percent: number;
}

export type RetryCondition = '5xx' | 'gateway-error' | 'reset' | 'connect-failure' | 'retriable-status-codes';

export interface RetryPolicy {
  /** Retries after the first try (0..10). */
  readonly attempts: number;
  /** null: each try may use what is left of the rule's timeout. */
  readonly perTryTimeoutMs: number | null;
  readonly retryOn: readonly RetryCondition[];
  /** Retried when retryOn has retriable-status-codes. */
  readonly retriableStatusCodes: readonly number[];
  /** Exponential backoff with jitter between tries, from baseMs up to maxMs. */
  readonly backoff: { readonly baseMs: number; readonly maxMs: number };
  /**
   * Retries in flight may be at most `percent` of the active requests to the
   * destination (but `minRetriesPerSecond` are always allowed), so retries
   * cannot amplify an outage. Always present: it has defaults.
   */
  readonly budget: { readonly percent: number; readonly minRetriesPerSecond: number };
}

export type FaultAbort =
  | { readonly kind: 'http'; readonly status: number; readonly percent: number }
  /** status is the gRPC status code (UNAVAILABLE is 14). */
  | { readonly kind: 'grpc'; readonly status: number; readonly percent: number };

export interface FaultSpec {
  readonly delay: { readonly fixedMs: number; readonly percent: number } | null;
  readonly abort: FaultAbort | null;
}

export interface RouteRule {
  /** Unique in its Route; spans and metrics carry it. */
  readonly name: string;
  /** Any one of them must match; empty: every request. */
  readonly matches: readonly RouteMatch[];
  /** Empty exactly when `redirect` is set. */
  readonly destinations: readonly RouteDestination[];
  readonly redirect: RedirectSpec | null;
  readonly rewrite: RewriteSpec | null;
  readonly headers: HeaderEdits;
  readonly mirror: MirrorSpec | null;
  /** null: no timeout. */
  readonly timeoutMs: number | null;
  /** null: no retries. */
  readonly retries: RetryPolicy | null;
  readonly fault: FaultSpec | null;
}

/** `Route` (Istio's VirtualService): rules tried in order, the first match wins. */
export interface RouteSpec {
  readonly name: string;
  readonly namespace: string;
  /** The services whose traffic these rules route. */
  readonly hosts: readonly ServiceRef[];
  readonly rules: readonly RouteRule[];
}

export type ConsistentHashKey =
  | { readonly kind: 'header'; readonly name: string }
  | { readonly kind: 'cookie'; readonly name: string; readonly ttlMs: number | null }
  | { readonly kind: 'sourceAddress' };

export type LoadBalancer =
  | { readonly kind: 'roundRobin' }
  /** Two random choices, the one with fewer active requests wins. */
  | { readonly kind: 'leastRequest' }
  | { readonly kind: 'random' }
  | { readonly kind: 'consistentHash'; readonly key: ConsistentHashKey };

/** Endpoints matching it get this weight (others 1); the first matching entry counts. */
export type EndpointWeight =
  | { readonly kind: 'labels'; readonly labels: Readonly<Record<string, string>>; readonly weight: number }
  | { readonly kind: 'address'; readonly address: string; readonly port: number | null; readonly weight: number };

/** Limits per proxy and destination; null means no limit (or the proxy's default for connectTimeoutMs). */
export interface ConnectionPool {
  readonly maxConnections: number | null;
  readonly maxPendingRequests: number | null;
  readonly maxRequests: number | null;
  readonly maxRetries: number | null;
  readonly connectTimeoutMs: number | null;
}

export interface HealthCheck {
  readonly path: string;
  readonly intervalMs: number;
  readonly timeoutMs: number;
  readonly healthyThreshold: number;
  readonly unhealthyThreshold: number;
}

export interface OutlierDetection {
  /** 0: not counted. */
  readonly consecutive5xx: number;
  /** 502, 503, 504 and connection failures; 0: not counted. */
  readonly consecutiveGatewayErrors: number;
  readonly intervalMs: number;
  /** Multiplied by the number of times the endpoint was ejected. */
  readonly baseEjectionTimeMs: number;
  readonly maxEjectionPercent: number;
}

/** MESH: the mesh's mutual TLS (Istio's ISTIO_MUTUAL); DISABLE: plain text. */
export type TlsMode = 'MESH' | 'DISABLE';

export interface TrafficPolicy {
  readonly loadBalancer: LoadBalancer;
  readonly endpointWeights: readonly EndpointWeight[];
  readonly connectionPool: ConnectionPool;
  readonly healthCheck: HealthCheck | null;
  readonly outlierDetection: OutlierDetection | null;
  /** null: as PeerAuthentication and the peer decide. */
  readonly tls: { readonly mode: TlsMode } | null;
  /**
   * Envoy's healthy_panic_threshold: when fewer than this percent of the
   * endpoints are usable (ejected or failing health checks), balance over all
   * of them instead of refusing. 0 turns it off (Istio's minHealthPercent
   * default); null: the proxy's default, 50 (Envoy's).
   */
  readonly panicThresholdPercent: number | null;
}

export interface SubsetSpec {
  readonly name: string;
  readonly labels: Readonly<Record<string, string>>;
  /** The effective policy: the destination's, with this subset's overrides replacing whole blocks. */
  readonly policy: TrafficPolicy;
}

/** `DestinationPolicy` (Istio's DestinationRule). */
export interface DestinationPolicySpec {
  readonly name: string;
  readonly namespace: string;
  readonly host: ServiceRef;
  readonly policy: TrafficPolicy;
  readonly subsets: readonly SubsetSpec[];
}

export interface TokenBucket {
  readonly maxTokens: number;
  readonly tokensPerFill: number;
  readonly fillIntervalMs: number;
}

/** `RateLimit`: a local token bucket in front of a service, answering `statusCode` when empty. */
export interface RateLimitSpec {
  readonly name: string;
  readonly namespace: string;
  readonly service: ServiceRef;
  /** Names of Route rules for the service this limit is for; empty: every request. */
  readonly routes: readonly string[];
  readonly bucket: TokenBucket;
  /** One bucket per calling service instead of one shared. */
  readonly perSource: boolean;
  /** Calling services with a bucket of their own. */
  readonly overrides: readonly { readonly source: ServiceRef; readonly bucket: TokenBucket }[];
  readonly statusCode: number;
}

export type AuthorizationAction = 'ALLOW' | 'DENY' | 'AUDIT';

/**
 * Values may be exact, `*` (anything), `prefix*` or `*suffix`. In every part
 * below, the lists are alternatives and the fields must all hold; an empty
 * list does not constrain.
 */
export interface AuthorizationSource {
  /** SPIFFE IDs (`spiffe://<trust-domain>/ns/<ns>/sa/<service>`) or patterns. */
  readonly principals: readonly string[];
  readonly namespaces: readonly string[];
  readonly services: readonly string[];
}

export interface AuthorizationOperation {
  readonly methods: readonly string[];
  readonly paths: readonly string[];
  readonly ports: readonly number[];
}

export interface AuthorizationCondition {
  /** Lowercase. */
  readonly header: string;
  readonly values: readonly string[];
}

/** A rule matches when any `from`, any `to` and every `when` match (an empty list matches anything). */
export interface AuthorizationRule {
  readonly from: readonly AuthorizationSource[];
  readonly to: readonly AuthorizationOperation[];
  readonly when: readonly AuthorizationCondition[];
}

/** `AuthorizationPolicy`; with action ALLOW and no rules it allows nothing (Istio's meaning). */
export interface AuthorizationPolicySpec {
  readonly name: string;
  readonly namespace: string;
  /** null: every service in the policy's namespace. */
  readonly selector: ServiceRef | null;
  readonly action: AuthorizationAction;
  readonly rules: readonly AuthorizationRule[];
}

export type MtlsMode = 'STRICT' | 'PERMISSIVE' | 'DISABLE';

/** `PeerAuthentication`: what inbound connections must be. */
export interface PeerAuthenticationSpec {
  readonly name: string;
  readonly namespace: string;
  /** null: mesh-wide. */
  readonly selector: ServiceRef | null;
  readonly mode: MtlsMode;
  readonly portOverrides: readonly { readonly port: number; readonly mode: MtlsMode }[];
}

export type LatencyQuantile = 'p50' | 'p90' | 'p99';

/** `CircuitPolicy`: thresholds the policy engine applies to the trace aggregates. */
export interface CircuitPolicySpec {
  readonly name: string;
  readonly namespace: string;
  readonly target: ServiceRef;
  readonly subset: string | null;
  /** destination: one circuit for the target; endpoint: one per endpoint. */
  readonly scope: 'destination' | 'endpoint';
  readonly windowMs: number;
  /** Fewer requests in the window decide nothing. */
  readonly minRequests: number;
  readonly errorRatePercent: number | null;
  readonly latency: { readonly quantile: LatencyQuantile; readonly thresholdMs: number } | null;
  readonly openForMs: number;
  readonly halfOpenRequests: number;
  /** enforce: open circuits in the proxies; recommend: record the decision only. */
  readonly mode: 'enforce' | 'recommend';
}

/**
 * Everything one set of configuration documents says, validated. One field
 * per kind. Validation always sets every field; the fields after `services`
 * are optional only so that code building a services-only config (the
 * proxy's static registry version) still compiles.
 */
export interface MeshConfig {
  services: ServiceSpec[];
  routes?: RouteSpec[];
  destinationPolicies?: DestinationPolicySpec[];
  rateLimits?: RateLimitSpec[];
  authorizationPolicies?: AuthorizationPolicySpec[];
  peerAuthentications?: PeerAuthenticationSpec[];
  circuitPolicies?: CircuitPolicySpec[];
}
