/**
 * Which received fields travel on to the next hop (RFC 9110 §7.6.1). A field
 * ends at this hop when it is connection-specific (Connection, Keep-Alive,
 * Proxy-Connection, TE other than "trailers", Upgrade outside an upgrade, and
 * any field the Connection field names), when it was addressed to this proxy
 * (Proxy-Authorization / Proxy-Authenticate, only when the client used us as
 * its forward proxy), or when the proxy rewrites it (trace context,
 * forwarding and peer-metadata fields). Transfer-Encoding and Trailer travel
 * on: chunked bodies are forwarded as received.
 */
import type { HttpHead } from './head.js';
import {
  H_B3,
  H_CONNECTION,
  H_CONTENT_LENGTH,
  H_KEEP_ALIVE,
  H_OTHER,
  H_PROXY_AUTHENTICATE,
  H_PROXY_AUTHORIZATION,
  H_PROXY_CONNECTION,
  H_ROUTE,
  H_SOURCE_NAMESPACE,
  H_SOURCE_SERVICE,
  H_SOURCE_VERSION,
  H_TE,
  H_TRACEPARENT,
  H_UPGRADE,
  H_X_B3_FLAGS,
  H_X_B3_PARENTSPANID,
  H_X_B3_SAMPLED,
  H_X_B3_SPANID,
  H_X_B3_TRACEID,
  H_X_FORWARDED_FOR,
  H_X_FORWARDED_PROTO,
  H_X_REQUEST_ID,
} from './header-kinds.js';

/**
 * Whether request field i is forwarded as received. `rewriteTraceContext`:
 * the proxy replaces traceparent and B3 with its own span (tracing on).
 */
export function forwardRequestField(head: HttpHead, i: number, explicitProxy: boolean, upgrade: boolean, rewriteTraceContext: boolean): boolean {
  switch (head.kinds[i]) {
    case H_OTHER:
      return !head.listedInConnection(i);
    case H_TRACEPARENT:
    case H_B3:
    case H_X_B3_TRACEID:
    case H_X_B3_SPANID:
    case H_X_B3_PARENTSPANID:
    case H_X_B3_SAMPLED:
    case H_X_B3_FLAGS:
      return !rewriteTraceContext;
    case H_CONNECTION:
    case H_KEEP_ALIVE:
    case H_PROXY_CONNECTION:
    // Rewritten by the proxy: forwarding and peer metadata.
    case H_X_FORWARDED_FOR:
    case H_X_FORWARDED_PROTO:
    case H_SOURCE_SERVICE:
    case H_SOURCE_NAMESPACE:
    case H_SOURCE_VERSION:
    // Like peer metadata: only an outbound proxy says which route rule it chose (an app cannot pick its rate limit).
    case H_ROUTE:
      return false;
    case H_TE:
      // "TE: trailers" is the one TE value that means something end to end (gRPC needs it).
      return head.value(i).toLowerCase() === 'trailers';
    case H_UPGRADE:
      return upgrade;
    case H_PROXY_AUTHORIZATION:
      return !explicitProxy;
    case H_X_REQUEST_ID:
      // An empty one is replaced by a generated id.
      return (head.valueEnds[i] as number) > (head.valueStarts[i] as number);
    default:
      return !head.listedInConnection(i);
  }
}

/** Whether response field i is forwarded as received. */
export function forwardResponseField(head: HttpHead, i: number, explicitProxy: boolean, upgrade: boolean, _rewriteTraceContext: boolean): boolean {
  switch (head.kinds[i]) {
    case H_OTHER:
      return !head.listedInConnection(i);
    case H_CONNECTION:
    case H_KEEP_ALIVE:
    case H_PROXY_CONNECTION:
      return false;
    case H_UPGRADE:
      return upgrade;
    case H_CONTENT_LENGTH:
      // Transfer-Encoding overrides Content-Length; passing both on would invite a split.
      return !head.transferEncoding;
    case H_PROXY_AUTHENTICATE:
      return !explicitProxy;
    default:
      return !head.listedInConnection(i);
  }
}
