/**
 * One request/response forwarded from a downstream connection to an upstream
 * endpoint: routing, the upstream head, the request body (raw, with
 * backpressure), interim responses, the response head and body, the keep-alive
 * decision on both sides, every failure mapped through errors-to-wire.ts, the
 * retry of a request that met a stale pooled connection, and the raw pipe
 * after a 101. One Exchange per downstream connection, reused for each of its
 * requests (they are served in order), so a request allocates only its
 * observation, its strings and its upstream writes.
 */
import { randomUUID } from 'node:crypto';
import type { Socket } from 'node:net';
import { upstreamSocketFlag, wireError, wireErrorBody, type ResponseFlag, type WireError } from '../errors-to-wire.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import { finishHttpObservation, type HttpObservation } from '../telemetry/http-observation.js';
import { extractTraceContext } from '../telemetry/trace-context.js';
import { BODY_ERROR, BODY_MORE, BODY_NONE, BODY_UNTIL_CLOSE, BodyFraming } from './body-framing.js';
import { D_BODY, D_TUNNEL, D_WAIT } from './conn-state.js';
import { HttpHead } from './head.js';
import { HEAD_INCOMPLETE, HEAD_TOO_LARGE, HeadReader } from './head-reader.js';
import { errorResponse, keptFieldLines, responseStatusLine, writeHeadAndBody } from './head-writer.js';
import { H_KEEP_ALIVE, H_TRACEPARENT, H_UPGRADE, H_USER_AGENT, H_X_REQUEST_ID } from './header-kinds.js';
import { forwardResponseField } from './hop-by-hop.js';
import { HEAD_OK, parseResponseHead } from './parser.js';
import { newHttp1Observation } from './refusal.js';
import { RequestTarget } from './request-target.js';
import { RouteChoice, routeRequest } from './routing.js';
import type { DownstreamConnection } from './serve.js';
import type { UpstreamClient, UpstreamConnection } from './upstream-pool.js';
import { upstreamRequestHead, type UpstreamRequestOptions } from './upstream-request.js';

const R_HEAD = 0; // waiting for the (final) response head
const R_BODY = 1; // forwarding the response body
const R_DONE = 2; // response complete (or answered by the proxy)
const R_TUNNEL = 3; // 101 received: raw bytes both ways

/** Methods whose retry on a fresh connection cannot repeat a side effect (RFC 9110 §9.2.2). */
function isIdempotent(method: string): boolean {
  return method === 'GET' || method === 'HEAD' || method === 'OPTIONS' || method === 'PUT' || method === 'DELETE' || method === 'TRACE';
}

/**
 * After bytes of an upstream read went to the downstream socket: when the
 * socket queued them instead of sending them at once, they still point into
 * the upstream connection's read buffer, which must not be read into again.
 */
function lendIfQueued(down: Socket, up: UpstreamConnection | undefined): void {
  if (down.writableLength > 0 && up !== undefined) up.lendReadBuffer();
}

/**
 * Writes bytes of an upstream read downstream. Behind a queue they are
 * copied: they would wait anyway, and so at most one read buffer per
 * connection is ever held by a queue (a slow client cannot pin one per read).
 */
function forwardUpstreamBytes(down: Socket, up: UpstreamConnection | undefined, bytes: Buffer): boolean {
  if (down.writableLength > 0) return down.write(Buffer.from(bytes));
  const ok = down.write(bytes);
  lendIfQueued(down, up);
  return ok;
}

export class Exchange implements UpstreamClient, UpstreamRequestOptions {
  active = false;
  obs: HttpObservation | undefined = undefined;
  readonly target = new RequestTarget();
  private readonly response = new HttpHead();
  private readonly responseHeadReader: HeadReader;
  private readonly requestBody: BodyFraming;
  private readonly responseBody: BodyFraming;
  private readonly choice = new RouteChoice();
  private upstream: UpstreamConnection | undefined = undefined;
  private upstreamHead = '';
  /** The request body bytes sent along with the head; kept so a retry can send them again. */
  private firstBody: Buffer | undefined = undefined;
  /** Body bytes went out after the first write: a retry could not repeat them. */
  private moreBodySent = false;
  private retried = false;
  private requestDone = false;
  private phase = R_DONE;
  private finalHeadSent = false;
  private upstreamBytes = 0;
  private upstreamReusable = false;
  private upstreamPaused = false;
  /** The downstream connection closes after this exchange. */
  private closeAfter = false;
  /** The client wants the connection kept (HTTP/1.1 default, or 1.0 with keep-alive). */
  private keepAlive = true;
  /** Waiting for the response head; the connection's sweep stamps responseSince (-1 until then) and checks it. */
  private responseTimerArmed = false;
  private responseSince = -1;

