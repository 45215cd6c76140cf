/**
 * Sessions that node:http2 leaves in a state it does not report: a stream
 * destroyed before its 'stream' event, a session nghttp2 stopped after a
 * connection error with a stream in flight, a client that half-closed. Each
 * must cost the client its connection, never the process, and never hold
 * the socket for good. Raw frames on real sockets.
 */
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { eventually } from '../../test/support/collector-harness.js';
import { F_END_HEADERS, F_END_STREAM, PREFACE, T_HEADERS, T_WINDOW_UPDATE, frame, goaway, hpack, readH2Answer, requestFields, settings, windowUpdate } from '../../test/support/fuzz/h2-frames.js';
import { startListener, type Listener } from '../listeners/listener.js';
import { h2Call, h2Connect, startH2Upstream, type H2Upstream, type StreamHandler } from './h2-peers.test-helper.js';
import { outboundDirection, service, startProxy, type ProxyOptions, type RunningProxy } from './proxy-fixture.test-helper.js';

const AUTHORITY = 'web:8080';
const START = Buffer.concat([PREFACE, settings([]), frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, 1, hpack(requestFields('GET', AUTHORITY, '/one')))]);
/** Far above the limits the tests set (≤ 300 ms): a connection still open after this is held for good. */
const DEADLINE_MS = 5_000;

interface RawOutcome {
  readonly data: Buffer;
  /** The proxy closed the connection before the deadline. */
  readonly closedByProxy: boolean;
}

/**
 * Writes `bytes` in one write on a fresh connection (half-closing after it
 * when asked) and reads until the proxy closes the connection or the deadline passes.
 */
function rawExchange(port: number, bytes: Buffer, halfClose = false): Promise<RawOutcome> {
  return new Promise((resolve) => {
    const socket = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const chunks: Buffer[] = [];
    const finish = (closedByProxy: boolean): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ data: Buffer.concat(chunks), closedByProxy });
    };
    const timer = setTimeout(finish, DEADLINE_MS, false);
    socket.on('error', () => {});
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.on('end', () => finish(true));
    socket.on('close', () => finish(true));
    socket.on('connect', () => {
      socket.write(bytes);
      if (halfClose) socket.end();
    });
  });
}

