/**
 * Keep-alive connections to upstream endpoints, one pool per proxy per
 * direction. Idle connections are reused last-in first-out (the warmest
 * socket, and the cold ones age out), bounded per endpoint, closed after
 * the idle timeout or just before the server's own keep-alive timeout
 * (`Keep-Alive: timeout=N`), so the proxy rarely sends on a connection the
 * server is closing. Socket events go to whichever exchange holds the
 * connection; an idle connection that hears anything is closed.
 *
 * Traffic management: a request to a destination with connection-pool limits
 * (DestinationLimits) opens a connection only when the destination is under
 * maxConnections (idle ones of its other endpoints are closed first to make
 * room); otherwise it waits as a pending request (maxPendingRequests) for a
 * connection to be released or closed, at most the connect timeout. Without
 * limits (inbound, or no policy) nothing of this runs.
 *
 * Source address: with a connector that keeps client addresses (TPROXY,
 * proxy/capture/transparent-connect.ts), a connection is opened from the
 * downstream client's address, and pooled under `endpoint.key|source`, so
 * one client's connection never carries another client's requests. A
 * connector whose sourceKey is '' (explicit, REDIRECT) pools by endpoint
 * alone, as without one.
 */
import { connect, Socket, type OnReadOpts } from 'node:net';
import { TracemeshError } from '../../src/lib/errors.js';
import type { UpstreamConnector } from '../capture/transparent-connect.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import type { ProxyLimits } from '../limits.js';
import type { DestinationLimits } from '../pipeline/types.js';
import { DeadlineSweeper, sweepPeriodMs } from './deadlines.js';

/** The exchange holding a connection receives its socket's events. */
export interface UpstreamClient {
  /**
   * `chunk` lives in the connection's read buffer: valid until this returns.
   * A client that leaves a slice of it queued in a write calls conn.lendReadBuffer().
   */
  onUpstreamData(conn: UpstreamConnection, chunk: Buffer): void;
  /** The server sent FIN. */
  onUpstreamEnd(conn: UpstreamConnection): void;
  /** The socket closed; `err` says why when it failed (refused, reset, connect timeout). */
  onUpstreamClose(conn: UpstreamConnection, err: Error | undefined): void;
  onUpstreamDrain(conn: UpstreamConnection): void;
  /** A pending request (see Http1UpstreamPool.wait) got its connection. */
  onUpstreamReady(conn: UpstreamConnection): void;
  /** A pending request waited `waitedMs` without a connection: answer 503 UO. */
  onUpstreamWaitExpired(waitedMs: number): void;
}

export interface Http1PoolEndpointStats {
  endpoint: string;
  open: number;
  idle: number;
  inUse: number;
}

export interface Http1PoolStats {
  /** Every socket: connecting, in use or idle. */
  open: number;
  idle: number;
  inUse: number;
  endpoints: Http1PoolEndpointStats[];
}

