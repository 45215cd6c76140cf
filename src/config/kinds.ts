/**
 * The table of configuration kinds. Adding a kind is one schema file calling
 * defineKind(), one row here, and its field in MeshConfig (types.ts) and
 * emptyMeshConfig() below.
 */
import { authorizationPolicyKind } from './authorization-policy-schema.js';
import { circuitPolicyKind } from './circuit-policy-schema.js';
import { destinationPolicyKind } from './destination-policy-schema.js';
import type { RegisteredKind } from './kind-definition.js';
import { peerAuthenticationKind } from './peer-authentication-schema.js';
import { rateLimitKind } from './rate-limit-schema.js';
import { routeKind } from './route-schema.js';
import { serviceKind } from './service-schema.js';
import type { MeshConfig } from './types.js';

export const API_VERSION = 'tracemesh.dev/v1';

// Enforced by the proxies now: Service, Route, DestinationPolicy, RateLimit.
// Validated now, enforced later: AuthorizationPolicy, PeerAuthentication, CircuitPolicy.
const TABLE: readonly RegisteredKind[] = [
  serviceKind,
  routeKind,
  destinationPolicyKind,
  rateLimitKind,
  authorizationPolicyKind,
  peerAuthenticationKind,
  circuitPolicyKind,
];

export const KINDS: ReadonlyMap<string, RegisteredKind> = new Map(TABLE.map((kind) => [kind.kind, kind]));

/** In the order of the table, for "expected one of …" messages. */
export const SUPPORTED_KINDS: readonly string[] = [...KINDS.keys()];

export function emptyMeshConfig(): MeshConfig {
  return {
    services: [],
    routes: [],
    destinationPolicies: [],
    rateLimits: [],
    authorizationPolicies: [],
    peerAuthentications: [],
    circuitPolicies: [],
  };
}
