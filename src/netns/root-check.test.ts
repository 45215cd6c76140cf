import { describe, expect, it } from 'vitest';
import { isNetnsError } from './netns-error.js';
import { NEED_ROOT_MESSAGE, assertRoot, assertTools } from './root-check.js';

describe('preconditions of a mesh network', () => {
  it('refuses a non-root uid with one clear line, and the demo may word it its own way', () => {
    expect(() => assertRoot(1000)).toThrow(NEED_ROOT_MESSAGE);
    expect(NEED_ROOT_MESSAGE).toBe('system tests need root (network namespaces, veth, iptables)');
    expect(() => assertRoot(1000, 'demo --transparent needs root')).toThrow('demo --transparent needs root');
    let caught: unknown;
    try {
      assertRoot(65534);
    } catch (err) {
      caught = err;
    }
    expect(isNetnsError(caught, 'TM_ERR_NETNS_NOT_ROOT')).toBe(true);
    expect(() => assertRoot(0)).not.toThrow();
  });

  it('names each missing program with the package that brings it', () => {
    expect(() => assertTools('/nonexistent')).toThrow(
      'not found on PATH: ip (package iproute2), setpriv (package util-linux); install with apt-get install iproute2 util-linux',
    );
  });
});
