/**
 * What the proxy changes in an HTTP/2 request on its way upstream: it drops
 * the connection-specific fields HTTP/2 forbids (RFC 9113 §8.2.2), replaces
 * the trace context with its own span's (when tracing), keeps or creates x-request-id,
 * appends the caller to x-forwarded-for, and handles the peer metadata
 * headers (inbound: read and stripped; outbound: set from this workload).
 * Header objects are node:http2's: lowercase names, string or string[] values.
 */
import { randomUUID } from 'node:crypto';
import { sensitiveHeaders, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import { HEALTH_CHECK_HEADER, SOURCE_NAMESPACE_HEADER, SOURCE_SERVICE_HEADER, SOURCE_VERSION_HEADER } from '../telemetry/attributes.js';
import { HEALTH_CHECK_METHOD, healthCheckTraceContext } from '../telemetry/health-check-trace.js';
import { extractTraceContext, formatTraceparent, type TraceContext } from '../telemetry/trace-context.js';
import type { WorkloadIdentity } from '../telemetry/telemetry.js';

/** Why a request field is not copied as is. */
const enum Drop {
  /** Forbidden in HTTP/2 (RFC 9113 §8.2.2). */
  ConnectionSpecific = 1,
  /** Rewritten by the proxy after the copy. */
  Rewritten = 2,
  /** `te` is allowed only as "trailers". */
  Te = 3,
  /** Trace context: replaced by this proxy's span when tracing, else passed untouched. */
  TraceContext = 4,
}

const DROPPED: ReadonlyMap<string, Drop> = new Map<string, Drop>([
  ['connection', Drop.ConnectionSpecific],
  ['keep-alive', Drop.ConnectionSpecific],
  ['proxy-connection', Drop.ConnectionSpecific],
  ['transfer-encoding', Drop.ConnectionSpecific],
  ['upgrade', Drop.ConnectionSpecific],
  ['te', Drop.Te],
  ['traceparent', Drop.TraceContext],
  ['tracestate', Drop.TraceContext],
  ['b3', Drop.TraceContext],
  ['x-b3-traceid', Drop.TraceContext],
  ['x-b3-spanid', Drop.TraceContext],
  ['x-b3-parentspanid', Drop.TraceContext],
  ['x-b3-sampled', Drop.TraceContext],
  ['x-b3-flags', Drop.TraceContext],
  ['x-request-id', Drop.Rewritten],
  ['x-forwarded-for', Drop.Rewritten],
  ['x-forwarded-proto', Drop.Rewritten],
  [SOURCE_SERVICE_HEADER, Drop.Rewritten],
  [SOURCE_NAMESPACE_HEADER, Drop.Rewritten],
  [SOURCE_VERSION_HEADER, Drop.Rewritten],
]);

/** True for the header names HTTP/2 forbids in any message (responses and trailers included). */
export function isConnectionSpecific(name: string): boolean {
  return DROPPED.get(name) === Drop.ConnectionSpecific;
}

/** One value of a header: the string, or the first of repeated values. */
export function headerValue(headers: IncomingHttpHeaders, name: string): string | undefined {
  const v = headers[name];
  if (typeof v === 'string') return v;
  return v === undefined ? undefined : v[0];
}

// extractTraceContext takes a lookup function; one module-level lookup over
// a module-level slot avoids a closure per request (the call is synchronous).
let lookupHeaders: IncomingHttpHeaders | undefined;
function lookup(name: string): string | undefined {
  return lookupHeaders === undefined ? undefined : headerValue(lookupHeaders, name);
}

/** The trace context the caller sent (traceparent, else b3, else x-b3-*), or undefined. */
export function traceContextOf(headers: IncomingHttpHeaders): TraceContext | undefined {
  // Most requests carry no trace context: skip the parse when no field is there.
  if (headers['traceparent'] === undefined && headers['b3'] === undefined && headers['x-b3-traceid'] === undefined) return undefined;
  lookupHeaders = headers;
  try {
    return extractTraceContext(lookup);
  } finally {
    lookupHeaders = undefined;
  }
}

/**
 * The context this proxy's span continues. `untracedHealthChecks` (inbound,
 * tracing on): a GET marked as an active health check continues a new
 * unsampled trace, so neither this proxy nor the app records a span
 * (telemetry/health-check-trace.ts); anything else, the caller's.
 */
export function continuedTraceContext(headers: IncomingHttpHeaders, untracedHealthChecks: boolean): TraceContext | undefined {
  if (untracedHealthChecks && headers[HEALTH_CHECK_HEADER] !== undefined && headers[':method'] === HEALTH_CHECK_METHOD) return healthCheckTraceContext();
  return traceContextOf(headers);
}

/** The caller's request id, or a new one. */
export function requestIdOf(headers: IncomingHttpHeaders): string {
  const id = headerValue(headers, 'x-request-id');
  return id === undefined || id === '' ? randomUUID() : id;
}

/** Who is calling, from the peer metadata headers an outbound proxy set ('' when absent). */
export function peerOf(headers: IncomingHttpHeaders): WorkloadIdentity {
  return {
    service: headerValue(headers, SOURCE_SERVICE_HEADER) ?? '',
    namespace: headerValue(headers, SOURCE_NAMESPACE_HEADER) ?? '',
    version: headerValue(headers, SOURCE_VERSION_HEADER) ?? '',
  };
}

/** What the rewritten fields are made of: this proxy's span and the request's facts. */
export interface UpstreamRequestFacts {
  readonly traceId: string;
  readonly spanId: string;
  readonly sampled: boolean;
  readonly requestId: string;
  readonly clientAddress: string;
}

/** How the proxy's own fields are written; fixed per direction. */
export interface UpstreamRequestOptions {
  /** Tracing on: traceparent (tracestate kept, and b3 when the caller used B3) carry this proxy's span; off: trace fields pass untouched. */
  readonly rewriteTraceContext: boolean;
  /** Outbound: the peer metadata the next proxy reads. Inbound: undefined (the app never sees those headers). */
  readonly self: WorkloadIdentity | undefined;
}

/**
 * The upstream request's headers: pseudo-headers and end-to-end fields as
 * received, then the proxy's own (as HTTP/1's upstream-request.ts writes them).
 */
export function upstreamRequestHeaders(incoming: IncomingHttpHeaders, facts: UpstreamRequestFacts, options: UpstreamRequestOptions): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  const rewrite = options.rewriteTraceContext;
  let b3 = false;
  for (const name of Object.keys(incoming)) {
    const value = incoming[name];
    if (value === undefined) continue;
    const drop = DROPPED.get(name);
    if (drop === undefined) out[name] = value;
    else if (drop === Drop.TraceContext) {
      if (!rewrite) out[name] = value;
      else if (name === 'tracestate') out[name] = value; // kept as received (W3C: a proxy that is no vendor does not change it)
      else if (name !== 'traceparent') b3 = true;
    } else if (drop === Drop.Te && headerValue(incoming, 'te')?.trim().toLowerCase() === 'trailers') out[name] = 'trailers';
  }
  const sensitive = (incoming as Record<symbol, unknown>)[sensitiveHeaders];
  if (sensitive !== undefined) (out as Record<symbol, unknown>)[sensitiveHeaders] = sensitive;

  if (rewrite) {
    out['traceparent'] = formatTraceparent(facts.traceId, facts.spanId, facts.sampled);
    // A B3 caller's downstream services may read only B3: one b3 field carrying this span replaces all B3 fields.
    if (b3) out['b3'] = `${facts.traceId}-${facts.spanId}-${facts.sampled ? '1' : '0'}`;
  }
  const forwarded = incoming['x-forwarded-for'];
  const chain = typeof forwarded === 'string' ? forwarded : forwarded === undefined ? '' : forwarded.join(', ');
  out['x-forwarded-for'] = chain === '' ? facts.clientAddress : `${chain}, ${facts.clientAddress}`;
  out['x-forwarded-proto'] = 'http';
  out['x-request-id'] = facts.requestId;
  const self = options.self;
  if (self !== undefined) {
    out[SOURCE_SERVICE_HEADER] = self.service;
    out[SOURCE_NAMESPACE_HEADER] = self.namespace;
    if (self.version !== '') out[SOURCE_VERSION_HEADER] = self.version;
  }
  return out;
}

