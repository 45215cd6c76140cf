/**
 * The header fields the HTTP/1 path acts on, as small integers. The parser
 * classifies each field once; everything after it (framing, hop-by-hop
 * removal, trace context, peer metadata) asks "where is Host?" by index
 * instead of comparing names again.
 */
import { SOURCE_NAMESPACE_HEADER, SOURCE_SERVICE_HEADER, SOURCE_VERSION_HEADER } from '../telemetry/attributes.js';

export const H_OTHER = 0;
export const H_HOST = 1;
export const H_CONTENT_LENGTH = 2;
export const H_TRANSFER_ENCODING = 3;
export const H_CONNECTION = 4;
export const H_KEEP_ALIVE = 5;
export const H_PROXY_CONNECTION = 6;
export const H_TE = 7;
export const H_UPGRADE = 8;
export const H_EXPECT = 9;
export const H_PROXY_AUTHORIZATION = 10;
export const H_PROXY_AUTHENTICATE = 11;
export const H_TRACEPARENT = 12;
export const H_TRACESTATE = 13;
export const H_B3 = 14;
export const H_X_B3_TRACEID = 15;
export const H_X_B3_SPANID = 16;
export const H_X_B3_PARENTSPANID = 17;
export const H_X_B3_SAMPLED = 18;
export const H_X_B3_FLAGS = 19;
export const H_X_FORWARDED_FOR = 20;
export const H_X_FORWARDED_PROTO = 21;
export const H_X_REQUEST_ID = 22;
export const H_USER_AGENT = 23;
export const H_SOURCE_SERVICE = 24;
export const H_SOURCE_NAMESPACE = 25;
export const H_SOURCE_VERSION = 26;
export const HEADER_KIND_COUNT = 27;

const KINDS = new Map<string, number>([
  ['host', H_HOST],
  ['content-length', H_CONTENT_LENGTH],
  ['transfer-encoding', H_TRANSFER_ENCODING],
  ['connection', H_CONNECTION],
  ['keep-alive', H_KEEP_ALIVE],
  ['proxy-connection', H_PROXY_CONNECTION],
  ['te', H_TE],
  ['upgrade', H_UPGRADE],
  ['expect', H_EXPECT],
  ['proxy-authorization', H_PROXY_AUTHORIZATION],
  ['proxy-authenticate', H_PROXY_AUTHENTICATE],
  ['traceparent', H_TRACEPARENT],
  ['tracestate', H_TRACESTATE],
  ['b3', H_B3],
  ['x-b3-traceid', H_X_B3_TRACEID],
  ['x-b3-spanid', H_X_B3_SPANID],
  ['x-b3-parentspanid', H_X_B3_PARENTSPANID],
  ['x-b3-sampled', H_X_B3_SAMPLED],
  ['x-b3-flags', H_X_B3_FLAGS],
  ['x-forwarded-for', H_X_FORWARDED_FOR],
  ['x-forwarded-proto', H_X_FORWARDED_PROTO],
  ['x-request-id', H_X_REQUEST_ID],
  ['user-agent', H_USER_AGENT],
  [SOURCE_SERVICE_HEADER, H_SOURCE_SERVICE],
  [SOURCE_NAMESPACE_HEADER, H_SOURCE_NAMESPACE],
  [SOURCE_VERSION_HEADER, H_SOURCE_VERSION],
]);

// Most fields (Accept, Cookie, Content-Type…) are none of the above; a name
// whose length no known name has is classified without slicing or lowercasing it.
const MAX_KNOWN_LENGTH = 64;
const KNOWN_LENGTH = new Uint8Array(MAX_KNOWN_LENGTH + 1);
for (const name of KINDS.keys()) KNOWN_LENGTH[name.length] = 1;

/** True when a field name of this length may be one of the known ones. */
export function maybeKnownLength(length: number): boolean {
  return length <= MAX_KNOWN_LENGTH && KNOWN_LENGTH[length] === 1;
}

/** The kind of a lowercase field name; H_OTHER when the path does not act on it. */
export function headerKind(lowerName: string): number {
  return KINDS.get(lowerName) ?? H_OTHER;
}

/** True for every B3 propagation field (single and multi). */
export function isB3Kind(kind: number): boolean {
  return kind >= H_B3 && kind <= H_X_B3_FLAGS;
}
