/**
 * Upstream HTTP/2 (h2c prior knowledge) sessions: one per endpoint, shared by
 * every stream to that endpoint (multiplexing is the point of HTTP/2, and one
 * connection per endpoint is what gRPC clients expect of a peer). A session
 * that fails, closes or receives GOAWAY is dropped from the pool at once, so
 * the next stream opens a fresh one; its streams in flight finish or fail on
 * their own. A session counts as connected when the upstream's SETTINGS
 * arrive: before that a failure is a connect failure (UF), after it a
 * termination (UC). Idle sessions are closed after upstreamIdleTimeoutMs.
 *
 * Sessions are keyed by destination, endpoint and source:
 * - destination: a session opened within a destination's limits counts
 *   against that destination's maxConnections until it closes, so only that
 *   destination's streams may ride on it; another destination (a subset, a
 *   route's other target) with the same endpoint opens and counts its own.
 *   Sessions opened without limits (no traffic management) share the name ''.
 * - source: under TPROXY the connector opens connections from the
 *   downstream client's address (`connector.sourceKey(target, client)`), and
 *   a session from one client's address must never carry another client's
 *   streams. sourceKey is '' when connections come from the proxy's own
 *   address (explicit, REDIRECT): then every client shares the session.
 */
import { connect, type ClientHttp2Session, type ClientHttp2Stream, type ClientSessionOptions, type Http2Session, type OutgoingHttpHeaders } from 'node:http2';
import type { Duplex } from 'node:stream';
import { TracemeshError } from '../../src/lib/errors.js';
import { upstreamConnector, type UpstreamConnector, type UpstreamTarget } from '../capture/transparent-connect.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import type { ProxyLimits } from '../limits.js';
import type { Destination, DestinationLimits } from '../pipeline/types.js';
import { clientOptions } from './h2-settings.js';

/** What sessionWithin needs of a destination: its name (the session's key) and its limits. */
export type SessionDestination = Pick<Destination, 'name' | 'limits'>;

/** One pooled session as a stream's owner sees it. */
export interface UpstreamSession {
  /** The endpoint, "address:port". */
  readonly key: string;
  /** The upstream's SETTINGS arrived; a failure before that is a connect failure. */
  readonly connected: boolean;
  /** Why the session failed or ended ("connect ECONNREFUSED …", "connect timeout …", "GOAWAY …"); '' while healthy. */
  readonly failure: string;
  /**
   * Opens a stream. With endStream false the request body follows, and the
   * stream emits 'wantTrailers' after its last DATA (send trailers or `{}`).
   * Throws when the session can no longer take streams (node's ERR_HTTP2_*).
   * `pending`: the caller took a maxPendingRequests place because the
   * session is not connected yet; the session gives it back (pendingEnded)
   * once, when its SETTINGS arrive or when this stream closes, whichever
   * comes first (also when this call throws).
   */
  request(headers: OutgoingHttpHeaders, endStream: boolean, pending?: DestinationLimits): ClientHttp2Stream;
}

export interface Http2EndpointStats {
  readonly endpoint: string;
  /** The destination whose maxConnections the session counts against; '' when opened without limits. */
  readonly destination: string;
  /** The client address the connection comes from (TPROXY); '' when from the proxy's own. */
  readonly source: string;
  readonly connected: boolean;
  readonly activeStreams: number;
  readonly streamsOpened: number;
}

/** For the admin page: lifetime counters and the sessions open now. */
export interface Http2PoolStats {
  readonly sessionsOpened: number;
  readonly sessionsClosed: number;
  /** Sessions that ended before the upstream's SETTINGS arrived (refused, unreachable, timed out). */
  readonly connectFailures: number;
  readonly streamsOpened: number;
  readonly sessions: readonly Http2EndpointStats[];
}

