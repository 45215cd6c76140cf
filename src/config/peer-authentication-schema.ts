/**
 * The `PeerAuthentication` kind (Istio's PeerAuthentication): whether a
 * service's inbound connections must be mutual TLS (STRICT), may be either
 * (PERMISSIVE) or are plain (DISABLE), with per-port exceptions. Without a
 * selector it is the mesh-wide default. Defined and validated now; the
 * proxies enforce it in later work.
 *
 *   spec:
 *     selector: { service: reviews }
 *     mtls: { mode: STRICT }
 *     portLevelMtls: { 9091: { mode: PERMISSIVE } }
 */
import type * as z from 'zod';
import { defineKind } from './kind-definition.js';
import type { CheckedDocument, PlacedIssue } from './kind-definition.js';
import type { ObjectMeta } from './metadata-schema.js';
import { AT_KEY, mapOf, oneOf, resolveServiceRef, serviceRef, strictFields, whenMapping } from './schema-parts.js';
import type { MtlsMode, PeerAuthenticationSpec } from './types.js';
import { describeServiceRef, whereIs } from './where.js';

const MTLS_MODES = ['STRICT', 'PERMISSIVE', 'DISABLE'] as const satisfies readonly MtlsMode[];

const mtlsSchema = strictFields({ mode: oneOf(MTLS_MODES) }, `a mapping with mode (${MTLS_MODES.join(', ')})`);

function isPortKey(key: string): boolean {
  return /^[1-9]\d{0,4}$/.test(key) && Number(key) <= 65535;
}

export const peerAuthenticationSpecSchema = strictFields(
  {
    selector: strictFields({ service: serviceRef() }, 'a selector: a mapping with service').optional(),
    mtls: mtlsSchema,
    portLevelMtls: mapOf(mtlsSchema, 'a mapping of port numbers to { mode }', 'a port number 1..65535', isPortKey).optional(),
  },
  'a mapping with mtls and optionally selector and portLevelMtls',
).superRefine((value, ctx) => {
  if (value.portLevelMtls !== undefined && value.selector === undefined) {
    ctx.addIssue({ code: 'custom', path: ['portLevelMtls'], message: 'needs a selector: ports belong to one service', params: AT_KEY, input: value.portLevelMtls });
  }
}, whenMapping);

type ParsedSpec = z.output<typeof peerAuthenticationSpecSchema>;

function buildPeerAuthentication(metadata: ObjectMeta, spec: ParsedSpec): PeerAuthenticationSpec {
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    selector: spec.selector === undefined ? null : resolveServiceRef(spec.selector.service, metadata.namespace),
    mode: spec.mtls.mode,
    portOverrides: Object.entries(spec.portLevelMtls ?? {}).map(([port, mtls]) => ({ port: Number(port), mode: mtls.mode })),
  };
}

/** One mesh-wide policy and one per service: with two, the mode would depend on document order. */
function checkOnePerSelector(documents: readonly CheckedDocument<PeerAuthenticationSpec>[]): PlacedIssue[] {
  const owners = new Map<string, CheckedDocument<PeerAuthenticationSpec>>();
  const issues: PlacedIssue[] = [];
  for (const document of documents) {
    const selector = document.model.selector;
    const key = selector === null ? 'the mesh' : `service ${describeServiceRef(selector)}`;
    const owner = owners.get(key);
    if (owner === undefined) {
      owners.set(key, document);
      continue;
    }
    const path = selector === null ? ['spec'] : ['spec', 'selector', 'service'];
    issues.push({ source: document.source, path, message: `${key} already has ${whereIs('PeerAuthentication', owner.model, owner.source)}`, at: 'value' });
  }
  return issues;
}

export const peerAuthenticationKind = defineKind({
  kind: 'PeerAuthentication',
  spec: peerAuthenticationSpecSchema,
  build: buildPeerAuthentication,
  crossCheck: checkOnePerSelector,
  collect(models: PeerAuthenticationSpec[], config) {
    (config.peerAuthentications ??= []).push(...models);
  },
});
