/**
 * The table of configuration kinds. Adding a kind (Route, DestinationPolicy,
 * AuthorizationPolicy, PeerAuthentication, RateLimit, CircuitPolicy: issue 5)
 * is one schema file calling defineKind(), one row here, and its field in
 * MeshConfig (types.ts) and emptyMeshConfig() below.
 */
import type { RegisteredKind } from './kind-definition.js';
import { serviceKind } from './service-schema.js';
import type { MeshConfig } from './types.js';

export const API_VERSION = 'tracemesh.dev/v1';

export const KINDS: ReadonlyMap<string, RegisteredKind> = new Map([serviceKind].map((kind) => [kind.kind, kind]));

/** In the order of the table, for "expected one of …" messages. */
export const SUPPORTED_KINDS: readonly string[] = [...KINDS.keys()];

export function emptyMeshConfig(): MeshConfig {
  return { services: [] };
}