export interface Http2SessionPool {
  /**
   * The live session to the endpoint for `client` (the downstream's address;
   * it matters only when the connector keeps client addresses), connecting a
   * new one when there is none. Throws TM_ERR_UPSTREAM once closed, or the
   * connector's error when it cannot even start a connection.
   */
  session(endpoint: ClusterEndpoint, client?: string): UpstreamSession;
  /**
   * As session(), within a destination's limits: a new session needs
   * `limits.tryOpenConnection()` (for HTTP/2, maxConnections counts sessions:
   * one session carries many streams) and is given back with
   * connectionClosed() when it closes; it connects within the limits'
   * connectTimeoutMs when set. Only this destination's streams use the
   * session. Undefined: no live session and none may be opened (→ 503 UO).
   * Throws as session() does.
   */
  sessionWithin(endpoint: ClusterEndpoint, destination: SessionDestination, client?: string): UpstreamSession | undefined;
  stats(): Http2PoolStats;
  /**
   * Sends GOAWAY on every session and resolves when they have closed; sessions
   * whose streams are still running after `graceMs` are destroyed. Safe twice.
   */
  close(graceMs?: number): Promise<void>;
}

const DEFAULT_CLOSE_GRACE_MS = 5_000;

// The pool entry a session's or stream's events belong to; module-level
// listeners read it instead of a closure per session or stream.
const ENTRY = Symbol('tracemesh.h2.upstreamSession');
/** The pending place a stream holds until its session connects. */
const PENDING = Symbol('tracemesh.h2.pending');
type Tagged<T> = T & { [ENTRY]?: PooledSession; [PENDING]?: DestinationLimits };

class PooledSession implements UpstreamSession {
  readonly session: ClientHttp2Session;
  connected = false;
  failure = '';
  activeStreams = 0;
  streamsOpened = 0;
  closed = false;
  /** Streams opened before the session connected that hold a pending place. */
  private readonly waiting = new Set<ClientHttp2Stream>();
  private readonly connectTimer: NodeJS.Timeout;
  private readonly idleTimer: NodeJS.Timeout;

  constructor(
    readonly pool: SessionPool,
    /** The pool's key: destination, endpoint and source. */
    readonly poolKey: string,
    /** The endpoint, "address:port". */
    readonly key: string,
    /** The destination whose maxConnections this session counts against ('' and undefined: no limits). */
    readonly destinationName: string,
    private readonly destinationLimits: DestinationLimits | undefined,
    readonly connectTimeoutMs: number,
    /** The client address the connection comes from; '' for the proxy's own. */
    readonly source: string,
    options: ClientSessionOptions,
  ) {
    const limits = pool.limits;
    this.session = connect(`http://${key}`, options);
    (this.session as Tagged<ClientHttp2Session>)[ENTRY] = this;
    this.session.once('remoteSettings', onSessionSettings);
    this.session.on('error', onSessionError);
    this.session.on('goaway', onSessionGoaway);
    this.session.once('close', onSessionClose);
    this.connectTimer = setTimeout(onConnectTimeout, connectTimeoutMs, this);
    this.connectTimer.unref();
    // Armed now (a session nobody uses is idle) and re-armed each time the last stream ends.
    this.idleTimer = setTimeout(onIdleTimeout, limits.upstreamIdleTimeoutMs, this);
    this.idleTimer.unref();
  }

  request(headers: OutgoingHttpHeaders, endStream: boolean, pending?: DestinationLimits): ClientHttp2Stream {
    let stream: ClientHttp2Stream;
    try {
      stream = this.session.request(headers, { endStream, waitForTrailers: !endStream });
    } catch (err) {
      pending?.pendingEnded();
      throw err;
    }
    (stream as Tagged<ClientHttp2Stream>)[ENTRY] = this;
    if (pending !== undefined) {
      if (this.connected) pending.pendingEnded();
      else {
        (stream as Tagged<ClientHttp2Stream>)[PENDING] = pending;
        this.waiting.add(stream);
      }
    }
    stream.once('close', onStreamClose);
    this.activeStreams++;
    this.streamsOpened++;
    this.pool.streamsOpened++;
    return stream;
  }

