import { describe, expect, it } from 'vitest';
import { canonicalJson, configVersion } from './config-version.js';
import { validateMeshConfigText } from './load.js';
import type { MeshConfig } from './types.js';

function configOf(text: string): MeshConfig {
  const result = validateMeshConfigText(text, 'v.yaml');
  if (!result.ok) throw new Error(result.errors.map((e) => e.message).join('\n'));
  return result.config;
}

const BLOCK = `apiVersion: tracemesh.dev/v1
kind: Service
metadata:
  name: reviews
spec:
  ports:
    - name: http
      port: 9080
      protocol: http
  endpoints:
    - address: 127.0.0.1
      port: 25006
      labels: { version: v1, zone: a }
`;

// The same document: other key order, flow style, the default namespace written out, comments.
const REORDERED = `# same thing
spec:
  endpoints: [{ labels: { zone: a, version: v1 }, port: 25006, address: 127.0.0.1 }]
  ports: [{ protocol: http, port: 9080, name: http }]
metadata: { namespace: default, name: reviews }
kind: Service
apiVersion: tracemesh.dev/v1
`;

describe('configVersion', () => {
  it('is 12 hex characters', () => {
    expect(configVersion(configOf(BLOCK))).toMatch(/^[0-9a-f]{12}$/);
    expect(configVersion({ services: [] })).toMatch(/^[0-9a-f]{12}$/);
  });

  it('does not depend on key order, style or defaults written out', () => {
    expect(configVersion(configOf(REORDERED))).toBe(configVersion(configOf(BLOCK)));
  });

  it('changes when the config does', () => {
    const before = configVersion(configOf(BLOCK));
    expect(configVersion(configOf(BLOCK.replace('25006', '25007')))).not.toBe(before);
    expect(configVersion(configOf(BLOCK.replace('zone: a', 'zone: b')))).not.toBe(before);
    expect(configVersion({ services: [] })).not.toBe(before);
  });
});

describe('canonicalJson', () => {
  it('sorts keys at every level and keeps list order', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, 1], c: 'x' } })).toBe('{"a":{"c":"x","d":[2,1]},"b":1}');
    expect(canonicalJson({ a: undefined, b: null })).toBe('{"b":null}');
  });
});
