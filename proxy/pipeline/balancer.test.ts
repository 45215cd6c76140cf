import { describe, expect, it } from 'vitest';
import type { EndpointWeight } from '../../src/config/types.js';
import { Random } from '../../test/support/fuzz/random.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { cookieValue, createBalancer, endpointWeight, hashString } from './balancer.js';
import type { RequestFacts } from './types.js';

function endpoint(port: number, labels: Record<string, string> = {}, address = '10.0.0.1'): ClusterEndpoint {
  return {
    address,
    port,
    labels,
    version: labels['version'] ?? '',
    key: `${address}:${port}`,
    activeRequests: 0,
    totalRequests: 0,
    failedRequests: 0,
    consecutiveFailures: 0,
    lastFailure: '',
  };
}

function facts(headers: Record<string, string>, sourceAddress = '192.0.2.1'): RequestFacts {
  return {
    host: 'reviews',
    port: 9080,
    method: 'GET',
    path: '/',
    query: '',
    header: (name) => headers[name],
    sourceService: 'web',
    sourceNamespace: 'default',
    sourceAddress,
  };
}

function seeded(seed: number): () => number {
  const rng = new Random(seed);
  return () => rng.float();
}

function shares(picks: readonly (ClusterEndpoint | undefined)[], endpoints: readonly ClusterEndpoint[]): number[] {
  return endpoints.map((e) => (100 * picks.filter((p) => p === e).length) / picks.length);
}

describe('endpointWeight', () => {
  const weights: EndpointWeight[] = [
    { kind: 'address', address: '10.0.0.1', port: 81, weight: 7 },
    { kind: 'labels', labels: { zone: 'b' }, weight: 3 },
    { kind: 'address', address: '10.0.0.1', port: null, weight: 2 },
  ];
  it('takes the first matching entry and 1 when none matches', () => {
    expect(endpointWeight(endpoint(81, { zone: 'b' }), weights)).toBe(7);
    expect(endpointWeight(endpoint(82, { zone: 'b' }), weights)).toBe(3);
    expect(endpointWeight(endpoint(82, { zone: 'a' }), weights)).toBe(2);
    expect(endpointWeight(endpoint(82, { zone: 'a' }, '10.0.0.9'), weights)).toBe(1);
  });
});

describe('round robin', () => {
  it('rotates over equal endpoints and skips the excluded one', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    const lb = createBalancer({ kind: 'roundRobin' }, [], Math.random);
    expect([1, 2, 3, 4].map(() => lb.pick(eps, undefined, undefined)?.port)).toEqual([1, 2, 3, 1]);
    expect(lb.pick(eps, undefined, eps[1])?.port).toBe(3); // 2 is next but excluded
    expect(lb.pick([eps[0]!], undefined, eps[0])?.port).toBe(1); // the only one, even excluded
    expect(lb.pick([], undefined, undefined)).toBeUndefined();
  });

  it("is nginx's smooth weighted round robin with weights", () => {
    const eps = [endpoint(1, { w: '5' }), endpoint(2), endpoint(3)];
    const lb = createBalancer({ kind: 'roundRobin' }, [{ kind: 'labels', labels: { w: '5' }, weight: 5 }], Math.random);
    // nginx's documented sequence for weights 5, 1, 1.
    expect(Array.from({ length: 7 }, () => lb.pick(eps, undefined, undefined)?.port)).toEqual([1, 1, 2, 1, 3, 1, 1]);
  });
});

describe('weights give shares', () => {
  const eps = [endpoint(1, { zone: 'a' }), endpoint(2, { zone: 'b' }), endpoint(3, { zone: 'c' })];
  const weights: EndpointWeight[] = [
    { kind: 'labels', labels: { zone: 'b' }, weight: 3 },
    { kind: 'labels', labels: { zone: 'c' }, weight: 6 },
  ];
  const expected = [10, 30, 60];
  for (const kind of ['roundRobin', 'random', 'leastRequest'] as const) {
    it(`${kind}: 1:3:6 within 3 points over 10,000 picks`, () => {
      const lb = createBalancer({ kind }, weights, seeded(7));
      const picks = Array.from({ length: 10_000 }, () => lb.pick(eps, undefined, undefined));
      const got = shares(picks, eps);
      for (let i = 0; i < 3; i++) expect(Math.abs(got[i]! - expected[i]!)).toBeLessThan(3);
    });
  }

  it('consistentHash: 1:3:6 within 3 points over 10,000 keys', () => {
    const lb = createBalancer({ kind: 'consistentHash', key: { kind: 'header', name: 'x-user' } }, weights, seeded(1));
    const picks = Array.from({ length: 10_000 }, (_, i) => lb.pick(eps, facts({ 'x-user': `user-${i}` }), undefined));
    const got = shares(picks, eps);
    for (let i = 0; i < 3; i++) expect(Math.abs(got[i]! - expected[i]!)).toBeLessThan(3);
  });
});

