import { describe, expect, it } from 'vitest';
import { MAX_PODS, defaultSubnetIndex, infraAddresses, podAddresses, subnetFor } from './addressing.js';

describe('mesh network addressing', () => {
  it('puts network N on 10.77.N.0/24 and fd00:77:0:N::/64 (N in hex), infra on .2 and pods from .10', () => {
    const subnet = subnetFor(26);
    expect(subnet).toMatchObject({ ipv4Cidr: '10.77.26.0/24', ipv6Cidr: 'fd00:77:0:1a::/64' });
    expect(infraAddresses(subnet)).toEqual({ ipv4: '10.77.26.2', ipv6: 'fd00:77:0:1a::2' });
    expect(podAddresses(subnet, 0)).toEqual({ ipv4: '10.77.26.10', ipv6: 'fd00:77:0:1a::a' });
    expect(podAddresses(subnet, MAX_PODS - 1)).toEqual({ ipv4: '10.77.26.254', ipv6: 'fd00:77:0:1a::fe' });
  });

  it('gives every pod of a full network a different address', () => {
    const subnet = subnetFor(0);
    const all = new Set([infraAddresses(subnet).ipv4]);
    for (let i = 0; i < MAX_PODS; i++) all.add(podAddresses(subnet, i).ipv4);
    expect(all.size).toBe(MAX_PODS + 1);
  });

  it('refuses indexes out of range, naming the value', () => {
    expect(() => subnetFor(256)).toThrow('subnet index 256 is not an integer from 0 to 255');
    expect(() => subnetFor(1.5)).toThrow(/1\.5/);
    expect(() => podAddresses(subnetFor(0), MAX_PODS)).toThrow(`pod index ${MAX_PODS} is not an integer`);
    expect(() => podAddresses(subnetFor(0), -1)).toThrow('pod index -1');
  });

  it('derives a default index from the pid so parallel runs differ', () => {
    expect(defaultSubnetIndex(1000)).toBe(1000 % 256);
    expect(defaultSubnetIndex(1001)).not.toBe(defaultSubnetIndex(1000));
  });
});
