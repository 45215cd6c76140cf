import { hostname } from 'node:os';
import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { hrTimeFromMs, parseCollectorUrl, proxyResourceAttributes } from './span-sink-resource.js';

describe('collector address', () => {
  it('accepts http, https and bare host:port', () => {
    expect(parseCollectorUrl('http://127.0.0.1:4317')).toEqual({ address: '127.0.0.1:4317', url: 'http://127.0.0.1:4317', secure: false });
    expect(parseCollectorUrl('collector:4317')).toEqual({ address: 'collector:4317', url: 'http://collector:4317', secure: false });
    expect(parseCollectorUrl('https://otel.example:443/')).toEqual({ address: 'otel.example:443', url: 'https://otel.example:443', secure: true });
    expect(parseCollectorUrl(' http://[::1]:4317 ')).toMatchObject({ address: '[::1]:4317' });
  });

  it('rejects what OTLP/gRPC cannot use, naming the value', () => {
    for (const bad of ['', 'http://collector', 'grpc://collector:4317', 'http://collector:4317/v1/traces', 'http://:4317', 'a b:1']) {
      let caught: unknown;
      try {
        parseCollectorUrl(bad);
      } catch (err) {
        caught = err;
      }
      expect(isTracemeshError(caught, 'TM_ERR_CONFIG_INVALID'), bad).toBe(true);
      expect((caught as Error).message).toContain(`"${bad}"`);
    }
  });
});

describe('resource and time', () => {
  it('names the workload, the component, the host and the process; extra attributes win', () => {
    const attrs = proxyResourceAttributes({ service: 'reviews', namespace: 'bookinfo', version: 'v3' }, { 'k8s.pod.name': 'p', 'host.name': 'node-7' });
    expect(attrs).toEqual({
      'service.name': 'reviews',
      'service.namespace': 'bookinfo',
      'service.version': 'v3',
      'tracemesh.component': 'proxy',
      'host.name': 'node-7',
      'process.pid': process.pid,
      'k8s.pod.name': 'p',
    });
    expect(proxyResourceAttributes({ service: 'a', namespace: 'b', version: 'c' })['host.name']).toBe(hostname());
  });

  it('turns epoch milliseconds into HrTime at microsecond resolution', () => {
    expect(hrTimeFromMs(1_722_000_000_123.457)).toEqual([1_722_000_000, 123_457_000]);
    expect(hrTimeFromMs(1_722_000_000_999.9996)).toEqual([1_722_000_001, 0]);
    expect(hrTimeFromMs(0.0015)).toEqual([0, 2000]);
    expect(hrTimeFromMs(12.25)).toEqual([0, 12_250_000]);
  });
});
