import type { HttpDirection } from '../../proxy/http-direction.js';
import type { TrafficConfig } from '../../proxy/pipeline/types.js';

/** An outbound direction routing every request by `traffic`'s registry (unknown host: no route), with no rate limits. */
export function outboundDirection(traffic: TrafficConfig): HttpDirection {
  return {
    direction: 'outbound',
    spanKind: 'client',
    route(host, port) {
      const cluster = traffic.registry.resolve(host, port);
      return cluster === undefined ? undefined : { cluster, routeName: '' };
    },
    traffic: () => traffic,
    rateLimits: undefined,
  };
}
