/** examples/demo, validated with the real configuration code: what the demo applies at start. */
import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadMeshConfig } from '../../src/config/load.js';
import { WORKLOADS } from '../../src/demo/topology.js';

const DIR = fileURLToPath(new URL('../../examples/demo/', import.meta.url));

describe('examples/demo', () => {
  it('validates as a directory: five services, the reviews split, the ratings retries, subsets by version', async () => {
    const config = await loadMeshConfig([DIR]);
    expect((config.services ?? []).map((s) => s.name).sort()).toEqual(['catalog', 'inventory', 'ratings', 'reviews', 'web']);
    expect([...new Set(WORKLOADS.map((w) => w.service))].sort()).toEqual(['catalog', 'inventory', 'ratings', 'reviews', 'web']);
    const reviews = config.routes?.find((r) => r.name === 'reviews');
    expect(reviews?.rules[0]?.destinations.map((d) => [d.subset, d.weight])).toEqual([
      ['v1', 60],
      ['v2', 30],
      ['v3', 10],
    ]);
    const ratings = config.routes?.find((r) => r.name === 'ratings');
    expect(ratings?.rules[0]?.retries).toMatchObject({ attempts: 2, perTryTimeoutMs: 1000 });
    const policy = config.destinationPolicies?.[0];
    expect(policy?.subsets.map((s) => [s.name, s.labels])).toEqual([
      ['v1', { version: 'v1' }],
      ['v2', { version: 'v2' }],
      ['v3', { version: 'v3' }],
    ]);
    expect(policy?.policy.outlierDetection).toMatchObject({ consecutive5xx: 5, baseEjectionTimeMs: 15_000 });
  });

  it('explains every document in a comment', async () => {
    for (const name of ['services.yaml', 'traffic.yaml']) {
      const documents = (await readFile(`${DIR}${name}`, 'utf8')).split(/^---$/m);
      for (const [index, text] of documents.entries()) expect(/^#/m.test(text), `${name} document ${index}`).toBe(true);
    }
  });
});
