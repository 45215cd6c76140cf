import { describe, expect, it } from 'vitest';
import type { Attribute, ResourceInfo, ScopeInfo, SpanKindName, SpanRecord } from '../model.js';
import type { EdgeCall } from './edge-call.js';
import { ServiceGraph } from './service-graph.js';

const scope: ScopeInfo = { name: 'test', version: '1', attributes: [], droppedAttributesCount: 0, schemaUrl: '' };
const resources = new Map<string, ResourceInfo>();
function resource(service: string): ResourceInfo {
  let info = resources.get(service);
  if (info === undefined) {
    info = { serviceName: service, attributes: [{ key: 'service.name', value: service, type: 'string' }], schemaUrl: '' };
    resources.set(service, info);
  }
  return info;
}

function span(service: string, kind: SpanKindName, traceId: string, spanId: string, parentSpanId: string, durationMs: number, extra: Partial<SpanRecord> = {}): SpanRecord {
  const start = 1_700_000_000_000_000_000n;
  return {
    traceId, spanId, parentSpanId, traceState: '', name: 'op', kind,
    startTimeUnixNano: start, endTimeUnixNano: start + BigInt(durationMs * 1e6),
    statusCode: 'Unset', statusMessage: '', attributes: [], events: [], links: [], flags: 1,
    resource: resource(service), scope, ...extra,
  };
}

const T1 = '0af7651916cd43dd8448eb211c80319c';
const T2 = '1af7651916cd43dd8448eb211c80319c';

describe('ServiceGraph', () => {
  it('pairs a client span with the server span whose parent it is, in either arrival order', () => {
    let now = 0;
    const graph = new ServiceGraph({ waitMs: 10_000, maxPending: 100, now: () => now });
    const out: EdgeCall[] = [];
    graph.add(span('frontend', 'Client', T1, 'c000000000000001', 'a000000000000001', 30), out);
    graph.add(span('reviews', 'Server', T1, 's000000000000001', 'c000000000000001', 20, { statusCode: 'Error' }), out);
    graph.add(span('reviews', 'Server', T2, 's000000000000002', 'c000000000000002', 5), out);
    now = 5_000;
    graph.add(span('frontend', 'Client', T2, 'c000000000000002', 'a000000000000002', 8), out);
    expect(out).toEqual([
      expect.objectContaining({ client: 'frontend', server: 'reviews', connectionType: '', clientDurationNanos: 30e6, serverDurationNanos: 20e6, failed: true }),
      expect.objectContaining({ client: 'frontend', server: 'reviews', connectionType: '', clientDurationNanos: 8e6, serverDurationNanos: 5e6, failed: false }),
    ]);
    expect(graph.pending).toBe(0);
    expect(graph.stats.paired).toBe(2);
  });

  it('gives an entry call from user for a server span without parent', () => {
    const graph = new ServiceGraph({ waitMs: 10_000, maxPending: 100 });
    const out: EdgeCall[] = [];
    graph.add(span('frontend', 'Server', T1, 's000000000000001', '', 12), out);
    expect(out).toEqual([expect.objectContaining({ client: 'user', server: 'frontend', connectionType: 'user', clientDurationNanos: 12e6 })]);
  });

  it('settles an unanswered client span naming its peer as a call to a virtual node, and only after the wait', () => {
    let now = 0;
    const graph = new ServiceGraph({ waitMs: 10_000, maxPending: 100, now: () => now });
    const out: EdgeCall[] = [];
    const peer: Attribute = { key: 'db.system', value: 'postgresql', type: 'string' };
    graph.add(span('orders', 'Client', T1, 'c000000000000001', '', 4, { attributes: [peer] }), out);
    graph.add(span('orders', 'Client', T1, 'c000000000000002', '', 4), out);
    now = 9_999;
    graph.expire(out);
    expect(out).toEqual([]);
    now = 10_000;
    graph.expire(out);
    expect(out).toEqual([expect.objectContaining({ client: 'orders', server: 'postgresql', connectionType: 'virtual', serverDurationNanos: 4e6 })]);
    expect(graph.stats.unpaired).toBe(1);
    expect(graph.pending).toBe(0);
  });

  it('stays within its bound by settling the oldest half early', () => {
    const graph = new ServiceGraph({ waitMs: 60_000, maxPending: 3 });
    const out: EdgeCall[] = [];
    for (let i = 0; i < 10; i++) graph.add(span('a', 'Client', T1, `c00000000000000${i}`, '', 1), out);
    expect(graph.pending).toBe(3);
    expect(graph.stats.evictedEarly).toBe(7);
  });

  it('ignores internal, producer and consumer spans', () => {
    const graph = new ServiceGraph({ waitMs: 1, maxPending: 10 });
    const out: EdgeCall[] = [];
    for (const kind of ['Internal', 'Producer', 'Consumer', 'Unspecified'] as const) graph.add(span('a', kind, T1, 'c000000000000001', '', 1), out);
    graph.drain(out);
    expect(out).toEqual([]);
    expect(graph.pending).toBe(0);
  });
});
