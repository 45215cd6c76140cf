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
 *
 * Deltas (protocol.ts): a stream starts with the whole snapshot; after that
 * each proxy gets what changed since the version last sent on its stream.
 * Proxies share bases (usually every one has the previous version), so a
 * delta line is made once per base and version and shared like the
 * snapshot line. The documents of the last HISTORY versions are kept, by
 * key, to diff against; a stream whose base is older than that, a NACKed
 * delta, or a delta no smaller than the snapshot gets the whole snapshot.
 */
import { compareDeltaKeys, diffSnapshots, indexSnapshot, keyOfDocument, snapshotVersion, type DeltaKey } from './delta.js';
import type { AckRequest } from './protocol.js';

export { snapshotVersion } from './delta.js';

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
  /** The version last written to the current stream ('' before its first snapshot): the base of the next delta. */
  streamVersion: string;
  /** The nonce of the line last written to the current stream. */
  sentNonce: string;
  /** It NACKed a delta: the next line is the whole snapshot. */
  fullNext: boolean;
}

type SnapshotIndex = Map<string, { key: DeltaKey; json: string }>;

/** Versions whose documents are kept to make deltas from. */
const HISTORY = 16;

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

/** Key order (delta.ts), when every document has a key: the order a proxy rebuilds after a delta. */
function inKeyOrder(documents: readonly unknown[]): readonly unknown[] {
  const keyed = documents.map((document) => ({ key: keyOfDocument(document), document }));
  if (keyed.some((k) => k.key === undefined)) return documents;
  return keyed.sort((a, b) => compareDeltaKeys(a.key as DeltaKey, b.key as DeltaKey)).map((k) => k.document);
}

export class Distributor {
  private readonly proxies = new Map<string, ProxyEntry>();
  private version = '';
  private nonce = '';
  /** The nonce of deltas to the current version: ACKs carry either. */
  private deltaNonce = '';
  private line: Buffer = Buffer.alloc(0);
  /** The current version's documents by key; undefined when they cannot be diffed (then only whole snapshots go out). */
  private index: SnapshotIndex | undefined;
  /** Recent versions' indexes, oldest first (insertion order). */
  private readonly history = new Map<string, SnapshotIndex>();
  /** Delta lines to the current version, by base version (made on first use). */
  private deltaLines = new Map<string, Buffer | null>();
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
  publish(given: readonly unknown[]): string {
    const documents = inKeyOrder(given);
    const version = snapshotVersion(documents);
    if (version === this.version) return version;
    this.publishes++;
    this.version = version;
    this.nonce = `${version}-${this.publishes}`;
    this.deltaNonce = `${this.nonce}-delta`;
    this.index = indexSnapshot(documents);
    const body = this.index === undefined ? JSON.stringify(documents) : `[${[...this.index.values()].map((e) => e.json).join(',')}]`;
    this.line = Buffer.from(`{"type":"config","version":${JSON.stringify(version)},"nonce":${JSON.stringify(this.nonce)},"documents":${body}}\n`);
    this.deltaLines = new Map();
    if (this.index !== undefined) {
      this.history.delete(version);
      this.history.set(version, this.index);
      if (this.history.size > HISTORY) this.history.delete(this.history.keys().next().value as string);
    }
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
      entry = {
        proxy,
        sink: undefined,
        servesNothing: true,
        blocked: false,
        owesLatest: false,
        sentVersion: '',
        ackedVersion: '',
        nackedVersion: '',
        nackError: '',
        lastAckMs: 0,
        disconnectedAtMs: 0,
        streamVersion: '',
        sentNonce: '',
        fullNext: false,
      };
      this.remember(entry);
    } else if (entry.sink !== undefined && entry.sink !== sink) {
      entry.sink.close();
    }
    entry.sink = sink;
    entry.disconnectedAtMs = 0;
    entry.servesNothing = servingVersion === '';
    entry.blocked = false;
    // A new stream starts from the whole snapshot, whatever the proxy had before.
    entry.streamVersion = '';
    entry.sentNonce = '';
    entry.fullNext = false;
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
    if (entry === undefined || (request.nonce !== this.nonce && request.nonce !== this.deltaNonce)) return false;
    entry.lastAckMs = this.options.now();
    if (request.status === 'NACK' && request.nonce === this.deltaNonce && entry.sentNonce === this.deltaNonce) {
      // It could not use the delta (another base, a result that is not the version): the whole snapshot, now.
      entry.fullNext = true;
      this.send(entry);
    } else if (request.status === 'ACK') {
      entry.ackedVersion = request.version;
      entry.nackedVersion = '';
      entry.nackError = '';
    } else {
      entry.nackedVersion = request.version;
      entry.nackError = request.error ?? '';
      // It kept what it had before, which this stream may never have sent: no delta can start from it.
      if (request.nonce === this.nonce && entry.sentNonce === this.nonce) entry.streamVersion = '';
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
    if (!entry.fullNext && entry.streamVersion === this.version) return; // it has this one already
    entry.owesLatest = false;
    const delta = entry.fullNext || entry.streamVersion === '' ? undefined : this.deltaLine(entry.streamVersion);
    entry.fullNext = false;
    entry.sentVersion = this.version;
    entry.streamVersion = this.version;
    entry.sentNonce = delta === undefined ? this.nonce : this.deltaNonce;
    if (!sink.write(delta ?? this.line)) entry.blocked = true;
  }

  /** The delta line from `base` to the current version; undefined when the whole snapshot should go instead. */
  private deltaLine(base: string): Buffer | undefined {
    let line = this.deltaLines.get(base);
    if (line === undefined) {
      const from = this.history.get(base);
      line = null;
      if (from !== undefined && this.index !== undefined) {
        const diff = diffSnapshots(from, this.index);
        const text = `{"type":"delta","version":${JSON.stringify(this.version)},"nonce":${JSON.stringify(this.deltaNonce)},"base":${JSON.stringify(base)},"put":${diff.put},"remove":${diff.remove}}\n`;
        // A delta as large as the snapshot saves nothing and costs the proxy a merge.
        if (Buffer.byteLength(text) < this.line.length) line = Buffer.from(text);
      }
      this.deltaLines.set(base, line);
    }
    return line ?? undefined;
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
