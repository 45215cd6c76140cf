import type { Attribute, SpanRecord } from '../model.js';
import type { EdgeCall } from './edge-call.js';

export interface ServiceGraphOptions {
  /** How long a half of a call waits for its other half. Proxies batch spans for seconds, so tens of seconds. */
  waitMs: number;
  /** Bound on waiting halves (clients and servers each); past it the oldest is settled early. */
  maxPending: number;
  now?: () => number;
}

export const DEFAULT_SERVICE_GRAPH_OPTIONS: ServiceGraphOptions = { waitMs: 15_000, maxPending: 200_000 };

interface PendingHalf {
  arrivedMs: number;
  service: string;
  startUnixNano: bigint;
  durationNanos: number;
  failed: boolean;
  /** For a client half: the virtual peer (peer.service, db.system, db.name) if the span names one. */
  peer: string;
}

export interface ServiceGraphStats {
  paired: number;
  entry: number;
  virtual: number;
  /** Halves that never met their other half and name no virtual peer. */
  unpaired: number;
  /** Halves settled before their wait was up because the bound was reached. */
  evictedEarly: number;
}

const PEER_ATTRIBUTES: readonly string[] = ['peer.service', 'db.system', 'db.name'];

function peerOf(attributes: readonly Attribute[]): string {
  for (const name of PEER_ATTRIBUTES) {
    for (const attribute of attributes) {
      if (attribute.key === name && attribute.value !== '') return attribute.value;
    }
  }
  return '';
}

function halfOf(span: SpanRecord, arrivedMs: number, peer: string): PendingHalf {
  return {
    arrivedMs,
    service: span.resource.serviceName,
    startUnixNano: span.startTimeUnixNano,
    durationNanos: Number(span.endTimeUnixNano - span.startTimeUnixNano),
    failed: span.statusCode === 'Error',
    peer,
  };
}

function pairedCall(client: PendingHalf, server: PendingHalf): EdgeCall {
  return {
    timeUnixNano: client.startUnixNano,
    client: client.service,
    server: server.service,
    connectionType: '',
    clientDurationNanos: client.durationNanos,
    serverDurationNanos: server.durationNanos,
    failed: client.failed || server.failed,
  };
}

/**
 * Pairs each CLIENT span with the SERVER span whose parent it is (same trace)
 * into one call on the edge client service → server service. Spans of one call
 * come from two proxies and arrive seconds apart, in either order, so each half
 * waits in a bounded map keyed by (trace id, client span id). A SERVER span with
 * no parent is an entry call from the virtual `user` node; a CLIENT span that
 * waited in vain but names its peer (peer.service, db.system, db.name) is a call
 * to that virtual node. Map iteration order is arrival order, so expiry walks
 * from the front and stops at the first half still within its wait.
 *
 * Pairing needs both halves of a call at one collector: with several
 * collectors, export by trace id (as for Tempo's or the OTel Collector's graph).
 */
export class ServiceGraph {
  readonly stats: ServiceGraphStats = { paired: 0, entry: 0, virtual: 0, unpaired: 0, evictedEarly: 0 };
  readonly #options: ServiceGraphOptions;
  readonly #now: () => number;
  readonly #clients = new Map<string, PendingHalf>();
  readonly #servers = new Map<string, PendingHalf>();

  constructor(options: ServiceGraphOptions = DEFAULT_SERVICE_GRAPH_OPTIONS) {
    this.#options = options;
    this.#now = options.now ?? Date.now;
  }

  get pending(): number {
    return this.#clients.size + this.#servers.size;
  }

  /** Feeds one span; pushes the calls it completes onto `out`. */
  add(span: SpanRecord, out: EdgeCall[]): void {
    if (span.kind === 'Server') {
      if (span.parentSpanId === '') {
        const half = halfOf(span, 0, '');
        this.stats.entry++;
        out.push({
          timeUnixNano: half.startUnixNano,
          client: 'user',
          server: half.service,
          connectionType: 'user',
          clientDurationNanos: half.durationNanos,
          serverDurationNanos: half.durationNanos,
          failed: half.failed,
        });
        return;
      }
      const key = span.traceId + span.parentSpanId;
      const server = halfOf(span, this.#now(), '');
      const client = this.#clients.get(key);
      if (client !== undefined) {
        this.#clients.delete(key);
        this.stats.paired++;
        out.push(pairedCall(client, server));
        return;
      }
      this.#admit(this.#servers, key, server, out);
      return;
    }
    if (span.kind === 'Client') {
      const key = span.traceId + span.spanId;
      const client = halfOf(span, this.#now(), peerOf(span.attributes));
      const server = this.#servers.get(key);
      if (server !== undefined) {
        this.#servers.delete(key);
        this.stats.paired++;
        out.push(pairedCall(client, server));
        return;
      }
      this.#admit(this.#clients, key, client, out);
    }
  }

  /** Settles every half whose wait is over; pushes the virtual calls that gives onto `out`. */
  expire(out: EdgeCall[]): void {
    const deadline = this.#now() - this.#options.waitMs;
    this.#expireFrom(this.#clients, deadline, out);
    this.#expireFrom(this.#servers, deadline, out);
  }

  /** Settles everything (at shutdown). */
  drain(out: EdgeCall[]): void {
    this.#expireFrom(this.#clients, Number.POSITIVE_INFINITY, out);
    this.#expireFrom(this.#servers, Number.POSITIVE_INFINITY, out);
  }

  #admit(map: Map<string, PendingHalf>, key: string, half: PendingHalf, out: EdgeCall[]): void {
    if (map.size >= this.#options.maxPending) {
      const oldest = map.keys().next();
      if (!oldest.done) {
        const evicted = map.get(oldest.value) as PendingHalf;
        map.delete(oldest.value);
        this.stats.evictedEarly++;
        this.#settle(map === this.#clients, evicted, out);
      }
    }
    map.set(key, half);
  }

  #expireFrom(map: Map<string, PendingHalf>, deadline: number, out: EdgeCall[]): void {
    const isClient = map === this.#clients;
    for (const [key, half] of map) {
      if (half.arrivedMs > deadline) break;
      map.delete(key);
      this.#settle(isClient, half, out);
    }
  }

  #settle(isClient: boolean, half: PendingHalf, out: EdgeCall[]): void {
    if (isClient && half.peer !== '') {
      this.stats.virtual++;
      out.push({
        timeUnixNano: half.startUnixNano,
        client: half.service,
        server: half.peer,
        connectionType: 'virtual',
        clientDurationNanos: half.durationNanos,
        serverDurationNanos: half.durationNanos,
        failed: half.failed,
      });
      return;
    }
    this.stats.unpaired++;
  }
}