  // UpstreamRequestOptions, read by upstreamRequestHead.
  explicitProxy = false;
  upgrade = false;
  readonly rewriteTraceContext: boolean;
  newRequestId = '';
  readonly peerFields: string;
  readonly clientAddress: string;

  constructor(
    private readonly conn: DownstreamConnection,
    peerFields: string,
  ) {
    const maxMeta = conn.limits.maxHeaderBytes;
    this.responseHeadReader = new HeadReader(maxMeta);
    this.requestBody = new BodyFraming(maxMeta);
    this.responseBody = new BodyFraming(maxMeta);
    this.peerFields = peerFields;
    this.clientAddress = conn.remoteAddress;
    this.rewriteTraceContext = conn.deps.telemetry.tracing;
  }

  /**
   * Starts forwarding a parsed request whose body (if any) begins at
   * buf[bodyStart]. Returns the offset just past the bytes it consumed.
   */
  start(head: HttpHead, buf: Buffer, bodyStart: number): number {
    const conn = this.conn;
    this.active = true;
    this.upstream = undefined;
    this.firstBody = undefined;
    this.moreBodySent = false;
    this.retried = false;
    this.phase = R_HEAD;
    this.finalHeadSent = false;
    this.upstreamBytes = 0;
    this.upstreamReusable = false;
    this.upstreamPaused = false;
    this.closeAfter = false;
    this.responseHeadReader.reset();
    this.keepAlive = head.versionMinor >= 1 ? !head.connectionClose : head.connectionKeepAlive && !head.connectionClose;
    this.upgrade = head.connectionUpgrade && head.firstOf[H_UPGRADE] !== -1;
    this.requestBody.startRequest(head, conn.limits.maxHeaderBytes);
    this.requestDone = this.requestBody.mode === BODY_NONE;
    const obs = this.observe(head);

    const failure = routeRequest(conn, head, this.target, obs, this.choice);
    // Proxy-Authorization / Proxy-Authenticate were for this proxy only when the client used it as its forward proxy.
    this.explicitProxy = this.target.absolute && conn.deps.direction.direction === 'outbound';
    if (failure !== undefined) return this.answerEarly(failure, buf, bodyStart);
    this.upstreamHead = upstreamRequestHead(head, this.target, obs, this);
    let end = bodyStart;
    if (!this.requestDone) {
      const r = this.requestBody.consume(buf, bodyStart, buf.length);
      if (r === BODY_ERROR) return this.answerEarly(wireError('DPE', this.requestBody.error), buf, bodyStart);
      end = r === BODY_MORE ? buf.length : r;
      if (end > bodyStart) this.firstBody = buf.subarray(bodyStart, end);
      if (r !== BODY_MORE) this.requestDone = true;
    }
    conn.state = this.requestDone ? D_WAIT : D_BODY;
    this.upstream = conn.deps.pool.acquire(this.choice.endpoint as ClusterEndpoint, this);
    this.sendHead();
    if (this.requestDone) this.onRequestComplete();
    return end;
  }

  /** The request's observation: its trace context (continued or new) and what the request says about itself. */
  private observe(head: HttpHead): HttpObservation {
    // Most requests carry no B3 and at most a traceparent: skip the lookups when neither is there.
    // With tracing off the proxy makes no span, so it continues no context either (trace fields pass untouched).
    const traced = this.rewriteTraceContext && (head.firstOf[H_TRACEPARENT] !== -1 || head.hasB3);
    const obs = newHttp1Observation(this.conn, traced ? extractTraceContext(head.lookup) : undefined);
    this.obs = obs;
    obs.method = head.method;
    obs.userAgent = head.valueOf(H_USER_AGENT) ?? '';
    const requestId = head.valueOf(H_X_REQUEST_ID);
    this.newRequestId = requestId === undefined || requestId === '' ? randomUUID() : '';
    obs.requestId = this.newRequestId === '' ? (requestId as string) : this.newRequestId;
    return obs;
  }