export interface Http1UpstreamPool {
  /**
   * An idle connection to the endpoint (most recently used first), or a new
   * one. With `limits`, undefined when the destination is at maxConnections:
   * the caller then waits (`wait`) or gives up. `clientAddress` is the
   * downstream client's: with a connector that keeps it, the connection
   * comes from it and is pooled for that client only.
   */
  acquire(endpoint: ClusterEndpoint, client: UpstreamClient, limits?: DestinationLimits, clientAddress?: string): UpstreamConnection | undefined;
  /** Always a new connection (the retry after a reused one turned out closed); undefined as for acquire. */
  connectFresh(endpoint: ClusterEndpoint, client: UpstreamClient, limits?: DestinationLimits, clientAddress?: string): UpstreamConnection | undefined;
  /**
   * Queues a request for a connection to the endpoint (maxPendingRequests):
   * false when the queue is full (→ 503 UO). Otherwise the client hears
   * onUpstreamReady, or onUpstreamWaitExpired after `timeoutMs`.
   */
  wait(endpoint: ClusterEndpoint, client: UpstreamClient, limits: DestinationLimits, timeoutMs: number, clientAddress?: string): boolean;
  /** The waiting client left (its downstream went away). */
  cancelWait(client: UpstreamClient): void;
  /** The exchange is done and the connection can carry another request. */
  release(conn: UpstreamConnection): void;
  /**
   * The connection cannot be reused: close it without telling its client.
   * `graceful` flushes what was written first (a tunnel's last bytes) instead of resetting.
   */
  discard(conn: UpstreamConnection, graceful?: boolean): void;
  stats(): Http1PoolStats;
  /**
   * The coarse timer of this proxy direction's HTTP/1 path: downstream
   * connections register their deadlines (head, idle, stream idle, linger,
   * response) here. It lives on the pool because the pool is the one object
   * each direction already builds once and closes at shutdown.
   */
  readonly deadlines: DeadlineSweeper;
  /** Closes idle connections and stops the sweeps; in-use ones end with their exchanges. Safe twice. */
  close(): void;
}

const S_CONNECTING = 0;
const S_IN_USE = 1;
const S_IDLE = 2;
const S_DISCARDED = 3;
const S_CLOSED = 4;

/** Stop reusing a connection this long before the server's advertised keep-alive timeout. */
const KEEP_ALIVE_MARGIN_MS = 1000;

/** What one read can deliver. Pages of the buffer that reads never reach are never touched, so they cost no RSS. */
const READ_BUFFER_BYTES = 64 * 1024;

const CONN = Symbol('tracemesh.http1.upstream');
interface PooledSocket extends Socket {
  [CONN]: UpstreamConnection;
}

/** The connections to one endpoint from one source (the proxy's own address, or one client's under TPROXY). */
class EndpointGroup {
  open = 0;
  inUse = 0;
  readonly idle: UpstreamConnection[] = [];
  constructor(
    /** The pool key: the endpoint's key, plus `|source` when connections come from a client's address. */
    readonly key: string,
    /** The client address connections of this group come from; '' for the proxy's own. */
    readonly source: string,
  ) {}
}

/** A request waiting for a connection to a destination at maxConnections. */
class Waiter {
  timer: NodeJS.Timeout | undefined = undefined;
  constructor(
    readonly pool: UpstreamPool,
    readonly endpoint: ClusterEndpoint,
    readonly group: EndpointGroup,
    readonly client: UpstreamClient,
    readonly limits: DestinationLimits,
    readonly timeoutMs: number,
  ) {}
}

function onWaitExpired(waiter: Waiter): void {
  waiter.timer = undefined;
  waiter.pool.expireWaiter(waiter);
}

