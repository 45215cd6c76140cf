/**
 * Pushes the current snapshot to every connected proxy and keeps what each
 * one said about it. One serialisation per snapshot, shared by every stream
 * (1,000 proxies cost one JSON.stringify, not 1,000), and encoded to bytes
 * once: writing a string makes the socket encode it again for every stream,
 * which at 1,000 proxies and 100 KB snapshots was a fifth of the control
 * plane's CPU per apply (bench:control-plane profile). A slow stream is never
 * buffered without bound: while its socket is full nothing more is written
 * to it, and when it drains it gets the snapshot current at that moment
 * (snapshots supersede each other).
 */
import { canonicalJson } from '../config/config-version.js';
import { createHash } from 'node:crypto';
import type { AckRequest } from './protocol.js';

/** One proxy's stream as the distributor sees it (the HTTP response, in the server). */
export interface StreamSink {
  /** Writes one line (UTF-8, newline included; shared by every stream: never modified); false when the peer is not reading fast enough (then wait for onDrain). */
  write(line: Buffer): boolean;
  onDrain(callback: () => void): void;
  close(): void;
}

export type ProxySyncState = 'connected' | 'acked' | 'nacked' | 'disconnected';

export interface ProxySyncStatus {
  readonly proxy: string;
  readonly connected: boolean;
  /** Last version sent on the current (or last) stream; '' before any. */
  readonly sentVersion: string;
  readonly ackedVersion: string;
  readonly nackedVersion: string;
  readonly nackError: string;
  /** acked: ACKed the version current now; nacked: NACKed it; connected: not answered yet. */
  readonly state: ProxySyncState;
  readonly lastAckMs: number;
}

interface ProxyEntry {
  proxy: string;
  sink: StreamSink | undefined;
  /** It attached serving no configuration at all: nothing it has can be lost, so it is not held back. */
  servesNothing: boolean;
  blocked: boolean;
  owesLatest: boolean;
  sentVersion: string;
  ackedVersion: string;
  nackedVersion: string;
  nackError: string;
  lastAckMs: number;
  /** When its stream closed; 0 while connected. */
  disconnectedAtMs: number;
}

export interface DistributorOptions {
  readonly pingIntervalMs: number;
  /** Proxies remembered after they disconnect (for `tracemesh proxies`), oldest forgotten first. */
  readonly maxProxies: number;
  /**
   * A proxy disconnected for longer than this is forgotten: a restarted
   * sidecar comes back under a new id, and `tracemesh proxies` should show
   * recent departures, not every pod that ever ran.
   */
  readonly forgetDisconnectedMs: number;
  readonly now: () => number;
}

const PING_LINE = Buffer.from('{"type":"ping"}\n');

/** The version of a set of documents: a short hash of their canonical JSON. */
export function snapshotVersion(documents: readonly unknown[]): string {
  return createHash('sha256').update(canonicalJson(documents)).digest('hex').slice(0, 12);
}

export class Distributor {
  private readonly proxies = new Map<string, ProxyEntry>();
  private version = '';
  private nonce = '';
  private line: Buffer = Buffer.alloc(0);
  private publishes = 0;
  private holding = false;
  private readonly ackListeners = new Set<(proxy: string) => void>();
  private readonly pingTimer: NodeJS.Timeout;

  constructor(private readonly options: DistributorOptions) {
    this.pingTimer = setInterval(() => this.ping(), options.pingIntervalMs);
    this.pingTimer.unref();
  }

  get currentVersion(): string {
    return this.version;
  }

  /** Makes `documents` the current snapshot and sends it to every connected proxy; a no-op when nothing changed. */
  publish(documents: readonly unknown[]): string {
    const version = snapshotVersion(documents);
    if (version === this.version) return version;
    this.publishes++;
    this.version = version;
    this.nonce = `${version}-${this.publishes}`;
    this.line = Buffer.from(`{"type":"config","version":${JSON.stringify(version)},"nonce":${JSON.stringify(this.nonce)},"documents":${JSON.stringify(documents)}}\n`);
    for (const entry of this.proxies.values()) this.send(entry);
    return version;
  }

  /**
   * Until release(), snapshots go only to proxies that serve nothing yet.
   * A control plane that has just started knows no registrations: its first
   * snapshots lack the endpoints of every workload that has not registered
   * again yet, and pushing them would take working endpoints away from
   * proxies that still have them. Held proxies keep serving what they have.
   */
  hold(): void {
    this.holding = true;
  }