  /** The proxy answers before anything went upstream (no route, bad target…). */
  private answerEarly(err: WireError, buf: Buffer, bodyStart: number): number {
    this.answer(err, false);
    // The connection stays only when the request had no body left unread.
    return this.requestDone ? bodyStart : buf.length;
  }

  private sendHead(): void {
    const up = this.upstream as UpstreamConnection;
    const ok = writeHeadAndBody(up.socket, this.upstreamHead, this.firstBody);
    if (!this.requestDone) {
      if (!ok) this.conn.pauseReading();
      else this.conn.resumeReading();
    }
  }

  /** Request body bytes at buf[start…]; returns the offset just past those consumed. */
  onRequestBody(buf: Buffer, start: number): number {
    const r = this.requestBody.consume(buf, start, buf.length);
    if (r === BODY_ERROR) {
      this.failRequest(wireError('DPE', this.requestBody.error));
      return buf.length;
    }
    const end = r === BODY_MORE ? buf.length : r;
    if (end > start) {
      this.moreBodySent = true;
      const up = this.upstream;
      if (up !== undefined && !up.socket.write(start === 0 && end === buf.length ? buf : buf.subarray(start, end))) this.conn.pauseReading();
    }
    if (r !== BODY_MORE) {
      this.requestDone = true;
      this.conn.state = D_WAIT;
      this.onRequestComplete();
    }
    return end;
  }

  private onRequestComplete(): void {
    if (this.phase !== R_HEAD) return;
    if (this.conn.limits.requestTimeoutMs <= 0) return;
    this.responseTimerArmed = true;
    this.responseSince = -1;
  }

  /** From the sweep: the request timeout (end of request to response head) has passed → 504 UT. */
  checkResponseDeadline(now: number): void {
    if (!this.responseTimerArmed) return;
    if (this.responseSince < 0) {
      this.responseSince = now;
      return;
    }
    if (now - this.responseSince < this.conn.limits.requestTimeoutMs || !this.active || this.phase !== R_HEAD) return;
    this.responseTimerArmed = false;
    const key = this.choice.endpointKey;
    this.answer(wireError('UT', `no response from ${key} within ${this.conn.limits.requestTimeoutMs} ms`), true);
  }

  // ---- upstream events -------------------------------------------------

  onUpstreamData(up: UpstreamConnection, chunk: Buffer): void {
    if (up !== this.upstream) return;
    this.conn.heard = true;
    this.upstreamBytes += chunk.length;
    switch (this.phase) {
      case R_HEAD:
        this.readResponseHead(chunk, 0);
        return;
      case R_BODY:
        this.forwardResponseBody(chunk, 0, '');
        return;
      case R_TUNNEL:
        if (this.obs !== undefined) this.obs.responseBytes += chunk.length;
        if (!forwardUpstreamBytes(this.conn.socket, up, chunk)) this.pauseUpstream();
        return;
      default:
        // Bytes after a complete response: the connection is out of step, never reuse it.
        this.upstreamReusable = false;
    }
  }

  onUpstreamEnd(up: UpstreamConnection): void {
    if (up !== this.upstream) return;
    if (this.phase === R_TUNNEL) {
      this.conn.socket.end();
      return;
    }
    if (this.phase === R_BODY && this.responseBody.mode === BODY_UNTIL_CLOSE) {
      this.upstreamReusable = false;
      this.responseComplete(false);
      return;
    }
    this.upstreamLost(up, undefined);
  }

  onUpstreamClose(up: UpstreamConnection, err: Error | undefined): void {
    if (up !== this.upstream) return;
    this.upstream = undefined;
    if (this.phase === R_TUNNEL) {
      if (err === undefined) {
        this.endTunnel(undefined);
      } else {
        const message = `${this.choice.endpointKey}: ${err.message}`;
        (this.obs as HttpObservation).addFlag('UC', message);
        this.endTunnel(message);
      }
      return;
    }
    this.upstreamLost(up, err);
  }

