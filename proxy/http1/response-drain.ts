/**
 * A retried response (a 5xx the route's retry policy covers) never goes
 * downstream, but its connection is sound: when its body is framed and
 * small (at most MAX_DRAINED_BODY_BYTES), reading it to its end lets the
 * connection go back to the pool instead of being closed, so a backend
 * answering 503 under load is not also made to accept a new connection per
 * retry. One drain per Exchange, made on its first retry and reused; it
 * owns at most one connection at a time (a second retried response while
 * it is busy is discarded, as before). A stalled body is given up after
 * DRAIN_TIMEOUT_MS.
 */
import { BODY_ERROR, BODY_LENGTH, BODY_MORE, BODY_NONE, BODY_UNTIL_CLOSE, BodyFraming } from './body-framing.js';
import type { HttpHead } from './head.js';
import { H_KEEP_ALIVE } from './header-kinds.js';
import type { Http1UpstreamPool, UpstreamClient, UpstreamConnection } from './upstream-pool.js';

/** The largest retried response body read to its end (bytes on the wire, chunk framing included). */
export const MAX_DRAINED_BODY_BYTES = 64 * 1024;
/** How long the rest of a drained body may take before its connection is closed instead. */
export const DRAIN_TIMEOUT_MS = 1_000;

function onDrainTimeout(drain: ResponseDrain): void {
  drain.timedOut();
}

export class ResponseDrain implements UpstreamClient {
  private readonly framing: BodyFraming;
  private up: UpstreamConnection | undefined = undefined;
  private wireBytes = 0;
  private timer: NodeJS.Timeout | undefined = undefined;

  constructor(
    private readonly pool: Http1UpstreamPool,
    private readonly maxChunkMetaBytes: number,
  ) {
    this.framing = new BodyFraming(maxChunkMetaBytes);
  }

  /**
   * Takes `up`, whose final response head `response` (to a request with
   * `method` that went out whole) was just read and whose body starts at
   * chunk[bodyStart]. True: the drain has the connection (released to the
   * pool already, or when the body ends); false: the caller keeps it (to
   * discard it).
   */
  take(up: UpstreamConnection, response: HttpHead, method: string, chunk: Buffer, bodyStart: number): boolean {
    if (this.up !== undefined) return false;
    if (response.connectionClose || (response.versionMinor === 0 && !response.connectionKeepAlive)) return false;
    const framing = this.framing;
    if (!framing.startResponse(response, method, this.maxChunkMetaBytes) || framing.mode === BODY_UNTIL_CLOSE) return false;
    if (framing.mode === BODY_LENGTH && response.contentLength > MAX_DRAINED_BODY_BYTES) return false;
    const hint = response.valueOf(H_KEEP_ALIVE);
    if (hint !== undefined) up.applyKeepAliveHint(hint);
    this.up = up;
    this.wireBytes = 0;
    up.owner = this;
    if (up.socket.isPaused()) up.socket.resume();
    if (framing.mode === BODY_NONE) {
      this.end(bodyStart === chunk.length);
      return true;
    }
    if (bodyStart < chunk.length) this.consume(chunk, bodyStart);
    // Still reading: the rest of the body has DRAIN_TIMEOUT_MS to come.
    if (this.up === up) this.timer = setTimeout(onDrainTimeout, DRAIN_TIMEOUT_MS, this).unref();
    return true;
  }

  private consume(chunk: Buffer, start: number): void {
    this.wireBytes += chunk.length - start;
    const r = this.framing.consume(chunk, start, chunk.length);
    if (r === BODY_ERROR) return this.end(false);
    if (r === BODY_MORE) {
      if (this.wireBytes > MAX_DRAINED_BODY_BYTES) this.end(false);
      return;
    }
    // Bytes past the body's end: the connection is out of step.
    this.end(r === chunk.length);
  }

  /** The body ended (`reusable`: cleanly, nothing after it) or the drain gives up. */
  private end(reusable: boolean): void {
    const up = this.up;
    if (up === undefined) return;
    this.up = undefined;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
    if (reusable) this.pool.release(up);
    else this.pool.discard(up);
  }

  timedOut(): void {
    this.timer = undefined;
    this.end(false);
  }

  onUpstreamData(up: UpstreamConnection, chunk: Buffer): void {
    if (up === this.up) this.consume(chunk, 0);
  }

  onUpstreamEnd(up: UpstreamConnection): void {
    if (up === this.up) this.end(false);
  }

  onUpstreamClose(up: UpstreamConnection): void {
    if (up !== this.up) return;
    this.up = undefined;
    if (this.timer !== undefined) {
      clearTimeout(this.timer);
      this.timer = undefined;
    }
  }

  onUpstreamDrain(): void {
    // The request went out whole before the response came: nothing waits to be written.
  }

  onUpstreamReady(up: UpstreamConnection): void {
    // A drain never waits for a connection; one handed to it anyway goes back.
    this.pool.release(up);
  }

  onUpstreamWaitExpired(): void {
    // A drain never waits for a connection.
  }
}
