/**
 * Load balancers over a destination's usable endpoints. A Balancer is built
 * once per Destination from the policy; `pick` receives the usable list,
 * which the Destination rebuilds (a new array) only when the set changes, so
 * each balancer recomputes its tables (weights, cumulative sums, the hash
 * ring) only on a new array, never per request.
 *
 * - roundRobin: nginx's smooth weighted round robin (every endpoint's
 *   current weight grows by its weight, the largest wins and drops by the
 *   total); with equal weights a plain rotating index.
 * - leastRequest: two distinct random choices, the one with fewer active
 *   requests wins (ties: the first drawn), as Envoy with choice_count 2.
 *   With unequal weights Envoy balances on weight / (active + 1)^bias with
 *   bias 1; we draw by those effective weights at random (Envoy feeds them to
 *   its EDF scheduler: the same shares, without the schedule's state).
 * - random: weighted by cumulative sums and a binary search.
 * - consistentHash: a ring as Envoy's ring hash (ketama-style): every
 *   endpoint owns RING_POINTS_PER_WEIGHT × weight points (hash of
 *   "key_i"), a request's key hashes onto the ring and goes to the next
 *   point's owner. Points per endpoint do not depend on the other endpoints,
 *   so adding an endpoint only moves keys onto it and never between old ones
 *   (Envoy normalises to a ring size and so moves a few; Maglev would too).
 *   A request without its key (header or cookie absent, no facts) takes a
 *   random point, which keeps the weights. The proxy does not set the cookie
 *   when it is absent (Istio's cookie with a ttl does): the app sets it.
 */
import type { ConsistentHashKey, EndpointWeight, LoadBalancer } from '../../src/config/types.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import type { RequestFacts } from './types.js';

export interface Balancer {
  /**
   * One of `usable`, avoiding `exclude` when another is there; undefined when
   * `usable` is empty. `usable` must be the same array while the set is
   * unchanged: a different array makes the balancer rebuild its tables.
   */
  pick(usable: readonly ClusterEndpoint[], facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined;
}

/** Ring points per unit of weight (Envoy's minimum ring is 1,024 points; 256 × 4 endpoints). */
export const RING_POINTS_PER_WEIGHT = 256;
/** Past this many points the per-weight count shrinks (and keys may move between old endpoints when one is added). */
export const MAX_RING_POINTS = 1 << 20;

/** The weight of an endpoint: the first entry that matches it, else 1. */
export function endpointWeight(endpoint: ClusterEndpoint, weights: readonly EndpointWeight[]): number {
  for (const entry of weights) {
    if (entry.kind === 'labels') {
      let all = true;
      for (const name in entry.labels) {
        if (endpoint.labels[name] !== entry.labels[name]) {
          all = false;
          break;
        }
      }
      if (all) return entry.weight;
    } else if (entry.address === endpoint.address && (entry.port === null || entry.port === endpoint.port)) {
      return entry.weight;
    }
  }
  return 1;
}

export function createBalancer(lb: LoadBalancer, weights: readonly EndpointWeight[], random: () => number): Balancer {
  switch (lb.kind) {
    case 'roundRobin':
      return new RoundRobinBalancer(weights);
    case 'leastRequest':
      return new LeastRequestBalancer(weights, random);
    case 'random':
      return new RandomBalancer(weights, random);
    case 'consistentHash':
      return new RingHashBalancer(weights, lb.key, random);
  }
}

const NONE: readonly ClusterEndpoint[] = [];

/** The weights of a usable list, recomputed when the list changes. */
abstract class WeightedBalancer implements Balancer {
  protected set: readonly ClusterEndpoint[] = NONE;
  protected weights: number[] = [];
  protected totalWeight = 0;
  protected uniform = true;

  constructor(private readonly weightSpecs: readonly EndpointWeight[]) {}

  protected sync(usable: readonly ClusterEndpoint[]): void {
    if (usable === this.set) return;
    this.set = usable;
    const weights = new Array<number>(usable.length);
    let total = 0;
    for (let i = 0; i < usable.length; i++) {
      const weight = this.weightSpecs.length === 0 ? 1 : endpointWeight(usable[i]!, this.weightSpecs);
      weights[i] = weight;
      total += weight;
    }
    this.weights = weights;
    this.totalWeight = total;
    this.uniform = weights.every((w) => w === weights[0]);
    this.rebuild();
  }

  /** Subclasses' own tables for the new set. */
  protected rebuild(): void {}