  onUpstreamDrain(up: UpstreamConnection): void {
    if (up !== this.upstream) return;
    this.conn.heard = true;
    this.conn.resumeReading();
  }

  onDownstreamDrain(): void {
    if (this.upstreamPaused) {
      this.upstreamPaused = false;
      if (this.upstream !== undefined) this.upstream.socket.resume();
    }
  }

  private pauseUpstream(): void {
    if (this.upstream !== undefined) {
      this.upstream.socket.pause();
      this.upstreamPaused = true;
    }
  }

  /** The upstream connection ended or failed before the response did. */
  private upstreamLost(up: UpstreamConnection, err: Error | undefined): void {
    if (this.phase === R_HEAD && this.upstreamBytes === 0 && up.completedRequests > 0 && !this.retried && this.canRetry()) {
      // The keep-alive race: the server closed the pooled connection as we sent on it.
      this.retried = true;
      if (this.upstream !== undefined) this.conn.deps.pool.discard(this.upstream);
      this.upstream = this.conn.deps.pool.connectFresh(this.choice.endpoint as ClusterEndpoint, this);
      this.sendHead();
      return;
    }
    const key = this.choice.endpointKey;
    const detail = err === undefined ? `${key} closed the connection` : `${key}: ${err.message}`;
    if (this.phase === R_HEAD) {
      const flag: ResponseFlag = err === undefined ? (up.connected ? 'UC' : 'UF') : upstreamSocketFlag(err as NodeJS.ErrnoException, up.connected);
      this.answer(wireError(flag, detail), true);
    } else if (this.phase === R_BODY) {
      this.abortResponse('UC', `response body cut short: ${detail}`);
    }
  }

  private canRetry(): boolean {
    return !this.moreBodySent && (this.firstBody === undefined || isIdempotent((this.obs as HttpObservation).method));
  }

  // ---- response ----------------------------------------------------------

  /** Response head bytes at chunk[start…]: interim responses are relayed, the final one starts the body. */
  private readResponseHead(chunk: Buffer, start: number): void {
    const limits = this.conn.limits;
    const reader = this.responseHeadReader;
    const response = this.response;
    for (;;) {
      const next = reader.read(chunk, start);
      if (next === HEAD_INCOMPLETE) return;
      if (next === HEAD_TOO_LARGE) return this.upstreamProtocolError(`response head larger than ${limits.maxHeaderBytes} bytes`);
      const parsed = parseResponseHead(reader.text, reader.bytes, reader.base, response, limits);
      reader.forgetBytes();
      if (parsed !== HEAD_OK) return this.upstreamProtocolError(response.error);
      const status = response.statusCode;
      if (status >= 200) return this.onFinalHead(chunk, next);
      if (status === 101) {
        if (!this.upgrade) return this.upstreamProtocolError('101 Switching Protocols to a request that asked for no upgrade');
        return this.startTunnel(chunk, next);
      }
      this.relayInterim();
      if (next >= chunk.length) return;
      start = next;
    }
  }

  /** 1xx (100 Continue, 103 Early Hints…) go to HTTP/1.1 clients before the final response (RFC 9110 §15.2). */
  private relayInterim(): void {
    if (this.conn.head.versionMinor === 0) return;
    const response = this.response;
    this.conn.socket.write(responseStatusLine(response) + keptFieldLines(response, forwardResponseField, this.explicitProxy, false, false) + '\r\n', 'latin1');
  }

  private onFinalHead(chunk: Buffer, bodyStart: number): void {
    const response = this.response;
    const obs = this.obs as HttpObservation;
    const conn = this.conn;
    this.responseTimerArmed = false;
    obs.statusCode = response.statusCode;
    if (!this.responseBody.startResponse(response, obs.method, conn.limits.maxHeaderBytes)) {
      return this.upstreamProtocolError('chunked is not the last transfer coding');
    }
    const keepAliveHint = response.valueOf(H_KEEP_ALIVE);
    if (keepAliveHint !== undefined && this.upstream !== undefined) this.upstream.applyKeepAliveHint(keepAliveHint);
    const untilClose = this.responseBody.mode === BODY_UNTIL_CLOSE;
    this.upstreamReusable = !untilClose && !response.connectionClose && (response.versionMinor >= 1 || response.connectionKeepAlive);
    if (untilClose || !this.keepAlive || conn.clientEnded) this.closeAfter = true;
    let head = responseStatusLine(response) + keptFieldLines(response, forwardResponseField, this.explicitProxy, false, false);
    if (this.closeAfter) head += 'connection: close\r\n';
    else if (conn.head.versionMinor === 0) head += 'connection: keep-alive\r\n';
    this.finalHeadSent = true;
    this.phase = R_BODY;
    this.forwardResponseBody(chunk, bodyStart, head + '\r\n');
  }

