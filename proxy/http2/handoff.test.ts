import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { RESPONSE_FLAGS_HEADER } from '../errors-to-wire.js';
import { DEFAULT_LIMITS } from '../limits.js';
import { startListener } from '../listeners/listener.js';
import { eventually } from '../../test/support/collector-harness.js';
import { h2Call, h2Connect, startH2Upstream, type H2Upstream } from './h2-peers.test-helper.js';
import { acceptedH2c, outboundDirection, service, startProxy, type ProxyOptions, type RunningProxy } from './proxy-fixture.test-helper.js';

const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
const GET = { ':method': 'GET', ':path': '/', ':authority': 'web:8080' };

/** A tiny deterministic PRNG so a failing fuzz case can be replayed. */
function prng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (s * 1664525 + 1013904223) >>> 0;
    return s / 0x1_0000_0000;
  };
}

function frame(type: number, flags: number, streamId: number, payload: Buffer): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(payload.length, 0, 3);
  header[3] = type;
  header[4] = flags;
  header.writeUInt32BE(streamId, 5);
  return Buffer.concat([header, payload]);
}

/** Sends bytes on a raw connection and resolves when the proxy closes it (or the deadline passes: false). */
function sendRaw(port: number, bytes: Buffer[], timeoutMs = 5_000): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1');
    socket.on('error', () => {});
    socket.resume();
    const timer = setTimeout(() => {
      socket.destroy();
      resolve(false);
    }, timeoutMs);
    socket.on('close', () => {
      clearTimeout(timer);
      resolve(true);
    });
    socket.on('connect', () => {
      for (const b of bytes) socket.write(b);
    });
  });
}

