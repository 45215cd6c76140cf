/**
 * The request head the upstream receives: the request line in origin-form,
 * the client's end-to-end fields as received, then the fields this proxy
 * sets — trace context carrying this proxy's span, the forwarding fields,
 * a request id, and (outbound) who is calling.
 */
import { headerEditLines } from '../pipeline/header-edits.js';
import type { RoutePlan } from '../pipeline/types.js';
import { ROUTE_HEADER, SOURCE_NAMESPACE_HEADER, SOURCE_SERVICE_HEADER, SOURCE_VERSION_HEADER } from '../telemetry/attributes.js';
import type { HttpObservation } from '../telemetry/http-observation.js';
import type { WorkloadIdentity } from '../telemetry/telemetry.js';
import { formatTraceparent } from '../telemetry/trace-context.js';
import { H_X_FORWARDED_FOR } from './header-kinds.js';
import type { HttpHead } from './head.js';
import { keptFieldLines, keptFieldLinesExcept } from './head-writer.js';
import { forwardRequestField } from './hop-by-hop.js';
import type { RequestTarget } from './request-target.js';

/** What varies per request besides the head, target and observation. */
export interface UpstreamRequestOptions {
  /** The client addressed this proxy as a forward proxy (explicit outbound). */
  readonly explicitProxy: boolean;
  /** Tracing on: traceparent (and b3 when the caller used B3) carry this proxy's span; off: trace fields pass untouched. */
  readonly rewriteTraceContext: boolean;
  /** An upgrade request: Upgrade and Connection: upgrade travel on. */
  readonly upgrade: boolean;
  /** The x-request-id to add, '' when the client sent one (kept as is). */
  readonly newRequestId: string;
  /** Peer-metadata field lines to add (outbound), '' for none. */
  readonly peerFields: string;
  readonly clientAddress: string;
}

/** Peer-metadata field lines naming this workload, added by outbound proxies; built once per connection. */
export function peerMetadataFields(identity: WorkloadIdentity): string {
  let out = `${SOURCE_SERVICE_HEADER}: ${identity.service}\r\n${SOURCE_NAMESPACE_HEADER}: ${identity.namespace}\r\n`;
  if (identity.version !== '') out += `${SOURCE_VERSION_HEADER}: ${identity.version}\r\n`;
  return out;
}

export function upstreamRequestHead(head: HttpHead, target: RequestTarget, obs: HttpObservation, options: UpstreamRequestOptions): string {
  let out: string;
  if (!target.absolute && head.versionMinor <= 1) {
    out = head.text.slice(0, head.startLineEnd);
  } else {
    out = head.method + ' ' + target.origin + (head.versionMinor === 0 ? ' HTTP/1.0\r\n' : ' HTTP/1.1\r\n');
  }
  out += keptFieldLines(head, forwardRequestField, options.explicitProxy, options.upgrade, options.rewriteTraceContext);
  return out + proxyFields(head, obs, options) + '\r\n';
}

/**
 * The upstream head under a route plan: the rewritten path and authority,
 * the request header edits, and the rule's name in x-tracemesh-route.
 * `authority` overrides the plan's (a mirror's "-shadow" authority);
 * `extra` is more CRLF-terminated field lines (the mirror's marker).
 */
export function plannedRequestHead(head: HttpHead, target: RequestTarget, obs: HttpObservation, options: UpstreamRequestOptions, plan: RoutePlan, authority: string | undefined, extra: string): string {
  const path = plan.path ?? target.origin;
  let out = head.method + ' ' + path + (head.versionMinor === 0 ? ' HTTP/1.0\r\n' : ' HTTP/1.1\r\n');
  const edit = headerEditLines(plan.requestHeaders);
  const host = authority ?? plan.authority;
  out += keptFieldLinesExcept(head, forwardRequestField, options.explicitProxy, options.upgrade, options.rewriteTraceContext, edit.drops, host !== undefined);
  if (host !== undefined) out += 'host: ' + host + '\r\n';
  out += edit.lines;
  if (plan.routeName !== '') out += ROUTE_HEADER + ': ' + plan.routeName + '\r\n';
  return out + extra + proxyFields(head, obs, options) + '\r\n';
}

/** Whether the plan changes the upstream head beyond the usual (then plannedRequestHead builds it). */
export function planEditsRequest(plan: RoutePlan): boolean {
  const edit = plan.requestHeaders;
  return plan.routeName !== '' || plan.path !== undefined || plan.authority !== undefined || edit.set.length > 0 || edit.add.length > 0 || edit.remove.length > 0;
}

/** The fields this proxy adds after the kept ones: trace context, forwarding, request id, peer metadata, connection. */
function proxyFields(head: HttpHead, obs: HttpObservation, options: UpstreamRequestOptions): string {
  let out = '';
  if (options.rewriteTraceContext) {
    out += 'traceparent: ' + formatTraceparent(obs.traceId, obs.spanId, obs.sampled) + '\r\n';
    // A B3 caller's downstream services may read only B3: rewrite it as one b3 field carrying this span.
    if (head.hasB3) out += 'b3: ' + obs.traceId + '-' + obs.spanId + (obs.sampled ? '-1\r\n' : '-0\r\n');
  }
  const forwardedFor = head.joinedValuesOf(H_X_FORWARDED_FOR);
  out += 'x-forwarded-for: ' + (forwardedFor === undefined ? options.clientAddress : forwardedFor + ', ' + options.clientAddress);
  out += '\r\nx-forwarded-proto: http\r\n';
  if (options.newRequestId !== '') out += 'x-request-id: ' + options.newRequestId + '\r\n';
  out += options.peerFields;
  if (options.upgrade) out += 'connection: upgrade\r\n';
  // An HTTP/1.0 request is forwarded as 1.0 (so the response is never chunked for a 1.0 client) but keeps the upstream connection.
  else if (head.versionMinor === 0) out += 'connection: keep-alive\r\n';
  return out;
}
