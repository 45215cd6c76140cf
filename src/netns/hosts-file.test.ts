import { describe, expect, it } from 'vitest';
import { hostsFileText, namesOf, resolvConfText } from './hosts-file.js';

const a = { name: 'a', ipv4: '10.77.1.10', ipv6: 'fd00:77:0:1::a', aliases: [] };
const infra = { name: 'infra', ipv4: '10.77.1.2', ipv6: 'fd00:77:0:1::2', aliases: ['collector', 'infra.default'] };

describe('pod hosts files', () => {
  it('names a pod the way cluster DNS does, then its aliases, each once', () => {
    expect(namesOf(a, 'default')).toEqual(['a', 'a.default', 'a.default.svc', 'a.default.svc.cluster.local']);
    expect(namesOf(infra, 'shop')).toEqual(['infra', 'infra.shop', 'infra.shop.svc', 'infra.shop.svc.cluster.local', 'collector', 'infra.default']);
  });

  it('writes loopback, then every pod on IPv4, then on IPv6', () => {
    expect(hostsFileText('tm1-a', [infra, a], 'default')).toBe(
      [
        '# written by tracemesh for network namespace tm1-a; removed when the network is torn down',
        '127.0.0.1\tlocalhost',
        '::1\tlocalhost ip6-localhost ip6-loopback',
        '10.77.1.2\tinfra infra.default infra.default.svc infra.default.svc.cluster.local collector',
        '10.77.1.10\ta a.default a.default.svc a.default.svc.cluster.local',
        'fd00:77:0:1::2\tinfra infra.default infra.default.svc infra.default.svc.cluster.local collector',
        'fd00:77:0:1::a\ta a.default a.default.svc a.default.svc.cluster.local',
        '',
      ].join('\n'),
    );
  });

  it('points DNS at the pod\'s own loopback with one short try, so unknown names fail at once', () => {
    const text = resolvConfText('default');
    expect(text).toContain('search default.svc.cluster.local svc.cluster.local cluster.local\n');
    expect(text).toContain('nameserver 127.0.0.1\n');
    expect(text).toContain('options ndots:5 timeout:1 attempts:1\n');
  });
});