export class UpstreamConnection {
  readonly socket: Socket;
  owner: UpstreamClient | undefined;
  connected = false;
  /** Requests completed on this connection; > 0 means the current one rides a reused connection. */
  completedRequests = 0;
  state = S_CONNECTING;
  idleSince = 0;
  /** The destination's limits this connection counts against (maxConnections); undefined: none. */
  limits: DestinationLimits | undefined = undefined;
  /** How long this connection may stay idle: the pool's limit, or less when the server says so. */
  idleLimitMs: number;
  error: Error | undefined = undefined;
  connectTimer: NodeJS.Timeout | undefined;
  /** Where the next read lands (onread); replaced only when a read's bytes were lent out. */
  private readBuffer: Buffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);

  constructor(
    readonly pool: UpstreamPool,
    readonly group: EndpointGroup,
    endpoint: ClusterEndpoint,
    owner: UpstreamClient,
    connectTimeoutMs: number,
    idleLimitMs: number,
  ) {
    this.owner = owner;
    this.idleLimitMs = idleLimitMs;
    // One closure per connection (onread calls its buffer source with no receiver); reads themselves allocate nothing.
    const onread = { buffer: (): Buffer => this.readBuffer, callback: onRead as (bytes: number, buf: Uint8Array) => boolean };
    const socket = openSocket(pool.connector, endpoint, group.source, onread) as PooledSocket;
    socket[CONN] = this;
    socket.on('connect', onConnect);
    socket.on('end', onEnd);
    socket.on('error', onError);
    socket.on('close', onClose);
    socket.on('drain', onDrain);
    this.socket = socket;
    this.connectTimer = connectTimeoutMs > 0 ? setTimeout(onConnectTimeout, connectTimeoutMs, this, connectTimeoutMs, endpoint.key).unref() : undefined;
  }

  /** The server's `Keep-Alive: timeout=N` (seconds): stop reusing the connection before it does. */
  applyKeepAliveHint(value: string): void {
    const at = value.indexOf('timeout=');
    if (at < 0) return;
    const seconds = parseInt(value.slice(at + 8), 10);
    if (!(seconds > 0)) return;
    const limit = seconds * 1000 - KEEP_ALIVE_MARGIN_MS;
    this.idleLimitMs = Math.max(0, Math.min(this.idleLimitMs, limit));
  }

  /**
   * Bytes of the current read were handed to a write that queued them
   * instead of sending them at once: they must survive the next read, which
   * therefore goes to a new buffer (the old one lives as long as the queue holds it).
   */
  lendReadBuffer(): void {
    this.readBuffer = Buffer.allocUnsafe(READ_BUFFER_BYTES);
  }
}

/**
 * The connection's socket. A connector may refuse arguments it cannot use by
 * throwing (a transparent socket from an address it cannot bind): that becomes
 * a socket failing on the next tick, so the request sees a connect failure
 * (UF) through the same events as a refused connect, never an exception.
 */
function openSocket(connector: UpstreamConnector | undefined, endpoint: ClusterEndpoint, source: string, onread: OnReadOpts): Socket {
  const options = { allowHalfOpen: true, noDelay: true, onread };
  if (connector === undefined) return connect({ host: endpoint.address, port: endpoint.port, ...options });
  try {
    return connector.connect({ host: endpoint.address, port: endpoint.port }, source === '' ? undefined : source, options);
  } catch (err) {
    const failed = new Socket();
    process.nextTick(() => failed.destroy(err instanceof Error ? err : new Error(String(err))));
    return failed;
  }
}

function connOf(socket: Socket): UpstreamConnection {
  return (socket as PooledSocket)[CONN];
}

function onConnect(this: Socket): void {
  const conn = connOf(this);
  conn.connected = true;
  if (conn.connectTimer !== undefined) {
    clearTimeout(conn.connectTimer);
    conn.connectTimer = undefined;
  }
}

function onConnectTimeout(conn: UpstreamConnection, ms: number, key: string): void {
  conn.connectTimer = undefined;
  if (conn.connected) return;
  conn.error = new TracemeshError('TM_ERR_UPSTREAM', `connect to ${key} timed out after ${ms} ms`);
  conn.socket.destroy();
}

/** onread's callback, called with the socket as `this`; the bytes are buf[0, nread) of the connection's read buffer. */
function onRead(this: Socket, nread: number, buf: Buffer): boolean {
  const conn = connOf(this);
  if (conn.owner !== undefined) conn.owner.onUpstreamData(conn, buf.subarray(0, nread));
  else this.destroy(); // bytes on an idle connection: nothing can be trusted on it any more
  // Pausing is explicit (socket.pause()), never by this answer.
  return true;
}

function onEnd(this: Socket): void {
  const conn = connOf(this);
  if (conn.owner !== undefined) conn.owner.onUpstreamEnd(conn);
  else this.destroy();
}

function onError(this: Socket, err: Error): void {
  const conn = connOf(this);
  if (conn.error === undefined) conn.error = err;
}

function onDrain(this: Socket): void {
  const conn = connOf(this);
  if (conn.owner !== undefined) conn.owner.onUpstreamDrain(conn);
}