  abstract pick(usable: readonly ClusterEndpoint[], facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined;
}

/** The index of `exclude` in `usable` when excluding it leaves someone; -1 otherwise. */
function excludedIndex(usable: readonly ClusterEndpoint[], exclude: ClusterEndpoint | undefined): number {
  if (exclude === undefined || usable.length < 2) return -1;
  return usable.indexOf(exclude);
}

class RoundRobinBalancer extends WeightedBalancer {
  private next = 0;
  private current: number[] = [];

  protected override rebuild(): void {
    this.current = new Array<number>(this.set.length).fill(0);
  }

  pick(usable: readonly ClusterEndpoint[], _facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined {
    this.sync(usable);
    const count = usable.length;
    if (count === 0) return undefined;
    const skip = excludedIndex(usable, exclude);
    if (this.uniform) {
      let index = this.next % count;
      this.next = (index + 1) % count;
      if (index === skip) {
        index = this.next;
        this.next = (index + 1) % count;
      }
      return usable[index];
    }
    // nginx's smooth weighted round robin; an excluded endpoint sits this round out.
    const current = this.current;
    const weights = this.weights;
    let total = 0;
    let best = -1;
    for (let i = 0; i < count; i++) {
      if (i === skip) continue;
      current[i]! += weights[i]!;
      total += weights[i]!;
      if (best < 0 || current[i]! > current[best]!) best = i;
    }
    current[best]! -= total;
    return usable[best];
  }
}

class RandomBalancer extends WeightedBalancer {
  private cumulative: number[] = [];

  constructor(
    weights: readonly EndpointWeight[],
    private readonly random: () => number,
  ) {
    super(weights);
  }

  protected override rebuild(): void {
    this.cumulative = cumulativeOf(this.weights);
  }

  pick(usable: readonly ClusterEndpoint[], _facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined {
    this.sync(usable);
    const count = usable.length;
    if (count === 0) return undefined;
    const skip = excludedIndex(usable, exclude);
    if (skip < 0) {
      if (this.uniform) return usable[Math.floor(this.random() * count)];
      return usable[searchCumulative(this.cumulative, this.random() * this.totalWeight)];
    }
    return usable[weightedIndexSkipping(this.weights, this.totalWeight - this.weights[skip]!, skip, this.random())];
  }
}

class LeastRequestBalancer extends WeightedBalancer {
  constructor(
    weights: readonly EndpointWeight[],
    private readonly random: () => number,
  ) {
    super(weights);
  }

  pick(usable: readonly ClusterEndpoint[], _facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined {
    this.sync(usable);
    const count = usable.length;
    if (count === 0) return undefined;
    const skip = excludedIndex(usable, exclude);
    const choices = skip < 0 ? count : count - 1;
    if (choices === 1) return usable[skip === 0 ? 1 : 0];
    if (!this.uniform) return this.pickWeighted(usable, skip);
    // Two distinct draws among the `choices` candidates (indexes past `skip` shift by one).
    const a = Math.floor(this.random() * choices);
    let b = Math.floor(this.random() * (choices - 1));
    if (b >= a) b++;
    const first = usable[skip >= 0 && a >= skip ? a + 1 : a]!;
    const second = usable[skip >= 0 && b >= skip ? b + 1 : b]!;
    return second.activeRequests < first.activeRequests ? second : first;
  }

  /** Envoy's active-request bias (1.0): effective weight = weight / (active + 1). */
  private pickWeighted(usable: readonly ClusterEndpoint[], skip: number): ClusterEndpoint {
    const weights = this.weights;
    let total = 0;
    for (let i = 0; i < usable.length; i++) if (i !== skip) total += weights[i]! / (usable[i]!.activeRequests + 1);
    let target = this.random() * total;
    let last = -1;
    for (let i = 0; i < usable.length; i++) {
      if (i === skip) continue;
      last = i;
      target -= weights[i]! / (usable[i]!.activeRequests + 1);
      if (target < 0) return usable[i]!;
    }
    return usable[last]!;
  }
}

class RingHashBalancer extends WeightedBalancer {
  /** Point hashes, ascending. */
  private points = new Uint32Array(0);
  /** The usable index owning each point. */
  private owners = new Int32Array(0);

  constructor(
    weights: readonly EndpointWeight[],
    private readonly key: ConsistentHashKey,
    private readonly random: () => number,
  ) {
    super(weights);
  }

