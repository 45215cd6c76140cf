/**
 * The HTTP/1.1 downstream connection loop on a raw socket: reads request
 * heads (whole from one read in the usual case, collected across reads
 * otherwise), hands each request to the connection's Exchange, holds
 * pipelined bytes while a response is in progress, and enforces the
 * connection's limits: head size and field count (431), target length
 * (414), the head timeout (408, slowloris) and the idle keep-alive timeout.
 * CONNECT is handed to the listener tier. Socket events reach the connection
 * through module-level functions (no closures per connection or request).
 * Deadlines are flags and timestamps checked by the direction's coarse
 * sweep (deadlines.ts), not timers: arming one per request is a field store.
 */
import type { Socket } from 'node:net';
import { wireError, wireErrorWithStatus } from '../errors-to-wire.js';
import type { HttpDirection } from '../http-direction.js';
import type { ProxyLimits } from '../limits.js';
import type { AcceptedConnection } from '../listeners/accepted.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { BARE_LF_END, CR, CRLF, LF } from './chars.js';
import { D_BODY, D_CLOSED, D_HEAD, D_TUNNEL, D_WAIT } from './conn-state.js';
import type { SweptConnection } from './deadlines.js';
import { Exchange } from './exchange.js';
import { HttpHead } from './head.js';
import { HEAD_TOO_LARGE, HeadReader } from './head-reader.js';
import { HEAD_OK, parseRequestHead } from './parser.js';
import { answerRefusal } from './refusal.js';
import type { MirrorSender } from './mirror.js';
import type { Http1UpstreamPool } from './upstream-pool.js';
import { peerMetadataFields } from './upstream-request.js';

export { createHttp1UpstreamPool } from './upstream-pool.js';
export type { Http1PoolStats, Http1UpstreamPool } from './upstream-pool.js';

export interface Http1Deps {
  /** Where requests go and which span kind they make. */
  direction: HttpDirection;
  telemetry: Telemetry;
  limits: ProxyLimits;
  /** Keep-alive pool, one per proxy per direction. */
  pool: Http1UpstreamPool;
  /** Retry backoff jitter, uniform in [0, 1); undefined: Math.random. Tests inject a seeded one. */
  random?: () => number;
  /** Mirror copies (route rules with `mirror`), one sender per proxy per direction; undefined: copies are not sent. */
  mirrors?: MirrorSender;
  /**
   * Explicit-mode outbound only: a CONNECT request was accepted; the listener
   * tier takes the socket over (paused, after "HTTP/1.1 200 Connection
   * Established" was written). `rest` = bytes after the CONNECT head.
   * Undefined (inbound) → 405.
   */
  onConnect?: (socket: Socket, target: { host: string; port: number }, rest: Buffer, remoteAddress: string, remotePort: number) => void;
}

/** Pipelined bytes held while a response is in progress; past this the socket stops reading until it is done. */
const STASH_LIMIT = 64 * 1024;
/** After the proxy ends a connection, how long a silent client has to send its FIN before the connection is reset. */
const LINGER_MS = 5_000;
/** Request-line overhead beyond the target (method, spaces, version, CRLF) allowed before 414. */
const REQUEST_LINE_SLACK = 64;

const EMPTY = Buffer.alloc(0);

const CONN = Symbol('tracemesh.http1.downstream');
interface ServedSocket extends Socket {
  [CONN]: DownstreamConnection;
}

function connOf(socket: Socket): DownstreamConnection {
  return (socket as ServedSocket)[CONN];
}

function onData(this: Socket, chunk: Buffer): void {
  connOf(this).onData(chunk);
}
function onEnd(this: Socket): void {
  connOf(this).onEnd();
}
function onClose(this: Socket): void {
  connOf(this).onClose();
}
function onDrain(this: Socket): void {
  const conn = connOf(this);
  conn.heard = true;
  conn.exchange.onDownstreamDrain();
}
function onError(): void {
  // 'close' follows every socket error; that is where the connection is cleaned up.
}

