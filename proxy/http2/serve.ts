/**
 * The HTTP/2 (h2c prior knowledge) and gRPC path of one proxy direction.
 * The listener tier hands over connections whose first bytes it has already
 * read; they go back in front of the socket's stream and node:http2's server
 * takes the socket as if it had accepted it. Each session is bounded (memory,
 * header list, concurrent streams, time to its first request, idle time,
 * liveness while streams are in flight); each stream goes to exchange.ts.
 */
import { constants, createServer, type Http2Server, type IncomingHttpHeaders, type ServerHttp2Session, type ServerHttp2Stream } from 'node:http2';
import type { Socket } from 'node:net';
import type { HttpDirection } from '../http-direction.js';
import type { ProxyLimits } from '../limits.js';
import type { AcceptedConnection } from '../listeners/accepted.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { forwardStream, http2Context, type DownstreamPeer, type Http2Context } from './exchange.js';
import { serverOptions } from './h2-settings.js';
import { closeSession, type Http2SessionPool } from './session-pool.js';

export { createHttp2SessionPool } from './session-pool.js';
export type { Http2EndpointStats, Http2PoolStats, Http2SessionPool, SessionDestination, UpstreamSession } from './session-pool.js';

export interface Http2Deps {
  direction: HttpDirection;
  telemetry: Telemetry;
  limits: ProxyLimits;
  /** Upstream sessions; the pool's connector decides where they connect from (TPROXY: each client's address). */
  pool: Http2SessionPool;
  /** Retry backoff jitter (default Math.random), for tests that need exact backoffs. */
  random?: () => number;
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

/**
 * How long a client gets to answer: to ACK the liveness PING, or to close
 * after the GOAWAY that ends an idle session (then it is destroyed). At most
 * this, less when the session's idle limits are shorter. A peer answers a
 * PING at once (RFC 9113 §6.7); 10 s leaves room for WANs and busy clients.
 */
const MAX_ANSWER_MS = 10_000;

function answerTimeoutMs(limits: ProxyLimits): number {
  let ms = MAX_ANSWER_MS;
  if (limits.idleTimeoutMs > 0) ms = Math.min(ms, limits.idleTimeoutMs);
  if (limits.streamIdleTimeoutMs > 0) ms = Math.min(ms, limits.streamIdleTimeoutMs);
  return ms;
}

const PEER = Symbol('tracemesh.h2.downstreamPeer');
type Tagged<T> = T & { [PEER]?: DownstreamSession };

/**
 * One downstream connection: who it is, and the timers that bound its life.
 * node:http2 alone does not always end a session whose connection is over
 * (see probe() and closeWithGrace()); these timers make sure it ends.
 */
class DownstreamSession implements DownstreamPeer {
  readonly clientAddress: string;
  readonly clientPort: number;
  readonly originalTarget: { readonly host: string; readonly port: number } | undefined;
  activeStreams = 0;
  /** The session has closed: timers stay cleared. */
  private done = false;
  private firstRequestTimer: NodeJS.Timeout | undefined;
  private readonly idleTimer: NodeJS.Timeout | undefined;
  /** The raw socket: node:http2 reads and writes its handle natively, and its byte counters see that traffic. */
  private readonly socket: Socket;
  /** Bytes read + written on the socket when the idle timer last fired, to tell a quiet session from a busy one. */
  private bytesAtLastCheck: number;
  /** Armed while a liveness PING awaits its ACK. */
  private pingTimer: NodeJS.Timeout | undefined;
  /** Armed once the session is closing with no stream left: it must be gone by then. */
  private closeTimer: NodeJS.Timeout | undefined;
  private readonly answerMs: number;

  constructor(
    readonly owner: Handler,
    readonly session: ServerHttp2Session,
    conn: AcceptedConnection,
  ) {
    this.socket = conn.socket;
    // Also where this client's upstream sessions come from when the pool's connector keeps client addresses (TPROXY).
    this.clientAddress = conn.remoteAddress;
    this.clientPort = conn.remotePort;
    this.originalTarget = conn.target;
    this.bytesAtLastCheck = this.bytesMoved();
    const limits = owner.ctx.limits;
    this.answerMs = answerTimeoutMs(limits);
    (session as Tagged<ServerHttp2Session>)[PEER] = this;
    session.once('close', onSessionClose);
    (conn.socket as Tagged<Socket>)[PEER] = this;
    conn.socket.once('end', onSocketEnd);
    // The first request must come within requestHeaderTimeoutMs, as on HTTP/1 (slowloris). This
    // also ends sessions whose first frames were a protocol error: node answers those with GOAWAY
    // but leaves the socket open for the client to close, and reports nothing.
    if (limits.requestHeaderTimeoutMs > 0) {
      this.firstRequestTimer = setTimeout(onFirstRequestTimeout, limits.requestHeaderTimeoutMs, this);
      this.firstRequestTimer.unref();
    }
    // Every idleTimeoutMs: a session with no stream in flight is closed (GOAWAY); one with streams
    // that moved no byte since the last time must prove it is alive (see probe()).
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
    if (this.activeStreams !== 0 || this.done) return;
    if (this.session.closed) this.closeWithGrace();
    else this.idleTimer?.refresh();
  }

  /** A stream saw no traffic for streamIdleTimeoutMs: the session itself may be the one that is stuck. */
  streamIdle(): void {
    this.probe();
  }

  private bytesMoved(): number {
    return this.socket.bytesRead + this.socket.bytesWritten;
  }

