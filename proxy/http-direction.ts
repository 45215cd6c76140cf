/**
 * What makes inbound and outbound HTTP different, as one small object built
 * in inbound.ts / outbound.ts and handed to the HTTP/1 and HTTP/2 paths: where
 * a request goes and which span kind it makes. The protocol paths hold no
 * direction-specific branches beyond reading this.
 */
import type { Cluster } from './clusters/types.js';
import type { RateLimiter, TrafficConfig } from './pipeline/types.js';
import type { ProxySpanKind } from './telemetry/span-record.js';
import type { Direction } from './telemetry/telemetry.js';

export interface HttpRouteTarget {
  readonly cluster: Cluster;
  /** Route name for spans/metrics; ''. With `traffic`, the route table's plan names the rule instead. */
  readonly routeName: string;
}

export interface HttpDirection {
  readonly direction: Direction;
  /** Inbound requests are served (SERVER spans); outbound attempts are calls (CLIENT spans). */
  readonly spanKind: ProxySpanKind;
  /**
   * The target of a request. Inbound: the local app, whatever the authority.
   * Outbound: the service the authority names (absolute-form URI or Host /
   * :authority, or the CONNECT target). Undefined → 404 NR.
   */
  route(host: string, port: number): HttpRouteTarget | undefined;
  /**
   * Outbound: the current configuration version's routes, destinations and
   * limits (proxy/pipeline), applied to the cluster `route` found. Undefined
   * inbound: a request there goes to the local app as it is.
   */
  readonly traffic: (() => TrafficConfig) | undefined;
  /** Inbound: the current version's local rate limits, checked before the app; undefined outbound. */
  readonly rateLimits: (() => RateLimiter) | undefined;
}
