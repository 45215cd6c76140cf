/**
 * The header fields the HTTP/1 path acts on, as small integers. The parser
 * classifies each field once; everything after it (framing, hop-by-hop
 * removal, trace context, peer metadata) asks "where is Host?" by index
 * instead of comparing names again.
 */
import { HEALTH_CHECK_HEADER, ROUTE_HEADER, SOURCE_NAMESPACE_HEADER, SOURCE_SERVICE_HEADER, SOURCE_VERSION_HEADER } from '../telemetry/attributes.js';

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
/** x-tracemesh-route: the caller's route rule, read by inbound rate limits; set only by the outbound proxy. */
export const H_ROUTE = 27;
/** x-tracemesh-health-check: a proxy's active health check, not traced inbound (telemetry/health-check-trace.ts). */
export const H_HEALTH_CHECK = 28;
export const HEADER_KIND_COUNT = 29;

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
  [ROUTE_HEADER, H_ROUTE],
  [HEALTH_CHECK_HEADER, H_HEALTH_CHECK],
]);

// The parser classifies names where they stand in the head: it hashes each
// name's lowercased bytes while checking them, and a small open-addressed
// table maps the hash to the one known name it may be, which is then compared
// byte by byte (a hash alone could be forged). No field name is sliced,
// lowercased or looked up as a string.

/** The hash the parser computes over a name's bytes, each OR 0x20 (lowercase for letters). */
export function fieldNameHash(lowerName: string): number {
  let hash = 0;
  for (let i = 0; i < lowerName.length; i++) hash = (Math.imul(hash, 31) + (lowerName.charCodeAt(i) | 0x20)) | 0;
  return hash;
}

const SLOT_BITS = 7; // 128 slots for the known names: mostly one probe
const SLOT_MASK = (1 << SLOT_BITS) - 1;
const SLOTS = new Int16Array(1 << SLOT_BITS).fill(-1);
const KNOWN_HASH = new Int32Array(KINDS.size);
const KNOWN_LENGTH = new Int32Array(KINDS.size);
const KNOWN_OFFSET = new Int32Array(KINDS.size);
const KNOWN_KIND = new Int32Array(KINDS.size);
const KNOWN_BYTES = Buffer.from([...KINDS.keys()].join(''), 'latin1');

function slotOf(hash: number): number {
  return (hash ^ (hash >>> SLOT_BITS) ^ (hash >>> 16)) & SLOT_MASK;
}

{
  let k = 0;
  let offset = 0;
  for (const [name, kind] of KINDS) {
    const hash = fieldNameHash(name);
    // fieldKindOf trusts one candidate per hash and length, and compares against lowercase bytes.
    if (name !== name.toLowerCase() || KNOWN_HASH.subarray(0, k).some((h, other) => h === hash && KNOWN_LENGTH[other] === name.length)) {
      throw new Error(`header-kinds: "${name}" is not lowercase or shares its hash with another known name`);
    }
    KNOWN_HASH[k] = hash;
    KNOWN_LENGTH[k] = name.length;
    KNOWN_OFFSET[k] = offset;
    KNOWN_KIND[k] = kind;
    let slot = slotOf(hash);
    while (SLOTS[slot] !== -1) slot = (slot + 1) & SLOT_MASK;
    SLOTS[slot] = k;
    offset += name.length;
    k++;
  }
}

/**
 * The kind of the field name bytes[start, start + length) whose
 * fieldNameHash is `hash`, compared case-insensitively. The name must be a
 * token (the parser checked it): `| 0x20` lowercases its letters and maps no
 * other token character onto a letter, digit or '-'.
 */
export function fieldKindOf(bytes: Uint8Array, start: number, length: number, hash: number): number {
  let slot = slotOf(hash);
  for (;;) {
    const k = SLOTS[slot] as number;
    if (k === -1) return H_OTHER;
    if (KNOWN_HASH[k] === hash && KNOWN_LENGTH[k] === length) {
      const offset = KNOWN_OFFSET[k] as number;
      for (let i = 0; i < length; i++) {
        if (((bytes[start + i] as number) | 0x20) !== KNOWN_BYTES[offset + i]) return H_OTHER;
      }
      return KNOWN_KIND[k] as number;
    }
    slot = (slot + 1) & SLOT_MASK;
  }
}

/** The kind of a lowercase field name; H_OTHER when the path does not act on it. */
export function headerKind(lowerName: string): number {
  return KINDS.get(lowerName) ?? H_OTHER;
}

/** True for every B3 propagation field (single and multi). */
export function isB3Kind(kind: number): boolean {
  return kind >= H_B3 && kind <= H_X_B3_FLAGS;
}