  /** The idle timer fired. */
  checkIdle(): void {
    if (this.done || this.session.destroyed) return;
    if (this.activeStreams === 0) {
      this.closeWithGrace();
      return;
    }
    const moved = this.bytesMoved();
    if (moved === this.bytesAtLastCheck) this.probe();
    this.bytesAtLastCheck = moved;
    this.idleTimer?.refresh();
  }

  /**
   * The client half-closed. The listener keeps sockets half-open (for TCP
   * forwarding), and node:http2 does not read the end of input as the end of
   * the session; but a client that can send no more frames (no SETTINGS ACK,
   * no WINDOW_UPDATE) is done: streams in flight may still finish, no new one starts.
   */
  inputEnded(): void {
    if (this.done || this.session.destroyed) return;
    if (this.activeStreams === 0) this.closeWithGrace();
    else if (!this.session.closed) this.session.close();
  }

  /**
   * GOAWAY (unless one went out already), and destroy the session if it is
   * still there after the grace. node does not always destroy a closing
   * session once its last stream is gone: it may wait for the client to
   * close the connection, which a client that half-closed (seen: in the
   * middle of a frame) or stopped talking never does.
   */
  closeWithGrace(): void {
    if (this.closeTimer !== undefined || this.done || this.session.destroyed) return;
    if (!this.session.closed) this.session.close();
    if (this.session.destroyed) return;
    this.closeTimer = setTimeout(onCloseGraceOver, this.answerMs, this);
    this.closeTimer.unref();
  }

  /**
   * Sends a PING and destroys the session if no ACK comes in time. nghttp2
   * can stop a session without node reporting it: after a connection error
   * in a frame that followed a request (a WINDOW_UPDATE of the wrong size,
   * say) it sends GOAWAY, stops reading and writing, and node neither closes
   * nor destroys the session; its streams in flight never close, so nothing
   * else would ever release the socket. A client that stops reading its
   * socket is caught the same way. A live client answers at once.
   */
  probe(): void {
    if (this.pingTimer !== undefined || this.done || this.session.destroyed) return;
    this.pingTimer = setTimeout(onPingTimeout, this.answerMs, this);
    this.pingTimer.unref();
    try {
      // A closure per probe, not per request: probes are rare.
      this.session.ping((err) => this.pingAnswered(err));
    } catch {
      // The session refuses pings (closed meanwhile): the timer decides.
    }
  }

  private pingAnswered(err: Error | null): void {
    // An error is the PING cancelled with the session: its 'close' clears the timer.
    if (err !== null || this.pingTimer === undefined) return;
    clearTimeout(this.pingTimer);
    this.pingTimer = undefined;
  }

  /** No PING ACK in time. */
  pingTimedOut(): void {
    if (!this.session.destroyed) this.session.destroy();
  }

  /** Still there after the GOAWAY's grace. */
  graceOver(): void {
    this.closeTimer = undefined;
    // A stream that started meanwhile may finish; its end arms the grace again.
    if (this.activeStreams === 0 && !this.session.destroyed) this.session.destroy();
  }

  closed(): void {
    this.done = true;
    if (this.firstRequestTimer !== undefined) clearTimeout(this.firstRequestTimer);
    if (this.idleTimer !== undefined) clearTimeout(this.idleTimer);
    if (this.pingTimer !== undefined) clearTimeout(this.pingTimer);
    if (this.closeTimer !== undefined) clearTimeout(this.closeTimer);
    this.owner.sessions.delete(this);
  }
}

function peerOf(session: ServerHttp2Session): DownstreamSession | undefined {
  return (session as Tagged<ServerHttp2Session>)[PEER];
}

function onSessionClose(this: ServerHttp2Session): void {
  peerOf(this)?.closed();
}

function onSocketEnd(this: Socket): void {
  (this as Tagged<Socket>)[PEER]?.inputEnded();
}

function onFirstRequestTimeout(peer: DownstreamSession): void {
  if (!peer.session.destroyed) peer.session.destroy();
}

function onIdleTimeout(peer: DownstreamSession): void {
  peer.checkIdle();
}

function onPingTimeout(peer: DownstreamSession): void {
  peer.pingTimedOut();
}

function onCloseGraceOver(peer: DownstreamSession): void {
  peer.graceOver();
}

function onStreamError(this: ServerHttp2Stream): void {
  // What happened to the stream is read on its 'close'; this only keeps node from throwing the error.
}

function onSocketError(): void {
  // The session hears socket errors (node destroys it); this only keeps an error after that from being thrown.
}

class Handler implements Http2Handler {
  readonly ctx: Http2Context;
  readonly sessions = new Set<DownstreamSession>();
  private readonly server: Http2Server;
  /** The connection being handed to the server; its 'session' event fires synchronously inside emit('connection'). */
  private handing: AcceptedConnection | undefined = undefined;
  private closing: Promise<void> | undefined = undefined;

  constructor(deps: Http2Deps) {
    this.ctx = http2Context(deps.direction, deps.telemetry, deps.limits, deps.pool, deps.random);
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
    socket.on('error', onSocketError);
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
    // First, before anything can return: node emits 'stream' a tick after the HEADERS frame, and a
    // later frame of the same read (a connection error, GOAWAY with an error, RST_STREAM) may have
    // destroyed the stream by now; its error is emitted next, and thrown if nobody listens.
    stream.on('error', onStreamError);
    const session = stream.session as ServerHttp2Session | undefined;
    // No session: it was destroyed with the stream in that same read. Nothing left to answer.
    const peer = session === undefined ? undefined : peerOf(session);
    if (peer === undefined) {
      if (!stream.destroyed && !stream.closed) stream.close(constants.NGHTTP2_INTERNAL_ERROR);
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
