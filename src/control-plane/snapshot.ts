/**
 * What every proxy receives: the stored documents, with each Service's
 * static endpoints followed by the workloads registered for it. Proxies
 * validate and use it exactly like a `--config` file.
 */
import { canonicalIp } from '../config/service-schema.js';
import type { EndpointSpec } from '../config/types.js';
import type { ConfigDocument, JsonValue, StoreSnapshot } from './store/types.js';
import type { WorkloadRegistry } from './workload-registry.js';

export function buildSnapshot(stored: StoreSnapshot, registry: Pick<WorkloadRegistry, 'endpointsByService'>): ConfigDocument[] {
  const registered = registry.endpointsByService();
  return stored.documents.map(({ document }) => {
    if (document.kind !== 'Service') return document;
    const extra = registered.get(`${document.metadata.name}.${document.metadata.namespace}`);
    if (extra === undefined) return document;
    const spec = (document.spec ?? {}) as { [key: string]: JsonValue };
    const endpoints = Array.isArray(spec['endpoints']) ? [...(spec['endpoints'] as JsonValue[])] : [];
    const seen = new Set(endpoints.map((e) => endpointKey(e as unknown as EndpointSpec)));
    for (const endpoint of extra) {
      if (!seen.has(endpointKey(endpoint))) endpoints.push(endpoint as unknown as JsonValue);
    }
    return { ...document, spec: { ...spec, endpoints } };
  });
}

/** The same key the Service schema uses for duplicates (`::1` and `0:0:0:0:0:0:0:1` are one address), so a merge never makes a snapshot proxies refuse. */
function endpointKey(endpoint: EndpointSpec): string {
  return `${canonicalIp(endpoint.address)} port ${endpoint.port}`;
}
