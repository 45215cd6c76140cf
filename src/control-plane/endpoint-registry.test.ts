import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../lib/errors.js';
import { EndpointRegistry, type ProxyRegistration } from './endpoint-registry.js';

function clock(): { now: () => number; advance: (ms: number) => void } {
  let t = 1_000_000;
  return { now: () => t, advance: (ms) => (t += ms) };
}


function proxy(id: string, address: string, version = 'v1'): ProxyRegistration {
  return { id, service: 'reviews', namespace: 'default', version, labels: { app: 'reviews' }, address, port: 15006 };
}

describe('endpoint registry', () => {
  it('lists registered workloads as endpoints by service, in a stable order', () => {
    const registry = new EndpointRegistry({ ttlMs: 30_000, maxProxies: 10, now: clock().now });
    registry.register(proxy('b', '10.0.0.3', 'v2'));
    registry.register(proxy('a', '10.0.0.2'));
    registry.register({ ...proxy('x', '10.0.0.4'), service: 'ratings' });
    expect(Object.fromEntries(registry.endpointsByService())).toEqual({
      'reviews.default': [
        { address: '10.0.0.2', port: 15006, labels: { app: 'reviews', version: 'v1' } },
        { address: '10.0.0.3', port: 15006, labels: { app: 'reviews', version: 'v2' } },
      ],
      'ratings.default': [{ address: '10.0.0.4', port: 15006, labels: { app: 'reviews', version: 'v1' } }],
    });
  });

  it('expires a registration not renewed within the TTL, and a heartbeat renews it', () => {
    const c = clock();
    const registry = new EndpointRegistry({ ttlMs: 30_000, maxProxies: 10, now: c.now });
    registry.register(proxy('a', '10.0.0.2'));
    registry.register(proxy('b', '10.0.0.3'));
    c.advance(20_000);
    expect(registry.heartbeat('a')).toBe(true);
    c.advance(15_000);
    expect(registry.expire()).toEqual(['b']);
    expect(registry.list().map((p) => p.id)).toEqual(['a']);
    expect(registry.heartbeat('b')).toBe(false);
  });

  it('tells listeners when the endpoint set changes, not on heartbeats or identical re-registrations', () => {
    const c = clock();
    const registry = new EndpointRegistry({ ttlMs: 1_000, maxProxies: 10, now: c.now });
    let changes = 0;
    registry.onChange(() => changes++);
    registry.register(proxy('a', '10.0.0.2'));
    registry.register(proxy('a', '10.0.0.2'));
    registry.heartbeat('a');
    expect(changes).toBe(1);
    registry.register(proxy('a', '10.0.0.2', 'v2'));
    expect(changes).toBe(2);
    c.advance(2_000);
    registry.expire();
    expect(changes).toBe(3);
    registry.register(proxy('b', '10.0.0.3'));
    expect(registry.deregister('b')).toBe(true);
    expect(registry.deregister('b')).toBe(false);
    expect(changes).toBe(5);
  });

  it('refuses registrations past its bound, naming the proxy', () => {
    const registry = new EndpointRegistry({ ttlMs: 1_000, maxProxies: 2, now: clock().now });
    registry.register(proxy('a', '10.0.0.2'));
    registry.register(proxy('b', '10.0.0.3'));
    let caught: unknown;
    try {
      registry.register(proxy('c', '10.0.0.4'));
    } catch (err) {
      caught = err;
    }
    expect(isTracemeshError(caught, 'TM_ERR_CP_REGISTRY_FULL')).toBe(true);
    expect((caught as Error).message).toContain('c was not registered');
    // Re-registering one already there is not growth.
    expect(registry.register(proxy('a', '10.0.0.2')).id).toBe('a');
  });
});
