/**
 * The HTTP/2 (h2c prior knowledge) and gRPC path of one proxy direction.
 * The listener tier hands over connections whose first bytes it has already
 * read; they go back in front of the socket's stream and node:http2's server
 * takes the socket as if it had accepted it. Each session is bounded (memory,
 * header list, concurrent streams, time to its first request, idle time);
 * each stream goes to exchange.ts.
 */
import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { HttpDirection } from '../http-direction.js';
import type { ProxyLimits } from '../limits.js';
import type { AcceptedConnection } from '../listeners/accepted.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { forwardStream, http2Context, type DownstreamPeer, type Http2Context } from './exchange.js';
import { serverOptions } from './h2-settings.js';
import { closeSession, type Http2SessionPool } from './session-pool.js';

export { createHttp2SessionPool } from './session-pool.js';
export type { Http2EndpointStats, Http2PoolStats, Http2SessionPool, UpstreamSession } from './session-pool.js';

export interface Http2Deps {
  direction: HttpDirection;
  telemetry: Telemetry;
  limits: ProxyLimits;
  pool: Http2SessionPool;
}

export interface Http2Handler {
  /** Takes over a connection detected as h2c; never throws (a connection it cannot take is destroyed). */
  handle(conn: AcceptedConnection): void;
  /** GOAWAY to every session; resolves when they have closed (streams still running after graceMs are cut). Safe twice. */
  close(graceMs?: number): Promise<void>;
  /** Downstream sessions open now (for the admin page and tests). */
  readonly sessionCount: number;
}

const DEFAULT_CLOSE_GRACE_MS = 5_000;

const PEER = Symbol('tracemesh.h2.downstreamPeer');
type Tagged<T> = T & { [PEER]?: DownstreamSession };

/** One downstream connection: who it is, and the timers that bound its life. */
class DownstreamSession implements DownstreamPeer {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly originalTarget: { readonly host: string; readonly port: number } | undefined;
  activeStreams = 0;
  private firstRequestTimer: NodeJS.Timeout | undefined;
  private readonly idleTimer: NodeJS.Timeout | undefined;

  constructor(
    readonly owner: Handler,
    readonly session: ServerHttp2Session,
    conn: AcceptedConnection,
  ) {
    this.clientAddress = conn.remoteAddress;
    this.clientPort = conn.remotePort;
    this.originalTarget = conn.target;
    const limits = owner.ctx.limits;
    (session as Tagged<ServerHttp2Session>)[PEER] = this;
    session.once('close', onSessionClose);
    // The first request must come within requestHeaderTimeoutMs, as on HTTP/1 (slowloris). This
    // also ends sessions whose first frames were a protocol error: node answers those with GOAWAY
    // but leaves the socket open for the client to close, and reports nothing.
    if (limits.requestHeaderTimeoutMs > 0) {
      this.firstRequestTimer = setTimeout(onFirstRequestTimeout, limits.requestHeaderTimeoutMs, this);
      this.firstRequestTimer.unref();
    }
    // A session with no stream in flight is closed (GOAWAY) after idleTimeoutMs.
    if (limits.idleTimeoutMs > 0) {
      this.idleTimer = setTimeout(onIdleTimeout, limits.idleTimeoutMs, this);
      this.idleTimer.unref();
    }
  }

  streamStarted(): void {
    this.activeStreams++;
    if (this.firstRequestTimer !== undefined) {
      clearTimeout(this.firstRequestTimer);
      this.firstRequestTimer = undefined;
    }
  }

  streamEnded(): void {
    this.activeStreams--;
    if (this.activeStreams === 0 && this.idleTimer !== undefined && !this.session.closed) this.idleTimer.refresh();
  }

  closed(): void {
    if (this.firstRequestTimer !== undefined) clearTimeout(this.firstRequestTimer);
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    this.owner.sessions.delete(this);
  }
}

function peerOf(session: ServerHttp2Session): DownstreamSession | undefined {
  return (session as Tagged<ServerHttp2Session>)[PEER];
}

function onSessionClose(this: ServerHttp2Session): void {
  peerOf(this)?.closed();
}

function onFirstRequestTimeout(peer: DownstreamSession): void {
  if (!peer.session.destroyed) peer.session.destroy();
}

function onIdleTimeout(peer: DownstreamSession): void {
  if (peer.activeStreams === 0 && !peer.session.closed) peer.session.close();
}

class Handler implements Http2Handler {
  readonly ctx: Http2Context;
  readonly sessions = new Set<DownstreamSession>();
  private readonly server: Http2Server;
  /** The connection being handed to the server; its 'session' event fires synchronously inside emit('connection'). */
  private handing: AcceptedConnection | undefined = undefined;
  private closing: Promise<void> | undefined = undefined;

  constructor(deps: Http2Deps) {
    this.ctx = http2Context(deps.direction, deps.telemetry, deps.limits, deps.pool);
    this.server = createServer(serverOptions(deps.limits));
    this.server.on('session', (session: ServerHttp2Session) => this.onSession(session));
    this.server.on('stream', (stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]) =>
      this.onStream(stream, headers, flags, rawHeaders),
    );
    // A protocol error from a client ends its session (node destroys it); nothing to add, but the event must be heard.
    this.server.on('sessionError', ignore);
  }

  get sessionCount(): number {
    return this.sessions.size;
  }

  handle(conn: AcceptedConnection): void {
    const socket = conn.socket;
    if (this.closing !== undefined || socket.destroyed) {
      socket.destroy();
      return;
    }
    // Detection may have set a timeout of its own; from here the session's timers rule.
    socket.setTimeout(0);
    if (conn.head.length > 0) socket.unshift(conn.head);
    this.handing = conn;
    try {
      this.server.emit('connection', socket);
      // The session now reads the socket's handle natively, but a socket handed
      // over paused has never started reading: start it (bytes already buffered
      // in the stream are fed to the session by node on the next tick).
      if (!socket.destroyed) socket.read(0);
    } catch {
      socket.destroy();
    } finally {
      this.handing = undefined;
    }
  }

  private onSession(session: ServerHttp2Session): void {
    const conn = this.handing;
    if (conn === undefined) {
      // Only handle() feeds this server.
      session.destroy();
      return;
    }
    this.sessions.add(new DownstreamSession(this, session, conn));
  }

  private onStream(stream: ServerHttp2Stream, headers: IncomingHttpHeaders, flags: number, rawHeaders: string[]): void {
    const session = stream.session as ServerHttp2Session | undefined;
    const peer = session === undefined ? undefined : peerOf(session);
    if (peer === undefined) {
      stream.close(constants.NGHTTP2_INTERNAL_ERROR);
      return;
    }
    try {
      forwardStream(this.ctx, peer, stream, headers, rawHeaders, (flags & constants.NGHTTP2_FLAG_END_STREAM) !== 0);
    } catch {
      // A defect here must cost one stream, not the process.
      if (!stream.destroyed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
    }
  }

  close(graceMs = DEFAULT_CLOSE_GRACE_MS): Promise<void> {
    if (this.closing === undefined) {
      const waits: Promise<void>[] = [];
      for (const peer of this.sessions) waits.push(closeSession(peer.session, graceMs));
      this.closing = Promise.all(waits).then(ignore);
    }
    return this.closing;
  }
}

function ignore(): void {}

export function createHttp2Handler(deps: Http2Deps): Http2Handler {
  return new Handler(deps);
}