describe('HTTP/2 hand-off and session robustness', () => {
  const cleanups: Array<() => Promise<void> | void> = [];
  afterEach(async () => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
  });

  async function upstream(): Promise<H2Upstream> {
    const up = await startH2Upstream((stream, headers) => {
      stream.respond({ ':status': 200 });
      stream.end(`ok ${headers[':path']}`);
    });
    cleanups.push(() => up.close());
    return up;
  }

  async function proxy(upPort: number, options: Partial<ProxyOptions> = {}): Promise<RunningProxy> {
    const p = await startProxy({ direction: outboundDirection([service('web', 8080, [upPort], 'http2')]), ...options });
    cleanups.push(() => p.close());
    return p;
  }

  async function get(port: number, path = '/'): Promise<string> {
    const client = h2Connect(port);
    try {
      const res = await h2Call(client, { ...GET, ':path': path });
      return res.body.toString();
    } finally {
      client.destroy();
    }
  }

  it('takes a connection whose preface is split between head and bytes still buffered', async () => {
    const up = await upstream();
    let headLength = -1;
    const p = await proxy(up.port, {
      accept: (socket, handler) => {
        const read = (): void => {
          const head = socket.read(10) as Buffer | null;
          if (head === null) {
            socket.once('readable', read);
            return;
          }
          headLength = head.length;
          handler.handle(acceptedH2c(socket, head));
        };
        read();
      },
    });
    expect(await get(p.port, '/buffered')).toBe('ok /buffered');
    expect(headLength).toBe(10);
  });

  it('takes a connection whose preface is split between head and bytes that arrive later', async () => {
    const up = await upstream();
    let handedOff: () => void = () => {};
    const afterHandOff = new Promise<void>((resolve) => (handedOff = resolve));
    let headLength = -1;
    const p = await proxy(up.port, {
      accept: (socket, handler) => {
        socket.once('data', (head: Buffer) => {
          socket.pause();
          headLength = head.length;
          handler.handle(acceptedH2c(socket, head));
          handedOff();
        });
        socket.resume();
      },
    });
    // A relay in front of the proxy passes the first 10 bytes, then the rest only after the hand-off.
    const relay = net.createServer((clientSide) => {
      const proxySide = net.connect(p.port, '127.0.0.1');
      proxySide.on('error', () => clientSide.destroy());
      clientSide.on('error', () => proxySide.destroy());
      proxySide.pipe(clientSide);
      clientSide.once('data', (chunk: Buffer) => {
        clientSide.pause();
        proxySide.write(chunk.subarray(0, 10));
        void afterHandOff.then(() => {
          proxySide.write(chunk.subarray(10));
          clientSide.pipe(proxySide);
        });
      });
    });
    await new Promise<void>((resolve) => relay.listen(0, '127.0.0.1', resolve));
    cleanups.push(() => new Promise<void>((resolve) => relay.close(() => resolve())));
    expect(await get((relay.address() as net.AddressInfo).port, '/later')).toBe('ok /later');
    expect(headLength).toBe(10);
  });

  it('serves connections handed over by the real listener after protocol detection', async () => {
    const up = await upstream();
    // The proxy fixture's own listener is not used here: the listener tier detects and hands over.
    const p = await proxy(up.port);
    const listener = await startListener({
      name: 'outbound',
      host: '127.0.0.1',
      port: 0,
      detectTimeoutMs: 1_000,
      maxConnections: 10,
      onConnection: (conn) => p.handler.handle(conn),
    });
    cleanups.push(() => listener.close());
    expect(await get(listener.port, '/detected')).toBe('ok /detected');
    expect(listener.accepted.h2c).toBe(1);
  });

  it('advertises its limits in SETTINGS', async () => {
    const up = await upstream();
    const p = await proxy(up.port);
    const client = h2Connect(p.port);
    cleanups.push(() => void client.destroy());
    const settings = await new Promise<http2.Settings>((resolve) => client.once('remoteSettings', resolve));
    expect(settings.maxConcurrentStreams).toBe(100);
    expect(settings.maxHeaderListSize).toBe(DEFAULT_LIMITS.maxHeaderBytes);
    expect(settings.enablePush).toBe(false);
  });

  it('ends sessions that send protocol errors and keeps serving others', async () => {
    const up = await upstream();
    // node answers a protocol error with GOAWAY but leaves the socket to the client: the proxy's
    // first-request timeout is what ends a session that never made a valid request.
    const p = await proxy(up.port, { limits: { requestHeaderTimeoutMs: 300 } });
    const settings = frame(0x4, 0, 0, Buffer.alloc(0));
    // DATA on stream 0, a frame larger than SETTINGS_MAX_FRAME_SIZE, HEADERS with garbage HPACK, not HTTP/2 at all.
    const cases = [
      [PREFACE, settings, frame(0x0, 0, 0, Buffer.from('x'))],
      [PREFACE, settings, frame(0x0, 0, 1, Buffer.alloc(20_000))],
      [PREFACE, settings, frame(0x1, 0x4 | 0x1, 1, Buffer.from([0xff, 0xff, 0xff, 0xff, 0xff]))],
      [Buffer.from('GET / HTTP/1.1\r\nHost: x\r\n\r\n')],
    ];
    for (const bytes of cases) expect(await sendRaw(p.port, bytes)).toBe(true);
    expect(await get(p.port, '/after')).toBe('ok /after');
    expect(up.requests.map((h) => h[':path'])).toEqual(['/after']);
    await eventually(async () => (p.handler.sessionCount === 0 ? true : undefined), 'every session to be gone');
  });

  it('survives random frames after the preface (fuzz, 150 connections)', async () => {
    const up = await upstream();
    const p = await proxy(up.port);
    const random = prng(20261121);
    const pending: Array<Promise<boolean>> = [];
    for (let i = 0; i < 150; i++) {
      const frames: Buffer[] = [PREFACE, frame(0x4, 0, 0, Buffer.alloc(0))];
      const count = 1 + Math.floor(random() * 6);
      for (let f = 0; f < count; f++) {
        const payload = Buffer.alloc(Math.floor(random() * 64));
        for (let b = 0; b < payload.length; b++) payload[b] = Math.floor(random() * 256);
        frames.push(frame(Math.floor(random() * 11), Math.floor(random() * 256), Math.floor(random() * 8), payload));
      }
      // Nothing of this is a whole valid request; the connection either ends or idles until we drop it.
      pending.push(sendRaw(p.port, frames, 300));
      if (pending.length === 25) await Promise.all(pending.splice(0));
    }
    await Promise.all(pending);
    expect(await get(p.port, '/still-up')).toBe('ok /still-up');
  });

  it('refuses requests over the header size, header count and target length limits, without reaching the upstream', async () => {
    const up = await upstream();
    const p = await proxy(up.port, { limits: { maxHeaderBytes: 8 * 1024, maxHeaderCount: 20, maxUrlLength: 1024 } });
    const client = h2Connect(p.port);
    cleanups.push(() => void client.destroy());
    const big = await h2Call(client, { ...GET, ':path': '/big', 'x-big': 'a'.repeat(16 * 1024) });
    expect(big.headers?.[':status']).toBe(431);
    expect(big.headers?.[RESPONSE_FLAGS_HEADER]).toBe('DPE');
    expect(big.body.toString()).toBe('bad request: header list larger than 8192 bytes (DPE)\n');
    const many: Record<string, string> = {};
    for (let i = 0; i < 21; i++) many[`x-h${i}`] = 'v';
    const crowded = await h2Call(client, { ...GET, ...many });
    expect(crowded.headers?.[':status']).toBe(431);
    const long = await h2Call(client, { ...GET, ':path': `/${'p'.repeat(1100)}` });
    expect(long.headers?.[':status']).toBe(414);
    expect(up.requests.length).toBe(0);
    const [span] = await p.spansAfter(0, 1);
    expect(span?.attributes['tracemesh.response_flags']).toBe('DPE');
    expect(span?.attributes['http.response.status_code']).toBe(431);
    // Within the limits, on the same session.
    const ok = await h2Call(client, { ...GET, ':path': '/small', 'x-h': 'a'.repeat(4 * 1024) });
    expect(ok.body.toString()).toBe('ok /small');
  });

  it('refuses a header list beyond what node itself accepts (64 KiB) and keeps serving', async () => {
    const up = await upstream();
    const p = await proxy(up.port, { limits: { maxHeaderBytes: 256 * 1024 } });
    const client = h2Connect(p.port);
    cleanups.push(() => void client.destroy());
    const res = await h2Call(client, { ...GET, 'x-big': 'a'.repeat(70 * 1024) });
    expect(res.headers).toBeUndefined();
    expect(res.rstCode).not.toBe(0);
    expect(up.requests.length).toBe(0);
    // node may end that session (its HPACK state is no longer trusted); the proxy serves new ones.
    expect(await get(p.port, '/next')).toBe('ok /next');
  });

  it('closes a connection that does not finish its handshake within the request header timeout', async () => {
    const up = await upstream();
    const p = await proxy(up.port, { limits: { requestHeaderTimeoutMs: 200 } });
    expect(await sendRaw(p.port, [PREFACE.subarray(0, 20)])).toBe(true);
    await eventually(async () => (p.handler.sessionCount === 0 ? true : undefined), 'the session to be gone');
  });

  it('sends GOAWAY to a session idle for idleTimeoutMs', async () => {
    const up = await upstream();
    const p = await proxy(up.port, { limits: { idleTimeoutMs: 200 } });
    const client = h2Connect(p.port);
    cleanups.push(() => void client.destroy());
    await h2Call(client, GET);
    await new Promise((resolve) => client.once('goaway', resolve));
    await eventually(async () => (p.handler.sessionCount === 0 ? true : undefined), 'the session to be gone');
  });

  it('close() sends GOAWAY, waits for streams in flight, and refuses new connections', async () => {
    let release: () => void = () => {};
    const up = await startH2Upstream((stream) => {
      release = () => {
        stream.respond({ ':status': 200 });
        stream.end('late');
      };
    });
    cleanups.push(() => up.close());
    const p = await proxy(up.port);
    const client = h2Connect(p.port);
    cleanups.push(() => void client.destroy());
    const inFlight = h2Call(client, GET);
    await eventually(async () => (up.requests.length === 1 ? true : undefined), 'the request to reach the upstream');
    const closing = p.handler.close();
    await new Promise((resolve) => client.once('goaway', resolve));
    release();
    expect((await inFlight).body.toString()).toBe('late');
    await closing;
    expect(p.handler.sessionCount).toBe(0);
    const socket = net.connect(p.port, '127.0.0.1');
    socket.on('error', () => {});
    await new Promise((resolve) => socket.on('close', resolve));
  });
});