describe('HTTP/2 session lifetime on inputs node does not report', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function upstream(handler: StreamHandler = (stream) => {
    stream.respond({ ':status': 200 });
    stream.end('ok');
  }): Promise<H2Upstream> {
    const up = await startH2Upstream(handler);
    cleanups.push(() => up.close());
    return up;
  }

  async function proxy(upPort: number, options: Partial<ProxyOptions> = {}): Promise<RunningProxy> {
    const p = await startProxy({ direction: outboundDirection([service('web', 8080, [upPort], 'http2')]), ...options });
    cleanups.push(() => p.close());
    return p;
  }

  /**
   * The real listener in front of the proxy, as in production: it hands over the bytes detection read
   * (node then feeds them to the session from JS, so several frames are parsed before the next tick),
   * and it keeps half-closed sockets open (for TCP forwarding).
   */
  async function listen(p: RunningProxy): Promise<Listener> {
    const listener = await startListener({
      name: 'outbound',
      host: '127.0.0.1',
      port: 0,
      detectTimeoutMs: 1_000,
      maxConnections: 10,
      onConnection: (conn) => p.handler.handle(conn),
    });
    cleanups.push(() => listener.close());
    return listener;
  }

  async function released(p: RunningProxy, listener: Listener): Promise<void> {
    await eventually(async () => (listener.activeConnections() === 0 && p.handler.sessionCount === 0 ? true : undefined), 'the connection to be released', DEADLINE_MS);
  }

  /** Exceptions nobody caught while `run` ran (a stream error with no listener is thrown by node). */
  async function uncaughtDuring(run: () => Promise<void>): Promise<string[]> {
    const seen: string[] = [];
    const record = (err: unknown): void => {
      seen.push(err instanceof Error ? err.message : String(err));
    };
    process.on('uncaughtException', record);
    try {
      await run();
    } finally {
      process.removeListener('uncaughtException', record);
    }
    return seen;
  }

  it.each([
    ['WINDOW_UPDATE 0 on the connection (PROTOCOL_ERROR)', windowUpdate(0, 0)],
    ['GOAWAY with error code 2', goaway(0, 2)],
  ])('does not crash when a request and a connection-ending frame arrive in one read: %s', async (_name, ending) => {
    const up = await upstream();
    const p = await proxy(up.port);
    const listener = await listen(p);
    const uncaught = await uncaughtDuring(async () => {
      // node emits 'stream' a tick after the HEADERS; by then the same read has destroyed the
      // session and the stream, whose error follows and was thrown when nobody listened.
      const outcome = await rawExchange(listener.port, Buffer.concat([START, ending]));
      expect(outcome.closedByProxy).toBe(true);
      await released(p, listener);
    });
    expect(uncaught).toEqual([]);
    // Still serving.
    const client = h2Connect(p.port);
    cleanups.push(() => void client.destroy());
    const res = await h2Call(client, { ':method': 'GET', ':path': '/after', ':authority': AUTHORITY });
    expect(res.body.toString()).toBe('ok');
  });

  it('releases a session nghttp2 stopped after a frame-size error with a stream in flight', async () => {
    const up = await upstream();
    const p = await proxy(up.port, { limits: { streamIdleTimeoutMs: 200, idleTimeoutMs: 200, requestHeaderTimeoutMs: 200 } });
    const listener = await listen(p);
    // A WINDOW_UPDATE of 16 bytes: nghttp2 sends GOAWAY FRAME_SIZE_ERROR and stops reading and
    // writing; node reports nothing and the stream in flight never closes. The client keeps its
    // socket open: only the proxy can end this.
    const outcome = await rawExchange(listener.port, Buffer.concat([START, frame(T_WINDOW_UPDATE, 0, 5, Buffer.alloc(16))]));
    expect(readH2Answer(outcome.data).goawayCode).toBe(6);
    expect(outcome.closedByProxy).toBe(true);
    await released(p, listener);
  });

  it('ends the session of a client that half-closed in the middle of a frame, after a request', async () => {
    const up = await upstream();
    const p = await proxy(up.port, { limits: { idleTimeoutMs: 300, streamIdleTimeoutMs: 300 } });
    const listener = await listen(p);
    // The second HEADERS is cut short and the client half-closes. The listener keeps the socket
    // open; node:http2 does not read the end of input as the end of the session, and the GOAWAY of
    // the idle timeout leaves it closing but never destroyed (nghttp2 is mid-frame).
    const next = frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, 3, hpack(requestFields('GET', AUTHORITY, '/two')));
    const outcome = await rawExchange(listener.port, Buffer.concat([START, next.subarray(0, 20)]), true);
    expect(readH2Answer(outcome.data).okStreams.has(1)).toBe(true);
    expect(outcome.closedByProxy).toBe(true);
    await released(p, listener);
  });

  it('keeps a quiet session whose client answers the liveness PING, with its stream in flight', async () => {
    let release: () => void = () => {};
    const up = await upstream((stream) => {
      release = () => {
        stream.respond({ ':status': 200 });
        stream.end('late');
      };
    });
    // No stream idle timeout: only the session's own checks run while the upstream is silent.
    const p = await proxy(up.port, { limits: { idleTimeoutMs: 100, streamIdleTimeoutMs: 0, requestTimeoutMs: 0 } });
    const client = h2Connect(p.port);
    cleanups.push(() => void client.destroy());
    let pings = 0;
    const twoPings = new Promise<void>((resolve) =>
      client.on('ping', () => {
        if (++pings === 2) resolve();
      }),
    );
    const sessionClosed = new Promise<string>((resolve) => client.once('close', () => resolve('the proxy ended the session')));
    const call = h2Call(client, { ':method': 'GET', ':path': '/slow', ':authority': AUTHORITY });
    // The second probe comes after the first one's ACK deadline (100 ms): the session lived past it.
    expect(await Promise.race([twoPings.then(() => 'two pings'), sessionClosed])).toBe('two pings');
    release();
    const res = await call;
    expect(res.headers?.[':status']).toBe(200);
    expect(res.body.toString()).toBe('late');
    expect(p.handler.sessionCount).toBe(1);
  });
});
