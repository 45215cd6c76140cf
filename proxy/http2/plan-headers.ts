/**
 * A route plan's changes to the upstream request's header object: the path
 * and authority rewrites, the rule's request header edits, and the rule's
 * name for the next hop (its rate limits read x-tracemesh-route). Shared by
 * every try and by the mirror's copy.
 */
import type { OutgoingHttpHeaders } from 'node:http2';
import { applyHeaderEditToObject, isEmptyHeaderEdit } from '../pipeline/header-edits.js';
import type { RoutePlan } from '../pipeline/types.js';
import { ROUTE_HEADER } from '../telemetry/attributes.js';

export function planRequestHeaders(plan: RoutePlan, outgoing: OutgoingHttpHeaders): void {
  if (plan.path !== undefined) outgoing[':path'] = plan.path;
  if (plan.authority !== undefined) {
    outgoing[':authority'] = plan.authority;
    delete outgoing['host'];
  }
  if (!isEmptyHeaderEdit(plan.requestHeaders)) applyHeaderEditToObject(plan.requestHeaders, outgoing);
  // Set or removed, never passed through: a caller must not choose the route its limits are counted under.
  if (plan.routeName !== '') outgoing[ROUTE_HEADER] = plan.routeName;
  else delete outgoing[ROUTE_HEADER];
}

/**
 * The authority of a mirror's copy: the host with `-shadow` appended, as
 * Envoy and Istio name shadow traffic, the port kept ("echo:50051" →
 * "echo-shadow:50051"), so the copy's receiver can tell it from live traffic.
 */
export function shadowAuthority(authority: string): string {
  const close = authority.lastIndexOf(']');
  const colon = authority.lastIndexOf(':');
  if (colon === -1 || colon < close) return `${authority}-shadow`;
  return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
}
