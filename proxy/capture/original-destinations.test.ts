import { describe, expect, it } from 'vitest';
import type { ServiceSpec } from '../../src/config/types.js';
import { createStaticRegistry } from '../clusters/static-registry.js';
import type { ClusterRegistry } from '../clusters/types.js';
import { OriginalDestinations, PASSTHROUGH_SERVICE } from './original-destinations.js';

const ratings: ServiceSpec = {
  name: 'ratings',
  namespace: 'default',
  ports: [
    { name: 'grpc', port: 50051, protocol: 'grpc' },
    { name: 'stock', port: 7070, protocol: 'tcp' },
  ],
  vips: ['10.96.0.20'],
  endpoints: [
    { address: '10.77.0.12', port: 50051, labels: { version: 'v1' } },
    { address: '10.77.0.13', port: 50051, labels: { version: 'v2' } },
  ],
};

function destinations(policy: 'allow-any' | 'registry-only', registry?: () => ClusterRegistry): OriginalDestinations {
  const fixed = createStaticRegistry([ratings], 'v1');
  return new OriginalDestinations(registry ?? (() => fixed), policy, 3);
}

describe('original destinations of captured connections', () => {
  it('a service VIP is the service, load-balanced over every endpoint', () => {
    const cluster = destinations('allow-any').decide('10.96.0.20', 50051);
    expect(cluster?.service).toBe('ratings');
    expect(cluster?.endpoints.map((e) => e.address)).toEqual(['10.77.0.12', '10.77.0.13']);
  });

  it('an endpoint address at a service port is that service, pinned to that endpoint on the port called', () => {
    const d = destinations('allow-any');
    const grpc = d.decide('10.77.0.13', 50051);
    expect(grpc?.service).toBe('ratings');
    expect(grpc?.port.protocol).toBe('grpc');
    expect(grpc?.endpoints.map((e) => [e.key, e.version])).toEqual([['10.77.0.13:50051', 'v2']]);
    // The same pod on its other port: that port's protocol, and the port the app called, not the endpoint's.
    const stock = d.decide('10.77.0.13', 7070);
    expect(stock?.port.protocol).toBe('tcp');
    expect(stock?.endpoints.map((e) => e.key)).toEqual(['10.77.0.13:7070']);
    expect(d.decide('10.77.0.13', 50051)).toBe(grpc);
  });

  it('an unknown destination passes through to itself under allow-any and is refused under registry-only', () => {
    const through = destinations('allow-any').decide('192.0.2.7', 443);
    expect(through?.service).toBe(PASSTHROUGH_SERVICE);
    expect(through?.port.protocol).toBe('tcp');
    expect(through?.endpoints.map((e) => e.key)).toEqual(['192.0.2.7:443']);
    expect(destinations('registry-only').decide('192.0.2.7', 443)).toBeUndefined();
    // A known address on a port the service does not declare is not that service.
    expect(destinations('registry-only').decide('10.77.0.12', 8080)).toBeUndefined();
    expect(destinations('allow-any').service('192.0.2.7', 443)).toBeUndefined();
  });

  it('IPv6 destinations are written as the registry writes them', () => {
    const v6: ServiceSpec = { ...ratings, vips: [], endpoints: [{ address: 'fd00:77::c', port: 50051, labels: {} }] };
    const cluster = destinations('registry-only', () => createStaticRegistry([v6], 'v1')).decide('fd00:77::c', 50051);
    expect(cluster?.endpoints.map((e) => e.key)).toEqual(['[fd00:77::c]:50051']);
  });

  it('keeps at most its bound of clusters and starts afresh when the registry is replaced', () => {
    let registry = createStaticRegistry([ratings], 'v1');
    const d = destinations('allow-any', () => registry);
    const first = d.decide('192.0.2.1', 1);
    for (let i = 2; i <= 4; i++) d.decide(`192.0.2.${i}`, 1);
    // Bound 3: the oldest was dropped and is made anew.
    expect(d.decide('192.0.2.1', 1)).not.toBe(first);
    const pinned = d.decide('10.77.0.12', 50051);
    expect(d.decide('10.77.0.12', 50051)).toBe(pinned);
    registry = createStaticRegistry([{ ...ratings, endpoints: [] }], 'v2');
    expect(d.decide('10.77.0.12', 50051)?.service).toBe(PASSTHROUGH_SERVICE);
  });
});