  onConnected(): void {
    this.connected = true;
    clearTimeout(this.connectTimer);
    for (const stream of this.waiting) releasePending(stream);
    this.waiting.clear();
  }

  onStreamEnded(stream: ClientHttp2Stream): void {
    if (this.waiting.delete(stream)) releasePending(stream);
    this.activeStreams--;
    if (this.activeStreams === 0 && !this.closed) this.idleTimer.refresh();
  }

  onClosed(): void {
    if (this.closed) return;
    this.closed = true;
    clearTimeout(this.connectTimer);
    clearTimeout(this.idleTimer);
    if (this.failure === '') this.failure = 'upstream session closed';
    this.destinationLimits?.connectionClosed();
    this.pool.forget(this);
  }

  stats(): Http2EndpointStats {
    return {
      endpoint: this.key,
      destination: this.destinationName,
      source: this.source,
      connected: this.connected,
      activeStreams: this.activeStreams,
      streamsOpened: this.streamsOpened,
    };
  }
}

function entryOf(emitter: object): PooledSession | undefined {
  return (emitter as Tagged<object>)[ENTRY];
}

function onSessionSettings(this: ClientHttp2Session): void {
  entryOf(this)?.onConnected();
}

function onSessionError(this: ClientHttp2Session, err: Error): void {
  const entry = entryOf(this);
  if (entry !== undefined && entry.failure === '') entry.failure = err.message;
}

function onSessionGoaway(this: ClientHttp2Session, errorCode: number): void {
  const entry = entryOf(this);
  if (entry === undefined) return;
  if (entry.failure === '') entry.failure = `upstream sent GOAWAY (code ${errorCode})`;
  // No new streams go to a session that is going away.
  entry.pool.forget(entry);
}

function onSessionClose(this: ClientHttp2Session): void {
  entryOf(this)?.onClosed();
}

function onStreamClose(this: ClientHttp2Stream): void {
  entryOf(this)?.onStreamEnded(this);
}

function releasePending(stream: ClientHttp2Stream): void {
  const tagged = stream as Tagged<ClientHttp2Stream>;
  const pending = tagged[PENDING];
  tagged[PENDING] = undefined;
  pending?.pendingEnded();
}

function onConnectTimeout(entry: PooledSession): void {
  if (entry.connected || entry.session.destroyed) return;
  const ms = entry.connectTimeoutMs;
  entry.failure = `connect timeout after ${ms} ms to ${entry.key}`;
  entry.session.destroy(new TracemeshError('TM_ERR_UPSTREAM', entry.failure));
}

function onIdleTimeout(entry: PooledSession): void {
  if (entry.activeStreams === 0 && !entry.closed) {
    entry.pool.forget(entry);
    entry.session.close();
  }
}

class SessionPool implements Http2SessionPool {
  readonly options: ReturnType<typeof clientOptions>;
  private readonly live = new Map<string, PooledSession>();
  /** Every session not yet closed, including those dropped from `live` (going away, idle-closing). */
  private readonly open = new Set<PooledSession>();
  private closing: Promise<void> | undefined;
  sessionsOpened = 0;
  sessionsClosed = 0;
  connectFailures = 0;
  streamsOpened = 0;

  constructor(
    readonly limits: ProxyLimits,
    readonly connector: UpstreamConnector,
  ) {
    this.options = clientOptions(limits);
  }

  session(endpoint: ClusterEndpoint, client?: string): UpstreamSession {
    const source = this.sourceOf(endpoint, client);
    const poolKey = `|${endpoint.key}|${source}`;
    const existing = this.live.get(poolKey);
    if (existing !== undefined && !existing.session.closed && !existing.session.destroyed) return existing;
    if (this.closing !== undefined) throw new TracemeshError('TM_ERR_UPSTREAM', 'the HTTP/2 session pool is closed');
    return this.openSession(poolKey, endpoint, '', undefined, this.limits.connectTimeoutMs, source);
  }