  /** Body bytes at chunk[start…], preceded by the response head when it is still to be written. */
  private forwardResponseBody(chunk: Buffer, start: number, head: string): void {
    const framing = this.responseBody;
    let end = start;
    let complete: boolean;
    if (framing.mode === BODY_NONE) {
      complete = true;
    } else {
      const r = framing.consume(chunk, start, chunk.length);
      if (r === BODY_ERROR) {
        if (head !== '') this.conn.socket.write(head, 'latin1');
        return this.abortResponse('UPE', `malformed chunked response body: ${framing.error}`);
      }
      end = r === BODY_MORE ? chunk.length : r;
      complete = r !== BODY_MORE;
    }
    const down = this.conn.socket;
    let ok: boolean;
    if (head !== '') {
      ok = writeHeadAndBody(down, head, end > start ? chunk.subarray(start, end) : undefined);
      lendIfQueued(down, this.upstream);
    } else {
      ok = end > start ? forwardUpstreamBytes(down, this.upstream, start === 0 && end === chunk.length ? chunk : chunk.subarray(start, end)) : true;
    }
    if (complete) this.responseComplete(end < chunk.length);
    else if (!ok) this.pauseUpstream();
  }

  private responseComplete(extraBytes: boolean): void {
    this.phase = R_DONE;
    const obs = this.obs as HttpObservation;
    obs.responseBytes = this.responseBody.bodyBytes;
    const up = this.upstream;
    this.upstream = undefined;
    const pool = this.conn.deps.pool;
    if (up !== undefined) {
      // A response that ended before its request did leaves the upstream mid-request: close both ways.
      if (!this.requestDone) {
        this.closeAfter = true;
        pool.discard(up);
      } else if (this.upstreamReusable && !extraBytes) {
        pool.release(up);
      } else {
        pool.discard(up);
      }
    }
    this.finish(undefined);
  }

  private upstreamProtocolError(reason: string): void {
    const key = this.choice.endpointKey;
    if (this.finalHeadSent) this.abortResponse('UPE', `${key}: ${reason}`);
    else this.answer(wireError('UPE', `${key}: ${reason}`), true);
  }

  // ---- ends ----------------------------------------------------------------

  /**
   * The proxy answers instead of the upstream (nothing of a final response
   * was sent yet). `endpointFailure` counts it against the endpoint.
   */
  private answer(err: WireError, endpointFailure: boolean): void {
    const obs = this.obs as HttpObservation;
    const conn = this.conn;
    if (this.upstream !== undefined) {
      conn.deps.pool.discard(this.upstream);
      this.upstream = undefined;
    }
    this.phase = R_DONE;
    obs.addFlag(err.flag, err.message);
    obs.statusCode = err.httpStatus;
    this.closeAfter = err.closeDownstream || !this.requestDone || !this.keepAlive || conn.clientEnded;
    const isHead = obs.method === 'HEAD';
    obs.responseBytes = isHead ? 0 : wireErrorBody(err).length;
    conn.socket.write(errorResponse(err, this.closeAfter, isHead), 'latin1');
    this.finish(endpointFailure ? err.message : undefined);
  }

  /** A failure after the response head went downstream: the client must see the body cut short, so the connection is destroyed. */
  private abortResponse(flag: ResponseFlag, message: string): void {
    const obs = this.obs as HttpObservation;
    obs.addFlag(flag, message);
    obs.responseBytes = this.responseBody.bodyBytes;
    this.phase = R_DONE;
    if (this.upstream !== undefined) {
      this.conn.deps.pool.discard(this.upstream);
      this.upstream = undefined;
    }
    this.closeAfter = true;
    this.conn.socket.destroy();
    this.finish(message);
  }