export class DownstreamConnection implements SweptConnection {
  state = D_HEAD;
  /** The current request's head (reused for every request). */
  readonly head = new HttpHead();
  readonly exchange: Exchange;
  readonly limits: ProxyLimits;
  readonly remoteAddress: string;
  readonly remotePort: number;
  /** CONNECT target or original destination, a routing fallback when Host names no service. */
  readonly originalTarget: { readonly host: string; readonly port: number } | undefined;
  /** Scratch for setPeers (filled per request, never retained). */
  readonly peer = { service: '', namespace: '', version: '' };
  /** The client sent FIN with its request complete: answer, then close. */
  clientEnded = false;
  /** The socket's allowHalfOpen as the listener set it, restored when CONNECT hands the socket back. */
  listenerAllowHalfOpen = false;
  /**
   * Bytes moved on this connection (either side) since the last sweep: the
   * hot path only sets this flag; the sweep turns it into `quietSince`.
   * Starts set, so the first sweep starts the count.
   */
  heard = true;
  /** The sweep's clock when the connection was last heard from (stream idle, linger). */
  private quietSince = 0;
  private readonly headReader: HeadReader;
  private stash: Buffer | undefined = undefined;
  private processing = false;
  private readPaused = false;
  // Armed deadlines: their start is stamped by the next sweep (-1 until then), so arming reads no clock.
  private idleArmed = false;
  private idleSince = -1;
  private headerArmed = false;
  private headerSince = -1;
  /** The held part of the current head already contains the request line's CRLF. */
  private requestLineEnded = false;

  constructor(
    readonly socket: Socket,
    readonly deps: Http1Deps,
    accepted: AcceptedConnection,
  ) {
    this.limits = deps.limits;
    this.headReader = new HeadReader(deps.limits.maxHeaderBytes);
    this.remoteAddress = accepted.remoteAddress;
    this.remotePort = accepted.remotePort;
    this.originalTarget = accepted.target;
    const peerFields = deps.direction.direction === 'outbound' ? peerMetadataFields(deps.telemetry.identity) : '';
    this.exchange = new Exchange(this, peerFields);
  }

  /** Starts with the bytes protocol detection already read. */
  begin(head: Buffer): void {
    if (head.length > 0) this.feed(head);
    else this.becameIdle();
  }

  onData(chunk: Buffer): void {
    this.heard = true;
    switch (this.state) {
      case D_HEAD:
      case D_BODY:
        this.feed(chunk);
        return;
      case D_WAIT:
        this.hold(chunk, 0);
        return;
      case D_TUNNEL:
        this.exchange.tunnelToUpstream(chunk);
        return;
      default:
      // D_CLOSED: discarded while lingering.
    }
  }

  /** Runs bytes through the request loop; requests answered synchronously do not recurse. */
  private feed(buf: Buffer): void {
    const len = buf.length;
    let start = 0;
    this.processing = true;
    while (start < len) {
      const state = this.state;
      if (state === D_HEAD) start = this.readHead(buf, start);
      else if (state === D_BODY) start = this.exchange.onRequestBody(buf, start);
      else if (state === D_WAIT) {
        this.hold(buf, start);
        break;
      } else if (state === D_TUNNEL) {
        this.exchange.tunnelToUpstream(start === 0 ? buf : buf.subarray(start));
        break;
      } else break;
    }
    this.processing = false;
    if (this.state === D_HEAD) {
      if (!this.headReader.holding) this.becameIdle();
      this.resumeReading();
    }
  }

  /** Holds pipelined bytes until the current response is done. */
  private hold(buf: Buffer, start: number): void {
    const part = start === 0 ? buf : buf.subarray(start);
    this.stash = this.stash === undefined ? part : Buffer.concat([this.stash, part]);
    if (this.stash.length > STASH_LIMIT) this.pauseReading();
  }

  /** The held bytes, taken (for the tunnel after a 101). */
  takeStash(): Buffer | undefined {
    const stash = this.stash;
    this.stash = undefined;
    return stash;
  }

  /** Request-head bytes at buf[start…]; returns the offset just past those consumed. */
  private readHead(buf: Buffer, start: number): number {
    const len = buf.length;
    const reader = this.headReader;
    const wasHolding = reader.holding;
    if (!wasHolding) {
      // RFC 9112 §2.2: empty lines before a request line are ignored.
      while (start + 1 < len && buf[start] === CR && buf[start + 1] === LF) start += 2;
      if (start >= len) return len;
      this.idleArmed = false;
    }
    const heldBefore = reader.pending.length;
    const next = reader.read(buf, start);
    if (next >= 0) {
      this.headerArmed = false;
      this.requestLineEnded = false;
      return this.beginRequest(reader, buf, next);
    }
    if (next === HEAD_TOO_LARGE) {
      this.refuseLargeHead();
      return len;
    }
    if (!wasHolding) this.armHeaderTimer();
    this.checkIncompleteHead(heldBefore);
    return len;
  }

