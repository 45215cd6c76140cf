/**
 * A short content hash of a validated configuration: the registry version a
 * proxy shows in /config_dump, and later the version the control plane
 * distributes and proxies ACK. Same config → same version, whatever the key
 * order or formatting of the YAML it came from.
 */
import { createHash } from 'node:crypto';
import type { MeshConfig } from './types.js';

/** JSON with object keys sorted at every level; list order is kept (it is meaningful: round robin, first claim). */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (typeof value === 'object' && value !== null) {
    const record = value as Record<string, unknown>;
    const keys = Object.keys(record)
      .filter((key) => record[key] !== undefined)
      .sort();
    return `{${keys.map((key) => `${JSON.stringify(key)}:${canonicalJson(record[key])}`).join(',')}}`;
  }
  return JSON.stringify(value) ?? 'null';
}

/** First 12 hex characters of the SHA-256 of the canonical JSON. */
export function configVersion(config: MeshConfig): string {
  return createHash('sha256').update(canonicalJson(config)).digest('hex').slice(0, 12);
}