function onClose(this: Socket): void {
  const conn = connOf(this);
  conn.pool.onClosed(conn);
  const owner = conn.owner;
  conn.owner = undefined;
  if (owner !== undefined) owner.onUpstreamClose(conn, conn.error);
}

function sweepIdle(pool: UpstreamPool): void {
  pool.sweep();
}

export class UpstreamPool implements Http1UpstreamPool {
  readonly deadlines: DeadlineSweeper;
  private readonly groups = new Map<string, EndpointGroup>();
  /** Requests waiting for a connection, per destination (its limits object), oldest first. */
  private readonly waiters = new Map<DestinationLimits, Waiter[]>();
  private readonly waiting = new Map<UpstreamClient, Waiter>();
  private readonly sweepTimer: NodeJS.Timeout;
  private closed = false;

  constructor(
    private readonly limits: ProxyLimits,
    /** How connections are opened; undefined: net.connect from the proxy's own address. */
    readonly connector: UpstreamConnector | undefined = undefined,
  ) {
    this.deadlines = new DeadlineSweeper(sweepPeriodMs(limits));
    const every = Math.min(1000, Math.max(10, Math.floor(limits.upstreamIdleTimeoutMs / 4)));
    this.sweepTimer = setInterval(sweepIdle, every, this).unref();
  }

  /** The group of connections to `endpoint` for `clientAddress` (see the file comment on sources). */
  private group(endpoint: ClusterEndpoint, clientAddress: string | undefined): EndpointGroup {
    const connector = this.connector;
    const source = connector === undefined || !connector.keepsClientAddress ? '' : connector.sourceKey({ host: endpoint.address, port: endpoint.port }, clientAddress);
    return this.groupOf(source === '' ? endpoint.key : `${endpoint.key}|${source}`, source);
  }

  private groupOf(key: string, source: string): EndpointGroup {
    let group = this.groups.get(key);
    if (group === undefined) {
      group = new EndpointGroup(key, source);
      this.groups.set(key, group);
    }
    return group;
  }

  acquire(endpoint: ClusterEndpoint, client: UpstreamClient, limits?: DestinationLimits, clientAddress?: string): UpstreamConnection | undefined {
    const group = this.group(endpoint, clientAddress);
    const idle = group.idle;
    if (idle.length > 0) {
      const now = performance.now();
      while (idle.length > 0) {
        const conn = idle.pop() as UpstreamConnection;
        if (now - conn.idleSince >= conn.idleLimitMs || conn.socket.destroyed) {
          conn.state = S_DISCARDED;
          conn.socket.destroy();
          continue;
        }
        conn.state = S_IN_USE;
        conn.owner = client;
        group.inUse++;
        return conn;
      }
    }
    return this.openWithin(group, endpoint, client, limits);
  }

  connectFresh(endpoint: ClusterEndpoint, client: UpstreamClient, limits?: DestinationLimits, clientAddress?: string): UpstreamConnection | undefined {
    return this.openWithin(this.group(endpoint, clientAddress), endpoint, client, limits);
  }

  private openWithin(group: EndpointGroup, endpoint: ClusterEndpoint, client: UpstreamClient, limits: DestinationLimits | undefined): UpstreamConnection | undefined {
    if (limits !== undefined && !limits.tryOpenConnection()) {
      if (!this.closeIdleOf(limits) || !limits.tryOpenConnection()) return undefined;
    }
    return this.open(group, endpoint, client, limits);
  }

  private open(group: EndpointGroup, endpoint: ClusterEndpoint, client: UpstreamClient, limits: DestinationLimits | undefined): UpstreamConnection {
    const connectTimeoutMs = limits === undefined || limits.connectTimeoutMs === null ? this.limits.connectTimeoutMs : limits.connectTimeoutMs;
    const conn = new UpstreamConnection(this, group, endpoint, client, connectTimeoutMs, this.limits.upstreamIdleTimeoutMs);
    conn.limits = limits;
    conn.state = S_IN_USE;
    group.open++;
    group.inUse++;
    return conn;
  }

