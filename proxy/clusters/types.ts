/**
 * What the protocol paths need to know about where traffic goes: a cluster is
 * one service port with its endpoints (Envoy's word). The registry resolves
 * the name a request uses to a cluster. Built from `Service` documents
 * (static `--config` now, the control plane later) and swapped whole when the
 * configuration changes; per-request code only calls resolve/pick.
 */

/** As in DESIGN.md's Service document. */
export type PortProtocol = 'http' | 'http2' | 'grpc' | 'tcp';

export interface ServicePort {
  readonly name: string;
  readonly port: number;
  readonly protocol: PortProtocol;
}

export interface ClusterEndpoint {
  readonly address: string;
  readonly port: number;
  readonly labels: Readonly<Record<string, string>>;
  /** labels.version, or '' */
  readonly version: string;
  /** "address:port", precomputed for logs, spans and pool keys. */
  readonly key: string;
  // Live state, shown by the admin `/clusters` page.
  activeRequests: number;
  totalRequests: number;
  failedRequests: number;
  consecutiveFailures: number;
  lastFailure: string; // '' when none
}

export interface Cluster {
  readonly service: string;
  readonly namespace: string;
  readonly port: ServicePort;
  /** "service.namespace:port", stable across config versions while the port exists. */
  readonly name: string;
  readonly endpoints: readonly ClusterEndpoint[];
  /** Next endpoint (round robin); undefined when the cluster has none (→ UH). */
  pick(): ClusterEndpoint | undefined;
  /** Bookkeeping around one request to an endpoint. */
  onRequestStart(endpoint: ClusterEndpoint): void;
  onRequestEnd(endpoint: ClusterEndpoint, failure: string | undefined): void;
}

export interface EndpointMatch {
  readonly cluster: Cluster;
  /** The endpoint's labels as configured (version and the rest). */
  readonly labels: Readonly<Record<string, string>>;
}

export interface ClusterRegistry {
  /**
   * The cluster a request names. `host` is as written by the client: `reviews`,
   * `reviews.default`, `reviews.default.svc`, `reviews.default.svc.cluster.local`,
   * or one of the service's VIPs. Port is the service port. Undefined → NR.
   */
  resolve(host: string, port: number): Cluster | undefined;
  /**
   * Transparent capture: the service port a connection's original destination
   * belongs to, when `address` is one of the service's endpoint addresses and
   * `port` one of its ports (a pod called by its own address). Undefined when not.
   */
  resolveEndpointAddress(address: string, port: number): EndpointMatch | undefined;
  readonly clusters: readonly Cluster[];
  /** Identifies the configuration the registry was built from (shown in /config_dump). */
  readonly version: string;
}