  protected override rebuild(): void {
    const usable = this.set;
    const perWeight = Math.max(1, Math.min(RING_POINTS_PER_WEIGHT, Math.floor(MAX_RING_POINTS / Math.max(1, this.totalWeight))));
    const hashes: number[] = [];
    const owners: number[] = [];
    for (let i = 0; i < usable.length; i++) {
      const key = usable[i]!.key;
      const count = this.weights[i]! * perWeight;
      for (let j = 0; j < count; j++) {
        hashes.push(hashString(`${key}_${j}`));
        owners.push(i);
      }
    }
    // Equal hashes (rare) are ordered by endpoint key so every proxy builds the same ring.
    const order = hashes.map((_, i) => i);
    order.sort((x, y) => hashes[x]! - hashes[y]! || compareKeys(usable[owners[x]!]!.key, usable[owners[y]!]!.key));
    this.points = Uint32Array.from(order, (i) => hashes[i]!);
    this.owners = Int32Array.from(order, (i) => owners[i]!);
  }

  pick(usable: readonly ClusterEndpoint[], facts: RequestFacts | undefined, exclude: ClusterEndpoint | undefined): ClusterEndpoint | undefined {
    this.sync(usable);
    const size = this.points.length;
    if (size === 0) return undefined;
    const value = facts === undefined ? undefined : hashKeyOf(this.key, facts);
    let at = value === undefined ? Math.floor(this.random() * size) : ringIndex(this.points, hashString(value));
    const skip = excludedIndex(usable, exclude);
    // A retry walks on to the next endpoint clockwise (as Envoy's ring hash does for hosts it must avoid).
    if (skip >= 0) {
      for (let steps = 0; steps < size && this.owners[at] === skip; steps++) at = (at + 1) % size;
    }
    return usable[this.owners[at]!];
  }
}

function compareKeys(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** The string a request hashes on; undefined when the request lacks it. */
export function hashKeyOf(key: ConsistentHashKey, facts: RequestFacts): string | undefined {
  switch (key.kind) {
    case 'header':
      return facts.header(key.name);
    case 'cookie': {
      const header = facts.header('cookie');
      return header === undefined ? undefined : cookieValue(header, key.name);
    }
    case 'sourceAddress':
      return facts.sourceAddress === '' ? undefined : facts.sourceAddress;
  }
}

/**
 * The value of cookie `name` in a Cookie header ("a=1; b=2"); undefined when
 * absent. HTTP/2 may send several cookie fields: the protocol path joins
 * them with "; " before facts.header('cookie') returns them (RFC 9113 8.2.3).
 */
export function cookieValue(header: string, name: string): string | undefined {
  let start = 0;
  const length = header.length;
  while (start < length) {
    while (start < length && (header.charCodeAt(start) === 32 || header.charCodeAt(start) === 9)) start++;
    let end = header.indexOf(';', start);
    if (end < 0) end = length;
    if (end - start > name.length && header.charCodeAt(start + name.length) === 61 /* = */ && header.startsWith(name, start)) {
      let valueEnd = end;
      while (valueEnd > start + name.length + 1 && header.charCodeAt(valueEnd - 1) === 32) valueEnd--;
      let value = header.slice(start + name.length + 1, valueEnd);
      if (value.length >= 2 && value.charCodeAt(0) === 34 && value.charCodeAt(value.length - 1) === 34) value = value.slice(1, -1);
      return value;
    }
    start = end + 1;
  }
  return undefined;
}

/** 32-bit FNV-1a over UTF-16 code units, finished with murmur3's fmix32 so near-equal strings spread over the ring. */
export function hashString(text: string): number {
  let h = 0x811c9dc5;
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i);
    h = Math.imul(h, 0x01000193);
  }
  h ^= h >>> 16;
  h = Math.imul(h, 0x85ebca6b);
  h ^= h >>> 13;
  h = Math.imul(h, 0xc2b2ae35);
  h ^= h >>> 16;
  return h >>> 0;
}

/** The first point at or after `hash`, wrapping to 0. */
function ringIndex(points: Uint32Array, hash: number): number {
  let low = 0;
  let high = points.length;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (points[mid]! < hash) low = mid + 1;
    else high = mid;
  }
  return low === points.length ? 0 : low;
}

function cumulativeOf(weights: readonly number[]): number[] {
  const sums = new Array<number>(weights.length);
  let total = 0;
  for (let i = 0; i < weights.length; i++) {
    total += weights[i]!;
    sums[i] = total;
  }
  return sums;
}

/** The first index whose cumulative sum exceeds `target`. */
function searchCumulative(sums: readonly number[], target: number): number {
  let low = 0;
  let high = sums.length - 1;
  while (low < high) {
    const mid = (low + high) >>> 1;
    if (sums[mid]! > target) high = mid;
    else low = mid + 1;
  }
  return low;
}

function weightedIndexSkipping(weights: readonly number[], total: number, skip: number, draw: number): number {
  let target = draw * total;
  let last = -1;
  for (let i = 0; i < weights.length; i++) {
    if (i === skip) continue;
    last = i;
    target -= weights[i]!;
    if (target < 0) return i;
  }
  return last;
}