  release(conn: UpstreamConnection): void {
    conn.owner = undefined;
    conn.completedRequests++;
    if (conn.state !== S_IN_USE) return;
    const group = conn.group;
    const socket = conn.socket;
    const usable = !this.closed && !socket.destroyed && socket.readable && socket.writable && conn.idleLimitMs > 0;
    // A request waiting for this destination takes the connection (or its slot) before it goes idle.
    if (usable && conn.limits !== undefined && this.waiters.size > 0 && this.serveWaiter(conn.limits, conn)) return;
    group.inUse--;
    if (!usable || group.idle.length >= this.limits.maxIdleUpstreamPerEndpoint) {
      conn.state = S_DISCARDED;
      this.freeSlot(conn);
      socket.destroy();
      return;
    }
    if (socket.isPaused()) socket.resume(); // an idle socket must read, to notice the server closing it
    conn.state = S_IDLE;
    conn.idleSince = performance.now();
    group.idle.push(conn);
  }

  discard(conn: UpstreamConnection, graceful = false): void {
    conn.owner = undefined;
    if (conn.state === S_IN_USE) conn.group.inUse--;
    if (conn.state === S_IDLE) removeIdle(conn);
    if (conn.state !== S_CLOSED) conn.state = S_DISCARDED;
    this.freeSlot(conn);
    if (graceful) conn.socket.destroySoon();
    else conn.socket.destroy();
  }

  /** Bookkeeping when a socket has closed, whatever closed it. */
  onClosed(conn: UpstreamConnection): void {
    if (conn.connectTimer !== undefined) {
      clearTimeout(conn.connectTimer);
      conn.connectTimer = undefined;
    }
    const group = conn.group;
    group.open--;
    if (conn.state === S_IDLE) removeIdle(conn);
    else if (conn.state === S_IN_USE) group.inUse--;
    conn.state = S_CLOSED;
    this.freeSlot(conn);
  }

  /** The connection no longer counts against its destination's maxConnections (once, whichever comes first: discard or close). */
  private freeSlot(conn: UpstreamConnection): void {
    const limits = conn.limits;
    if (limits === undefined) return;
    conn.limits = undefined;
    limits.connectionClosed();
    if (this.waiters.size > 0) this.serveWaiter(limits, undefined);
  }

  /**
   * A slot or a released connection for the first request waiting on
   * `limits`: the released connection when it goes to the same endpoint,
   * else a new connection (the released one is closed to make the room).
   */
  private serveWaiter(limits: DestinationLimits, released: UpstreamConnection | undefined): boolean {
    const queue = this.waiters.get(limits);
    if (queue === undefined || queue.length === 0) return false;
    const waiter = queue[0] as Waiter;
    if (released !== undefined && released.group.key === waiter.group.key) {
      this.dequeue(waiter);
      released.owner = waiter.client;
      waiter.client.onUpstreamReady(released);
      return true;
    }
    if (released !== undefined) {
      released.state = S_DISCARDED;
      released.group.inUse--;
      released.owner = undefined;
      this.freeSlotQuietly(released);
      released.socket.destroy();
    }
    if (!limits.tryOpenConnection()) return released !== undefined;
    this.dequeue(waiter);
    // By key: the waiter's group may have been swept while it waited (it had no connections).
    const conn = this.open(this.groupOf(waiter.group.key, waiter.group.source), waiter.endpoint, waiter.client, limits);
    waiter.client.onUpstreamReady(conn);
    return true;
  }

  private freeSlotQuietly(conn: UpstreamConnection): void {
    const limits = conn.limits;
    if (limits === undefined) return;
    conn.limits = undefined;
    limits.connectionClosed();
  }

