import { describe, expect, it } from 'vitest';
import { isNetnsError } from './netns-error.js';
import { resolveMeshSpec } from './mesh-spec.js';
import type { MeshNetworkSpec } from './mesh-spec.js';

function problems(spec: MeshNetworkSpec): string {
  try {
    resolveMeshSpec(spec, 100);
  } catch (err) {
    expect(isNetnsError(err, 'TM_ERR_NETNS_BAD_SPEC')).toBe(true);
    return (err as Error).message;
  }
  throw new Error('expected the spec to be refused');
}

describe('mesh network spec', () => {
  it('puts the infra pod first with its default aliases and fills in the defaults', () => {
    expect(resolveMeshSpec({ base: 'tmt', pods: [{ name: 'a' }, { name: 'b', aliases: ['bee'] }] }, 300)).toEqual({
      base: 'tmt',
      namespace: 'default',
      subnetIndex: 300 % 256,
      pods: [
        { name: 'infra', aliases: ['collector', 'control-plane'] },
        { name: 'a', aliases: [] },
        { name: 'b', aliases: ['bee'] },
      ],
    });
  });

  it('reports every problem at once with where it is', () => {
    const message = problems({
      base: '9x',
      namespace: 'Prod',
      subnetIndex: 300,
      infraAliases: ['ok', 'not ok'],
      pods: [{ name: 'switch' }, { name: 'A' }, { name: 'a', aliases: ['b'] }, { name: 'b' }, { name: 'a' }],
    });
    expect(message.split('\n').slice(1).map((line) => line.trim())).toEqual([
      'base: "9x" is not 1-8 lowercase letters and digits starting and ending with a letter',
      'namespace: "Prod" is not a DNS label',
      'subnetIndex: 300 is not an integer from 0 to 255',
      'infraAliases[1]: "not ok" is not a host name (lowercase DNS labels joined by dots)',
      "pods[0].name: 'switch' is reserved (the network adds it itself)",
      'pods[1].name: "A" is not a DNS label (lowercase letters, digits and \'-\', at most 63)',
      "pods[4].name: 'a' is listed twice",
      "host name 'b' is given to both 'a' and 'b'",
    ]);
  });

  it('refuses a pods value that is not a list, and a missing name', () => {
    expect(problems({ base: 'tmt', pods: 'a' as unknown as [] })).toContain('pods: expected a list of { name, aliases? }');
    expect(problems({ base: 'tmt', pods: [{} as { name: string }] })).toContain('pods[0].name: undefined is not a DNS label');
  });

  it('refuses an alias that collides with another pod\'s cluster name', () => {
    expect(problems({ base: 'tmt', pods: [{ name: 'a', aliases: ['collector'] }] })).toContain(
      "host name 'collector' is given to both 'infra' and 'a'",
    );
  });
});