describe('least request', () => {
  it('prefers the endpoint with fewer active requests', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    eps[0]!.activeRequests = 5;
    eps[1]!.activeRequests = 1;
    eps[2]!.activeRequests = 5;
    const lb = createBalancer({ kind: 'leastRequest' }, [], seeded(3));
    const picks = Array.from({ length: 1_000 }, () => lb.pick(eps, undefined, undefined));
    // Endpoint 2 wins whenever it is one of the two draws: 2 of 3 pairs.
    const got = shares(picks, eps);
    expect(Math.abs(got[1]! - 66.7)).toBeLessThan(5);
    expect(Math.abs(got[0]! - 16.7)).toBeLessThan(4);
  });

  it('never draws the excluded endpoint when another is usable', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    eps[0]!.activeRequests = 0;
    eps[1]!.activeRequests = 9;
    eps[2]!.activeRequests = 9;
    const lb = createBalancer({ kind: 'leastRequest' }, [], seeded(4));
    for (let i = 0; i < 200; i++) expect(lb.pick(eps, undefined, eps[0])).not.toBe(eps[0]);
    expect(lb.pick([eps[0]!, eps[1]!], undefined, eps[0])).toBe(eps[1]);
  });
});

describe('random', () => {
  it('avoids the excluded endpoint', () => {
    const eps = [endpoint(1), endpoint(2)];
    const lb = createBalancer({ kind: 'random' }, [], seeded(5));
    for (let i = 0; i < 100; i++) expect(lb.pick(eps, undefined, eps[1])).toBe(eps[0]);
  });
});

describe('consistent hash', () => {
  it('keeps a key on its endpoint, and adding a 4th endpoint moves only keys onto it (≈25 %)', () => {
    const three = [endpoint(1), endpoint(2), endpoint(3)];
    const four = [...three, endpoint(4)];
    const lb = createBalancer({ kind: 'consistentHash', key: { kind: 'header', name: 'x-user' } }, [], seeded(2));
    const keys = Array.from({ length: 1_000 }, (_, i) => facts({ 'x-user': `user-${i}` }));
    const before = keys.map((f) => lb.pick(three, f, undefined));
    expect(keys.map((f) => lb.pick(three, f, undefined))).toEqual(before); // stable
    const after = keys.map((f) => lb.pick(four, f, undefined));
    let moved = 0;
    for (let i = 0; i < keys.length; i++) {
      if (after[i] === before[i]) continue;
      moved++;
      expect(after[i]).toBe(four[3]); // never from one old endpoint to another
    }
    expect(moved).toBeGreaterThan(180);
    expect(moved).toBeLessThan(320);
  });

  it('hashes on a cookie and on the source address; a request without its key goes anywhere', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3), endpoint(4)];
    const byCookie = createBalancer({ kind: 'consistentHash', key: { kind: 'cookie', name: 'session', ttlMs: null } }, [], seeded(6));
    const first = byCookie.pick(eps, facts({ cookie: 'theme=dark; session=abc123' }), undefined);
    for (let i = 0; i < 20; i++) expect(byCookie.pick(eps, facts({ cookie: `x=${i}; session=abc123` }), undefined)).toBe(first);
    const keyless = new Set(Array.from({ length: 200 }, () => byCookie.pick(eps, facts({}), undefined)));
    expect(keyless.size).toBe(4);

    const bySource = createBalancer({ kind: 'consistentHash', key: { kind: 'sourceAddress' } }, [], seeded(6));
    const chosen = bySource.pick(eps, facts({}, '198.51.100.7'), undefined);
    for (let i = 0; i < 20; i++) expect(bySource.pick(eps, facts({}, '198.51.100.7'), undefined)).toBe(chosen);
  });

  it('sends a retry (exclude) to another endpoint, the same one every time', () => {
    const eps = [endpoint(1), endpoint(2), endpoint(3)];
    const lb = createBalancer({ kind: 'consistentHash', key: { kind: 'header', name: 'x-user' } }, [], seeded(8));
    const f = facts({ 'x-user': 'jason' });
    const home = lb.pick(eps, f, undefined)!;
    const retry = lb.pick(eps, f, home);
    expect(retry).not.toBe(home);
    expect(lb.pick(eps, f, home)).toBe(retry);
  });
});

describe('cookieValue and hashString', () => {
  it('finds a cookie by its whole name', () => {
    expect(cookieValue('a=1; session=xyz; b=2', 'session')).toBe('xyz');
    expect(cookieValue('mysession=no; session="q"', 'session')).toBe('q');
    expect(cookieValue('sessionx=1', 'session')).toBeUndefined();
    expect(cookieValue('session=', 'session')).toBe('');
    expect(cookieValue('', 'session')).toBeUndefined();
  });

  it('spreads near-equal strings', () => {
    const hashes = new Set(Array.from({ length: 10_000 }, (_, i) => hashString(`10.0.0.1:80_${i}`)));
    expect(hashes.size).toBeGreaterThan(9_990);
    expect(hashString('a')).not.toBe(hashString('b'));
  });
});