  sessionWithin(endpoint: ClusterEndpoint, destination: SessionDestination, client?: string): UpstreamSession | undefined {
    const source = this.sourceOf(endpoint, client);
    const poolKey = `${destination.name}|${endpoint.key}|${source}`;
    const existing = this.live.get(poolKey);
    if (existing !== undefined && !existing.session.closed && !existing.session.destroyed) return existing;
    if (this.closing !== undefined) throw new TracemeshError('TM_ERR_UPSTREAM', 'the HTTP/2 session pool is closed');
    const limits = destination.limits;
    if (!limits.tryOpenConnection()) return undefined;
    try {
      return this.openSession(poolKey, endpoint, destination.name, limits, limits.connectTimeoutMs ?? this.limits.connectTimeoutMs, source);
    } catch (err) {
      limits.connectionClosed();
      throw err;
    }
  }

  private sourceOf(endpoint: ClusterEndpoint, client: string | undefined): string {
    return this.connector.keepsClientAddress ? this.connector.sourceKey({ host: endpoint.address, port: endpoint.port }, client) : '';
  }

  private openSession(
    poolKey: string,
    endpoint: ClusterEndpoint,
    destinationName: string,
    limits: DestinationLimits | undefined,
    connectTimeoutMs: number,
    source: string,
  ): PooledSession {
    // From the client's address: the connector makes the socket. One closure per session, not per stream.
    const options: ClientSessionOptions =
      source === ''
        ? this.options
        : { ...this.options, createConnection: connectionFrom(this.connector, { host: endpoint.address, port: endpoint.port }, source) };
    const entry = new PooledSession(this, poolKey, endpoint.key, destinationName, limits, connectTimeoutMs, source, options);
    this.live.set(poolKey, entry);
    this.open.add(entry);
    this.sessionsOpened++;
    return entry;
  }

  /** Drops a session from reuse; when it has closed, from the books too. */
  forget(entry: PooledSession): void {
    if (this.live.get(entry.poolKey) === entry) this.live.delete(entry.poolKey);
    if (entry.closed && this.open.delete(entry)) {
      this.sessionsClosed++;
      if (!entry.connected) this.connectFailures++;
    }
  }

  stats(): Http2PoolStats {
    const sessions: Http2EndpointStats[] = [];
    for (const entry of this.open) sessions.push(entry.stats());
    return {
      sessionsOpened: this.sessionsOpened,
      sessionsClosed: this.sessionsClosed,
      connectFailures: this.connectFailures,
      streamsOpened: this.streamsOpened,
      sessions,
    };
  }

  close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    if (this.closing === undefined) this.closing = this.closeAll(graceMs);
    return this.closing;
  }

  private async closeAll(graceMs: number): Promise<void> {
    const waits: Promise<void>[] = [];
    for (const entry of this.open) {
      this.live.delete(entry.poolKey);
      waits.push(closeSession(entry.session, graceMs));
    }
    await Promise.all(waits);
  }
}

/** GOAWAY, wait for the streams to finish, destroy after graceMs. */
export function closeSession(session: Http2Session, graceMs: number): Promise<void> {
  if (session.destroyed) return Promise.resolve();
  return new Promise((resolve) => {
    const timer = setTimeout(() => session.destroy(), graceMs);
    timer.unref();
    session.once('close', () => {
      clearTimeout(timer);
      resolve();
    });
    session.close();
  });
}

/** node:http2's createConnection for a session whose connection comes from `source` (a client's address). */
function connectionFrom(connector: UpstreamConnector, target: UpstreamTarget, source: string): () => Duplex {
  return () => connector.connect(target, source);
}

const PROXY_OWN_ADDRESS = upstreamConnector('explicit');

/**
 * `connector`: how sessions connect (default: from the proxy's own address,
 * as net.connect). Under TPROXY the inbound side passes
 * upstreamConnector('tproxy', { mark }) so the app sees each client's address.
 */
export function createHttp2SessionPool(limits: ProxyLimits, connector: UpstreamConnector = PROXY_OWN_ADDRESS): Http2SessionPool {
  return new SessionPool(limits, connector);
}
