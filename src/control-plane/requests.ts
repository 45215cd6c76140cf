/** Request bodies of the control plane's API, checked field by field (400 naming the field). */
import type * as z from 'zod';
import { hostOrIp, labelMap } from '../config/schema-parts.js';
import { TracemeshError } from '../lib/errors.js';
import type { SourceText } from './config-set.js';
import type { ProxyRegistration } from './endpoint-registry.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;
const MAX_SOURCES = 1_000;

function bad(message: string): never {
  throw new TracemeshError('TM_ERR_CP_PROTOCOL', message);
}

function record(value: unknown, what: string): Record<string, unknown> {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) bad(`${what} must be a JSON object`);
  return value as Record<string, unknown>;
}

function text(r: Record<string, unknown>, field: string, what: string, max: number): string {
  const value = r[field];
  if (typeof value !== 'string' || value.length === 0 || value.length > max) bad(`${what}: "${field}" must be a non-empty string of at most ${max} characters`);
  return value;
}

/** `{ "sources": [{ "file": "mesh.yaml", "text": "…" }] }`: the files `tracemesh apply -f` read. */
export function parseSources(body: unknown): SourceText[] {
  const sources = record(body, 'the body')['sources'];
  if (!Array.isArray(sources) || sources.length === 0 || sources.length > MAX_SOURCES) bad(`the body: "sources" must be a list of 1 to ${MAX_SOURCES} {file, text} objects`);
  return sources.map((s, i) => {
    const r = record(s, `sources[${i}]`);
    const value = r['text'];
    if (typeof value !== 'string') bad(`sources[${i}]: "text" must be a string`);
    return { file: text(r, 'file', `sources[${i}]`, 4096), text: value };
  });
}

function name(r: Record<string, unknown>, field: string): string {
  const value = text(r, field, 'registration', 63);
  if (!NAME.test(value)) bad(`registration: "${field}" '${value}' is not a name (lowercase letters, digits and '-')`);
  return value;
}

/**
 * A registration becomes an endpoint in a Service document of every proxy's
 * snapshot, so its address and labels are checked by the same rules as an
 * endpoint in a config file: one that passed here but not there would make
 * every proxy refuse every snapshot (NACK) until it expired.
 */
function endpointPart<T>(schema: z.ZodType<T>, value: unknown, field: string): T {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issue = result.error.issues[0];
  const where = issue === undefined || issue.path.length === 0 ? field : `${field}.${issue.path.map(String).join('.')}`;
  return bad(`registration: "${where}": ${issue?.message ?? 'invalid'}`);
}

export function parseRegistration(body: unknown): ProxyRegistration {
  const r = record(body, 'the registration');
  const port = r['port'];
  if (typeof port !== 'number' || !Number.isInteger(port) || port < 1 || port > 65535) bad('registration: "port" must be a port number (1-65535)');
  const labels = endpointPart<Record<string, string>>(labelMap(), r['labels'] ?? {}, 'labels');
  return {
    id: text(r, 'id', 'registration', 256),
    service: name(r, 'service'),
    namespace: name(r, 'namespace'),
    version: name(r, 'version'),
    labels,
    address: endpointPart<string>(hostOrIp(), text(r, 'address', 'registration', 253), 'address'),
    port,
  };
}
