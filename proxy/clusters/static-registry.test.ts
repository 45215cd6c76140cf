import { describe, expect, it } from 'vitest';
import type { ServiceSpec } from '../../src/config/types.js';
import { createStaticRegistry } from './static-registry.js';

const reviews: ServiceSpec = {
  name: 'reviews',
  namespace: 'default',
  ports: [
    { name: 'http', port: 9080, protocol: 'http' },
    { name: 'metrics', port: 9091, protocol: 'http' },
  ],
  vips: ['10.96.0.20'],
  endpoints: [
    { address: '10.0.0.7', port: 25006, ports: { metrics: 25007 }, labels: { version: 'v1' } },
    { address: '10.0.0.8', port: 25016, labels: { version: 'v2' } },
  ],
};

describe('static registry', () => {
  it('sends each service port to the endpoint\'s target for it, else to the endpoint\'s port', () => {
    const registry = createStaticRegistry([reviews], 'v1');
    expect(registry.resolve('reviews', 9080)?.endpoints.map((e) => e.key)).toEqual(['10.0.0.7:25006', '10.0.0.8:25016']);
    expect(registry.resolve('reviews.default.svc.cluster.local', 9091)?.endpoints.map((e) => e.key)).toEqual(['10.0.0.7:25007', '10.0.0.8:25016']);
    expect(registry.resolve('10.96.0.20', 9091)?.name).toBe('reviews.default:9091');
  });

  it('keeps live counters per service port: a request on one port does not count on the other', () => {
    const registry = createStaticRegistry([reviews], 'v1');
    const http = registry.resolve('reviews', 9080)!;
    const endpoint = http.pick()!;
    http.onRequestStart(endpoint);
    expect(registry.resolve('reviews', 9091)!.endpoints.map((e) => e.activeRequests)).toEqual([0, 0]);
    expect(http.endpoints.map((e) => e.activeRequests).reduce((a, b) => a + b)).toBe(1);
  });

  it('resolves nothing for an unknown name or a port the service does not have', () => {
    const registry = createStaticRegistry([reviews], 'v1');
    expect(registry.resolve('ratings', 9080)).toBeUndefined();
    expect(registry.resolve('reviews', 9999)).toBeUndefined();
  });
});