  private dequeue(waiter: Waiter): void {
    const queue = this.waiters.get(waiter.limits);
    if (queue !== undefined) {
      const at = queue.indexOf(waiter);
      if (at >= 0) queue.splice(at, 1);
      if (queue.length === 0) this.waiters.delete(waiter.limits);
    }
    this.waiting.delete(waiter.client);
    if (waiter.timer !== undefined) clearTimeout(waiter.timer);
    waiter.timer = undefined;
    waiter.limits.pendingEnded();
  }

  wait(endpoint: ClusterEndpoint, client: UpstreamClient, limits: DestinationLimits, timeoutMs: number, clientAddress?: string): boolean {
    if (this.closed || !limits.tryStartPending()) return false;
    const waiter = new Waiter(this, endpoint, this.group(endpoint, clientAddress), client, limits, timeoutMs);
    let queue = this.waiters.get(limits);
    if (queue === undefined) {
      queue = [];
      this.waiters.set(limits, queue);
    }
    queue.push(waiter);
    this.waiting.set(client, waiter);
    if (timeoutMs > 0) waiter.timer = setTimeout(onWaitExpired, timeoutMs, waiter).unref();
    return true;
  }

  cancelWait(client: UpstreamClient): void {
    const waiter = this.waiting.get(client);
    if (waiter !== undefined) this.dequeue(waiter);
  }

  expireWaiter(waiter: Waiter): void {
    if (this.waiting.get(waiter.client) !== waiter) return;
    this.dequeue(waiter);
    waiter.client.onUpstreamWaitExpired(waiter.timeoutMs);
  }

  /** At maxConnections: closes one idle connection of the destination (any endpoint), so a new one fits. */
  private closeIdleOf(limits: DestinationLimits): boolean {
    for (const group of this.groups.values()) {
      const idle = group.idle;
      for (let i = 0; i < idle.length; i++) {
        const conn = idle[i] as UpstreamConnection;
        if (conn.limits !== limits) continue;
        idle.splice(i, 1);
        conn.state = S_DISCARDED;
        this.freeSlotQuietly(conn);
        conn.socket.destroy();
        return true;
      }
    }
    return false;
  }

  sweep(): void {
    const now = performance.now();
    for (const group of this.groups.values()) {
      const idle = group.idle;
      for (let i = idle.length - 1; i >= 0; i--) {
        const conn = idle[i] as UpstreamConnection;
        if (now - conn.idleSince >= conn.idleLimitMs) conn.socket.destroy();
      }
      if (group.open === 0) this.groups.delete(group.key);
    }
  }

  stats(): Http1PoolStats {
    const stats: Http1PoolStats = { open: 0, idle: 0, inUse: 0, endpoints: [] };
    for (const group of this.groups.values()) {
      stats.open += group.open;
      stats.idle += group.idle.length;
      stats.inUse += group.inUse;
      stats.endpoints.push({ endpoint: group.key, open: group.open, idle: group.idle.length, inUse: group.inUse });
    }
    return stats;
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    clearInterval(this.sweepTimer);
    this.deadlines.close();
    for (const waiter of [...this.waiting.values()]) {
      this.dequeue(waiter);
      waiter.client.onUpstreamWaitExpired(0);
    }
    for (const group of this.groups.values()) {
      for (const conn of [...group.idle]) conn.socket.destroy();
    }
  }
}

function removeIdle(conn: UpstreamConnection): void {
  const idle = conn.group.idle;
  const at = idle.indexOf(conn);
  if (at >= 0) idle.splice(at, 1);
}

/**
 * The pool of one proxy direction. `connector` opens its connections
 * (transparent-connect.ts's upstreamConnector: from the client's address
 * under TPROXY); without one, net.connect from the proxy's own address.
 */
export function createHttp1UpstreamPool(limits: ProxyLimits, connector?: UpstreamConnector): Http1UpstreamPool {
  return new UpstreamPool(limits, connector);
}