/**
 * Response headers or trailers to relay downstream: everything but the
 * connection-specific fields (node's client already rejects most of them;
 * this keeps a misbehaving upstream from making `respond()` throw).
 */
export function relayedHeaders(incoming: IncomingHttpHeaders): OutgoingHttpHeaders {
  const out: OutgoingHttpHeaders = {};
  for (const name of Object.keys(incoming)) {
    const value = incoming[name];
    if (value === undefined || isConnectionSpecific(name) || name === 'te') continue;
    out[name] = value;
  }
  return out;
}

/**
 * host and port from `:authority` (or Host): `name`, `name:port`, `[v6]`,
 * `[v6]:port`. Port defaults to 80 (h2c is plain http). Undefined when malformed.
 */
export function parseAuthority(authority: string): { host: string; port: number } | undefined {
  let host: string;
  let portText = '';
  if (authority.charCodeAt(0) === 91 /* [ */) {
    const close = authority.indexOf(']');
    if (close === -1) return undefined;
    host = authority.slice(1, close);
    if (close + 1 < authority.length) {
      if (authority.charCodeAt(close + 1) !== 58 /* : */) return undefined;
      portText = authority.slice(close + 2);
    }
  } else {
    const colon = authority.lastIndexOf(':');
    if (colon === -1) host = authority;
    else {
      host = authority.slice(0, colon);
      portText = authority.slice(colon + 1);
    }
  }
  if (host === '' || host.includes('@')) return undefined;
  if (portText === '') return { host, port: 80 };
  if (portText.length > 5) return undefined;
  let port = 0;
  for (let i = 0; i < portText.length; i++) {
    const c = portText.charCodeAt(i);
    if (c < 48 || c > 57) return undefined;
    port = port * 10 + (c - 48);
  }
  return port >= 1 && port <= 65535 ? { host, port } : undefined;
}