  /** Ends hold(): every connected proxy gets the current snapshot. */
  release(): void {
    if (!this.holding) return;
    this.holding = false;
    for (const entry of this.proxies.values()) this.send(entry);
  }

  get held(): boolean {
    return this.holding;
  }

  /**
   * A proxy opened its stream; an older stream of the same proxy is closed.
   * `servingVersion` is the version it serves now ('' for none). Returns the detach function.
   */
  attach(proxy: string, sink: StreamSink, servingVersion = ''): () => void {
    let entry = this.proxies.get(proxy);
    if (entry === undefined) {
      entry = { proxy, sink: undefined, servesNothing: true, blocked: false, owesLatest: false, sentVersion: '', ackedVersion: '', nackedVersion: '', nackError: '', lastAckMs: 0, disconnectedAtMs: 0 };
      this.remember(entry);
    } else if (entry.sink !== undefined && entry.sink !== sink) {
      entry.sink.close();
    }
    entry.sink = sink;
    entry.disconnectedAtMs = 0;
    entry.servesNothing = servingVersion === '';
    entry.blocked = false;
    const current = entry;
    sink.onDrain(() => {
      if (current.sink !== sink) return;
      current.blocked = false;
      if (current.owesLatest) this.send(current);
    });
    if (this.version !== '') this.send(entry);
    return () => {
      if (current.sink !== sink) return;
      current.sink = undefined;
      current.disconnectedAtMs = this.options.now();
    };
  }

  /** Records an ACK or NACK. False when it is stale (not for the snapshot last sent) or from an unknown proxy. */
  ack(request: AckRequest): boolean {
    const entry = this.proxies.get(request.proxy);
    if (entry === undefined || request.nonce !== this.nonce) return false;
    entry.lastAckMs = this.options.now();
    if (request.status === 'ACK') {
      entry.ackedVersion = request.version;
      entry.nackedVersion = '';
      entry.nackError = '';
    } else {
      entry.nackedVersion = request.version;
      entry.nackError = request.error ?? '';
    }
    for (const listener of this.ackListeners) listener(request.proxy);
    return true;
  }

  /** Called after every accepted ACK or NACK (benchmarks and tests wait on it). */
  onAck(listener: (proxy: string) => void): () => void {
    this.ackListeners.add(listener);
    return () => this.ackListeners.delete(listener);
  }

  status(): ProxySyncStatus[] {
    this.forgetLongGone();
    return [...this.proxies.values()].map((e) => ({
      proxy: e.proxy,
      connected: e.sink !== undefined,
      sentVersion: e.sentVersion,
      ackedVersion: e.ackedVersion,
      nackedVersion: e.nackedVersion,
      nackError: e.nackError,
      state: e.sink === undefined ? 'disconnected' : e.ackedVersion === this.version ? 'acked' : e.nackedVersion === this.version ? 'nacked' : 'connected',
      lastAckMs: e.lastAckMs,
    }));
  }

  close(): void {
    clearInterval(this.pingTimer);
    for (const entry of this.proxies.values()) {
      entry.sink?.close();
      entry.sink = undefined;
    }
  }

  private send(entry: ProxyEntry): void {
    const sink = entry.sink;
    if (sink === undefined || this.version === '' || (this.holding && !entry.servesNothing)) return;
    if (entry.blocked) {
      entry.owesLatest = true;
      return;
    }
    entry.owesLatest = false;
    entry.sentVersion = this.version;
    if (!sink.write(this.line)) entry.blocked = true;
  }

  private forgetLongGone(): void {
    const cutoff = this.options.now() - this.options.forgetDisconnectedMs;
    for (const [id, entry] of this.proxies) {
      if (entry.sink === undefined && entry.disconnectedAtMs > 0 && entry.disconnectedAtMs < cutoff) this.proxies.delete(id);
    }
  }

  private ping(): void {
    this.forgetLongGone();
    for (const entry of this.proxies.values()) {
      if (entry.sink !== undefined && !entry.blocked && !entry.sink.write(PING_LINE)) entry.blocked = true;
    }
  }

  private remember(entry: ProxyEntry): void {
    if (this.proxies.size >= this.options.maxProxies) {
      for (const [id, old] of this.proxies) {
        if (old.sink === undefined) {
          this.proxies.delete(id);
          break;
        }
      }
    }
    this.proxies.set(entry.proxy, entry);
  }
}
