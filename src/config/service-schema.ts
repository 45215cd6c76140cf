/**
 * The `Service` kind (DESIGN.md, "Configuration model"): a service's ports
 * and protocols, the VIPs that mean it, and optional static endpoints.
 *
 *   spec:
 *     ports: [{ name: http, port: 9080, protocol: http }]   # http | http2 | grpc | tcp
 *     vips: [10.96.0.20]
 *     endpoints: [{ address: 127.0.0.1, port: 25006, labels: { version: v1 } }]
 *
 * An endpoint of a service with several ports may send some of them
 * elsewhere: `{ address: 10.0.0.7, port: 25006, ports: { metrics: 25007 } }`
 * (keys are the service's port names).
 */
import { isIP } from 'node:net';
import * as z from 'zod';
import type { PortProtocol } from '../../proxy/clusters/types.js';
import { defineKind } from './kind-definition.js';
import type { CheckedDocument, PlacedIssue } from './kind-definition.js';
import type { ObjectMeta } from './metadata-schema.js';
import { dnsLabel, expecting, fieldOf, hostOrIp, ipAddress, labelMap, oneOf, portNumber, stringKey, strictFields, uniqueItems, whenList } from './schema-parts.js';
import type { EndpointSpec, ServicePortSpec, ServiceSpec } from './types.js';

export const PORT_PROTOCOLS = ['http', 'http2', 'grpc', 'tcp'] as const satisfies readonly PortProtocol[];

const servicePortSchema = strictFields(
  { name: dnsLabel(), port: portNumber(), protocol: oneOf(PORT_PROTOCOLS) },
  'a port: a mapping with name, port and protocol',
);

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function numberKey(value: unknown): string | undefined {
  return typeof value === 'number' ? String(value) : undefined;
}

/** `127.0.0.1 port 8080`: the same address and port twice would double that endpoint's share. */
function endpointKey(endpoint: unknown): string | undefined {
  const address = fieldOf(endpoint, 'address');
  const port = fieldOf(endpoint, 'port');
  return typeof address === 'string' && typeof port === 'number' ? `${canonicalIp(address)} port ${port}` : undefined;
}

const portsSchema = z
  .array(servicePortSchema, { error: expecting('a non-empty list of ports') })
  .min(1, { error: 'expected at least one port, got an empty list' })
  .superRefine(
    uniqueItems('ports', (port) => numberKey(fieldOf(port, 'port')), (port) => `port ${port}`, 'port'),
    whenList,
  )
  .superRefine(
    uniqueItems('ports', (port) => stringKey(fieldOf(port, 'name')), (name) => `name ${name}`, 'name'),
    whenList,
  );

/** One spelling per address, so `::1` and `0:0:0:0:0:0:0:1` are the same VIP. */
export function canonicalIp(address: string): string {
  if (isIP(address) !== 6) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    // Zone ids (`fe80::1%eth0`) are not valid in a URL.
    return address.toLowerCase();
  }
}

const vipsSchema = z
  .array(ipAddress(), { error: expecting('a list of IP addresses') })
  .superRefine(
    uniqueItems('vips', (vip) => (typeof vip === 'string' ? canonicalIp(vip) : undefined), (vip) => `VIP ${vip}`),
    whenList,
  )
  .default([]);

const targetPortsSchema = z
  .record(dnsLabel(), portNumber(), { error: expecting('a mapping from service port names to endpoint ports') })
  .default({});

const endpointSchema = strictFields(
  { address: hostOrIp(), port: portNumber(), ports: targetPortsSchema, labels: labelMap().default({}) },
  'an endpoint: a mapping with address, port and optionally ports and labels',
);

const endpointsSchema = z
  .array(endpointSchema, { error: expecting('a list of endpoints') })
  .superRefine(
    uniqueItems('endpoints', endpointKey, (endpoint) => `endpoint ${endpoint}`),
    whenList,
  )
  .default([]);

/** An endpoint's `ports` may only name ports the service has: a typo would silently send that port to `port`. */
function checkTargetPortNames(spec: { ports: readonly unknown[]; endpoints: readonly unknown[] }, ctx: z.RefinementCtx): void {
  const names = new Set(spec.ports.map((port) => stringKey(fieldOf(port, 'name'))));
  spec.endpoints.forEach((endpoint, index) => {
    const targets = fieldOf(endpoint, 'ports');
    if (!isRecord(targets)) return;
    for (const name of Object.keys(targets)) {
      if (names.has(name)) continue;
      const known = [...names].filter((n): n is string => n !== undefined).join(', ');
      ctx.addIssue({ code: 'custom', path: ['endpoints', index, 'ports', name], message: `the service has no port named ${name} (its ports: ${known})` });
    }
  });
}

export const serviceSpecSchema = strictFields(
  { ports: portsSchema, vips: vipsSchema, endpoints: endpointsSchema },
  'a mapping with ports and optionally vips and endpoints',
).superRefine(checkTargetPortNames);

type ParsedServiceSpec = z.output<typeof serviceSpecSchema>;

/** Field by field, so every ServiceSpec has the same shape whatever the YAML held. */
function buildService(metadata: ObjectMeta, spec: ParsedServiceSpec): ServiceSpec {
  const ports: ServicePortSpec[] = spec.ports.map((port) => ({ name: port.name, port: port.port, protocol: port.protocol }));
  const endpoints: EndpointSpec[] = spec.endpoints.map((endpoint) => ({
    address: endpoint.address,
    port: endpoint.port,
    ports: { ...endpoint.ports },
    labels: { ...endpoint.labels },
  }));
  return { name: metadata.name, namespace: metadata.namespace, ports, vips: [...spec.vips], endpoints };
}

function where(document: CheckedDocument<ServiceSpec>): string {
  return `Service ${document.model.namespace}/${document.model.name} (${document.source.file}, document ${document.source.index})`;
}

/** A VIP means one service; a second claim would make routing depend on document order. */
function checkVipsAcrossServices(documents: readonly CheckedDocument<ServiceSpec>[]): PlacedIssue[] {
  const owners = new Map<string, CheckedDocument<ServiceSpec>>();
  const issues: PlacedIssue[] = [];
  for (const document of documents) {
    const vips = document.model.vips;
    for (let index = 0; index < vips.length; index++) {
      const vip = vips[index] as string;
      const key = canonicalIp(vip);
      const owner = owners.get(key);
      if (owner === undefined) {
        owners.set(key, document);
      } else if (owner !== document) {
        issues.push({ source: document.source, path: ['spec', 'vips', index], message: `VIP ${vip} is already claimed by ${where(owner)}`, at: 'value' });
      }
    }
  }
  return issues;
}

export const serviceKind = defineKind({
  kind: 'Service',
  spec: serviceSpecSchema,
  build: buildService,
  crossCheck: checkVipsAcrossServices,
  collect(models: ServiceSpec[], config) {
    for (const model of models) config.services.push(model);
  },
});