  /** Over maxHeaderBytes: 414 when the request line alone is what is too long, else 431. */
  private refuseLargeHead(): void {
    const limits = this.limits;
    if (this.headReader.pending.indexOf(CRLF, 0) < 0) this.refuse(wireErrorWithStatus('DPE', 414, `request target longer than ${limits.maxUrlLength} bytes`));
    else this.refuse(wireErrorWithStatus('DPE', 431, `request head larger than ${limits.maxHeaderBytes} bytes`));
  }

  /**
   * A head still without its end: refuse it early when it can no longer
   * become valid. Only the newly held bytes are searched, so a head fed a
   * byte at a time costs linear time.
   */
  private checkIncompleteHead(heldBefore: number): void {
    const pending = this.headReader.pending;
    const limits = this.limits;
    const from = Math.max(0, heldBefore - 1);
    if (!this.requestLineEnded) {
      if (pending.indexOf(CRLF, from) >= 0) this.requestLineEnded = true;
      else if (pending.length > limits.maxUrlLength + REQUEST_LINE_SLACK) {
        this.refuse(wireErrorWithStatus('DPE', 414, `request target longer than ${limits.maxUrlLength} bytes`));
        return;
      }
    }
    if (pending.indexOf(BARE_LF_END, from) >= 0) this.refuse(wireError('DPE', 'bare LF line endings in the request head'));
  }

  private beginRequest(reader: HeadReader, buf: Buffer, next: number): number {
    const head = this.head;
    const status = parseRequestHead(reader.text, reader.bytes, reader.base, head, this.limits);
    reader.forgetBytes();
    if (status !== HEAD_OK) {
      this.refuse(status === 400 ? wireError('DPE', head.error) : wireErrorWithStatus('DPE', status, head.error), head.method);
      return buf.length;
    }
    if (head.method === 'CONNECT') {
      this.connect(buf, next);
      return buf.length;
    }
    return this.exchange.start(head, buf, next);
  }