  /** The request itself turned out malformed after forwarding began (a bad chunk). */
  private failRequest(err: WireError): void {
    if (this.finalHeadSent) this.abortResponse(err.flag, err.message);
    else this.answer(err, false);
  }

  /** The client went away (FIN before the request ended, or the socket closed). */
  onDownstreamGone(reason: string): void {
    if (!this.active) return;
    if (this.phase === R_TUNNEL) {
      this.endTunnel(undefined);
      return;
    }
    const obs = this.obs as HttpObservation;
    obs.addFlag('DC', reason);
    if (!this.finalHeadSent) obs.statusCode = wireError('DC').httpStatus;
    obs.responseBytes = this.responseBody.bodyBytes;
    this.phase = R_DONE;
    if (this.upstream !== undefined) {
      this.conn.deps.pool.discard(this.upstream);
      this.upstream = undefined;
    }
    this.closeAfter = true;
    this.conn.socket.destroy();
    this.finish(undefined);
  }

  /** The client half-closed: fine once the request is complete (the response still goes out), else DC. */
  onDownstreamEnd(): void {
    if (!this.active) return;
    if (this.phase === R_TUNNEL) {
      if (this.upstream !== undefined) this.upstream.socket.end();
      return;
    }
    if (!this.requestDone) this.onDownstreamGone('downstream closed before the request ended');
  }

  /** No bytes either way for streamIdleTimeoutMs. */
  onStreamIdle(): void {
    if (!this.active) return;
    const message = `no bytes for ${this.conn.limits.streamIdleTimeoutMs} ms`;
    if (this.phase === R_TUNNEL) {
      (this.obs as HttpObservation).addFlag('SI', message);
      this.endTunnel(message);
    } else if (this.finalHeadSent) {
      this.abortResponse('SI', message);
    } else {
      this.answer(wireError('SI', message), false);
    }
  }

  private finish(endpointFailure: string | undefined): void {
    const obs = this.obs as HttpObservation;
    this.obs = undefined;
    this.active = false;
    this.responseTimerArmed = false;
    this.firstBody = undefined;
    this.upstreamHead = '';
    if (obs.requestBytes === 0) obs.requestBytes = this.requestBody.bodyBytes;
    this.choice.end(endpointFailure);
    finishHttpObservation(this.conn.deps.telemetry, obs);
    this.conn.onExchangeDone(this.closeAfter);
  }

  // ---- 101: raw pipe ---------------------------------------------------------

  private startTunnel(chunk: Buffer, next: number): void {
    const response = this.response;
    const conn = this.conn;
    this.responseTimerArmed = false;
    (this.obs as HttpObservation).statusCode = 101;
    this.phase = R_TUNNEL;
    this.finalHeadSent = true;
    this.closeAfter = true;
    conn.state = D_TUNNEL;
    const head = responseStatusLine(response) + keptFieldLines(response, forwardResponseField, this.explicitProxy, true, false) + 'connection: upgrade\r\n\r\n';
    const ok = writeHeadAndBody(conn.socket, head, next < chunk.length ? chunk.subarray(next) : undefined);
    lendIfQueued(conn.socket, this.upstream);
    if (next < chunk.length) (this.obs as HttpObservation).responseBytes += chunk.length - next;
    if (!ok) this.pauseUpstream();
    // Bytes the client sent after its upgrade request, held while the answer was pending.
    const early = conn.takeStash();
    if (early !== undefined) this.tunnelToUpstream(early);
    conn.resumeReading();
  }

  tunnelToUpstream(chunk: Buffer): void {
    const up = this.upstream;
    if (up === undefined) return;
    (this.obs as HttpObservation).requestBytes += chunk.length;
    if (!up.socket.write(chunk)) this.conn.pauseReading();
  }

  /** The pipe ends with either side closing: a clean close lets the other side flush and end, a failed one resets it. */
  private endTunnel(error: string | undefined): void {
    if (!this.active) return;
    this.phase = R_DONE;
    if (this.upstream !== undefined) {
      this.conn.deps.pool.discard(this.upstream, error === undefined);
      this.upstream = undefined;
    }
    if (error !== undefined) this.conn.socket.destroy();
    this.finish(undefined);
  }
}
