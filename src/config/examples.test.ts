import { readFile } from 'node:fs/promises';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { loadMeshConfig } from './load.js';

const DIR = fileURLToPath(new URL('../../examples/config/', import.meta.url));
const TRAFFIC = `${DIR}traffic.yaml`;
const POLICIES = `${DIR}policies.yaml`;

describe('examples/config', () => {
  it('validates as a whole directory, with every kind in it', async () => {
    const config = await loadMeshConfig([DIR]);
    expect(Object.fromEntries(Object.entries(config).map(([field, models]) => [field, (models as unknown[]).length]))).toEqual({
      services: 5,
      routes: 1,
      destinationPolicies: 1,
      rateLimits: 1,
      authorizationPolicies: 2,
      peerAuthentications: 2,
      circuitPolicies: 1,
    });
  });

  it('traffic.yaml validates on its own and says what the proxies will do', async () => {
    const config = await loadMeshConfig([TRAFFIC]);
    const [route] = config.routes ?? [];
    expect(route!.rules.map((rule) => rule.name)).toEqual(['jason-on-v2', 'legacy-redirect', 'api', 'default']);
    expect(route!.rules[3]!.destinations.map((d) => [d.subset, d.weight])).toEqual([
      ['v1', 90],
      ['v3', 10],
    ]);
    expect(route!.rules[2]!.retries).toMatchObject({ attempts: 2, perTryTimeoutMs: 500, budget: { percent: 20, minRetriesPerSecond: 3 } });
    const [policy] = config.destinationPolicies ?? [];
    expect(policy!.subsets.map((subset) => [subset.name, subset.policy.loadBalancer.kind, subset.policy.connectionPool.maxRequests])).toEqual([
      ['v1', 'leastRequest', 200],
      ['v2', 'leastRequest', 200],
      ['v3', 'consistentHash', 20],
    ]);
    expect(config.rateLimits?.[0]).toMatchObject({ routes: ['api'], perSource: true, statusCode: 429 });
  });

  it('policies.yaml validates with traffic.yaml', async () => {
    const config = await loadMeshConfig([TRAFFIC, POLICIES]);
    expect(config.circuitPolicies?.[0]).toMatchObject({ subset: 'v3', scope: 'endpoint', mode: 'recommend' });
  });

  it('has a comment on every document for people reading it', async () => {
    for (const file of [TRAFFIC, POLICIES]) {
      const documents = (await readFile(file, 'utf8')).split(/^---$/m);
      for (const [index, text] of documents.entries()) expect(/^#/m.test(text), `${file} document ${index}`).toBe(true);
    }
  });
});