  private connect(buf: Buffer, next: number): void {
    const onConnect = this.deps.onConnect;
    if (onConnect === undefined) {
      this.refuse(wireErrorWithStatus('DPE', 405, 'CONNECT is not accepted here'), 'CONNECT');
      return;
    }
    const target = this.exchange.target;
    if (!target.resolveConnect(this.head)) {
      this.refuse(wireError('DPE', target.error), 'CONNECT');
      return;
    }
    // Answered here, before "200 Connection Established", so the client learns the name is unknown
    // instead of seeing a tunnel that closes at once.
    if (this.deps.direction.route(target.host, target.port) === undefined) {
      this.refuse(wireError('NR', `no service is known as ${target.host}:${target.port}`), 'CONNECT');
      return;
    }
    // Hand over: stop reading as HTTP, leave the socket paused for the listener tier.
    const socket = this.socket;
    this.state = D_CLOSED;
    this.idleArmed = false;
    this.headerArmed = false;
    socket.pause();
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onClose);
    socket.removeListener('drain', onDrain);
    this.deps.pool.deadlines.delete(this);
    socket.allowHalfOpen = this.listenerAllowHalfOpen;
    // onError stays: a no-op that keeps a late error from being unhandled before the new owner listens.
    socket.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    const rest = next < buf.length ? buf.subarray(next) : EMPTY;
    onConnect(socket, { host: target.host, port: target.port }, rest, this.remoteAddress, this.remotePort);
  }

  /** Answers a request the proxy will not serve and closes. */
  private refuse(err: ReturnType<typeof wireError>, method = ''): void {
    if (this.state === D_CLOSED) return;
    answerRefusal(this, err, method);
    this.closeGracefully();
  }

  /** Called by the exchange when its response is done (or it was aborted). */
  onExchangeDone(close: boolean): void {
    if (this.state === D_CLOSED) return;
    if (close || this.clientEnded) {
      this.closeGracefully();
      return;
    }
    this.state = D_HEAD;
    if (this.processing) return; // the feed loop goes on with the rest of its buffer
    const stash = this.stash;
    this.stash = undefined;
    if (stash !== undefined) this.feed(stash);
    else this.becameIdle();
    if (this.state !== D_CLOSED) this.resumeReading();
  }

  private becameIdle(): void {
    if (this.clientEnded) {
      this.closeGracefully();
      return;
    }
    if (this.limits.idleTimeoutMs <= 0) return;
    this.idleArmed = true;
    this.idleSince = -1;
  }

  private armHeaderTimer(): void {
    if (this.limits.requestHeaderTimeoutMs <= 0) return;
    this.headerArmed = true;
    this.headerSince = -1;
  }

  /** The direction's sweep: whichever of this connection's deadlines has passed acts. */
  sweep(now: number): void {
    if (this.heard) {
      this.heard = false;
      this.quietSince = now;
    }
    const limits = this.limits;
    if (this.state === D_CLOSED) {
      // Lingering after closeGracefully: a client that neither closes nor sends is reset.
      if (now - this.quietSince >= LINGER_MS) this.socket.destroy();
      return;
    }
    if (this.headerArmed) {
      if (this.headerSince < 0) this.headerSince = now;
      else if (now - this.headerSince >= limits.requestHeaderTimeoutMs) this.onHeaderTimeout();
    }
    if (this.idleArmed) {
      if (this.idleSince < 0) this.idleSince = now;
      else if (now - this.idleSince >= limits.idleTimeoutMs) this.onIdleTimeout();
    }
    const exchange = this.exchange;
    if (this.state === D_CLOSED || !exchange.active) return;
    exchange.checkResponseDeadline(now);
    const streamIdleMs = limits.streamIdleTimeoutMs;
    if (exchange.active && streamIdleMs > 0 && now - this.quietSince >= streamIdleMs) exchange.onStreamIdle();
  }

  private onIdleTimeout(): void {
    if (this.state !== D_HEAD || this.headReader.holding) return;
    this.idleArmed = false;
    this.closeGracefully();
  }

  private onHeaderTimeout(): void {
    if (this.state !== D_HEAD) return;
    this.headerArmed = false;
    this.refuse(wireError('RT', `request head not complete within ${this.limits.requestHeaderTimeoutMs} ms`));
  }

  pauseReading(): void {
    if (!this.readPaused) {
      this.readPaused = true;
      this.socket.pause();
    }
  }

  resumeReading(): void {
    if (this.readPaused && (this.state !== D_WAIT || this.stash === undefined)) {
      this.readPaused = false;
      this.socket.resume();
    }
  }

  onEnd(): void {
    switch (this.state) {
      case D_HEAD:
        this.closeGracefully();
        return;
      case D_BODY:
        this.exchange.onDownstreamEnd();
        return;
      case D_WAIT:
        this.clientEnded = true;
        return;
      case D_TUNNEL:
        this.exchange.onDownstreamEnd();
        return;
      default:
    }
  }

  onClose(): void {
    const state = this.state;
    this.state = D_CLOSED;
    this.idleArmed = false;
    this.headerArmed = false;
    this.stash = undefined;
    this.deps.pool.deadlines.delete(this);
    if (state !== D_CLOSED || this.exchange.active) this.exchange.onDownstreamGone('downstream connection closed before the response completed');
  }

  /** Ends the connection after what was written; reads and drops the rest until the client closes or the linger ends. */
  closeGracefully(): void {
    this.state = D_CLOSED;
    this.idleArmed = false;
    this.headerArmed = false;
    this.stash = undefined;
    const socket = this.socket;
    if (socket.destroyed) return;
    socket.end();
    this.heard = true; // the linger counts from the next sweep
    if (this.readPaused) {
      this.readPaused = false;
      socket.resume();
    }
  }
}

/** Serves one accepted HTTP/1.x connection until it closes (or is handed over by CONNECT). */
export function serveHttp1(accepted: AcceptedConnection, deps: Http1Deps): void {
  const socket = accepted.socket as ServedSocket;
  const conn = new DownstreamConnection(socket, deps, accepted);
  socket[CONN] = conn;
  // Half-closes are decided here: a client FIN after a complete request still gets its response.
  conn.listenerAllowHalfOpen = socket.allowHalfOpen;
  socket.allowHalfOpen = true;
  socket.setNoDelay(true);
  socket.on('data', onData);
  socket.on('end', onEnd);
  socket.on('close', onClose);
  socket.on('drain', onDrain);
  socket.on('error', onError);
  if (socket.destroyed) {
    conn.onClose();
    return;
  }
  deps.pool.deadlines.add(conn);
  conn.begin(accepted.head);
  if (conn.state !== D_CLOSED) socket.resume();
}
