/**
 * Mesh configuration documents for tests that drive the traffic pipeline
 * through the real schema: a Service with one 127.0.0.1 endpoint per backend
 * port, a DestinationPolicy, a Route, and the validation that turns the text
 * into a MeshConfig (a test config that does not validate fails the test).
 */
import { validateMeshConfigText } from '../../src/config/load.js';
import type { MeshConfig } from '../../src/config/types.js';

export interface ServicePortYaml {
  readonly name: string;
  readonly port: number;
  readonly protocol: string;
}

/**
 * A Service in namespace default with one endpoint per port in `endpointPorts`,
 * labelled version v1, v2, … in that order (`versioned` false: no labels).
 */
export function serviceYaml(name: string, port: ServicePortYaml, endpointPorts: readonly number[], versioned = true): string {
  const endpoints = endpointPorts
    .map((p, i) => `    - { address: 127.0.0.1, port: ${p}${versioned ? `, labels: { version: v${i + 1} }` : ''} }`)
    .join('\n');
  return `apiVersion: tracemesh.dev/v1
kind: Service
metadata: { name: ${name}, namespace: default }
spec:
  ports: [{ name: ${port.name}, port: ${port.port}, protocol: ${port.protocol} }]
  endpoints:${endpoints === '' ? ' []' : `\n${endpoints}`}`;
}

/** Subsets v1 … v`count`, each selecting label version of its name (`subsets: []` for none), for a DestinationPolicy's spec. */
export function versionSubsetsYaml(count: number): string {
  if (count === 0) return '  subsets: []';
  const list = Array.from({ length: count }, (_, i) => `    - { name: v${i + 1}, labels: { version: v${i + 1} } }`).join('\n');
  return `  subsets:\n${list}`;
}

/** A DestinationPolicy for `host`; `spec` is the lines of its spec after `host:`, indented by two. */
export function destinationPolicyYaml(host: string, spec: string): string {
  return `apiVersion: tracemesh.dev/v1
kind: DestinationPolicy
metadata: { name: ${host} }
spec:
  host: ${host}
${spec}`;
}

/** A Route for `host` with the given rules (lines under `http:`, indented by four). */
export function routeYaml(host: string, rules: string): string {
  return `apiVersion: tracemesh.dev/v1
kind: Route
metadata: { name: ${host} }
spec:
  hosts: [${host}]
  http:
${rules}`;
}

/** `yaml` validated by the real schema (`file` names it in errors); a throw listing every error if it is invalid. */
export function validMeshConfig(yaml: string, file: string): MeshConfig {
  const result = validateMeshConfigText(yaml, file);
  if (!result.ok) throw new Error(`test config ${file} invalid:\n${result.errors.map((e) => JSON.stringify(e)).join('\n')}`);
  return result.config;
}
