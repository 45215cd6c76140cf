import * as http2 from 'node:http2';
import { createServer } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { GRPC_DEADLINE_EXCEEDED, GRPC_INTERNAL, GRPC_RESOURCE_EXHAUSTED, GRPC_UNAVAILABLE, GrpcCallError, GrpcUnaryClient } from './otlp-grpc-client.js';

type Handler = (stream: http2.ServerHttp2Stream, headers: http2.IncomingHttpHeaders, body: Buffer) => void;

const cleanups: Array<() => Promise<void>> = [];

afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

/** An h2c server on 127.0.0.1:0 that hands each request, with its whole body, to `handler`. */
async function fakeServer(handler: Handler): Promise<{ url: string; server: http2.Http2Server; sessions: Set<http2.ServerHttp2Session> }> {
  const server = http2.createServer();
  const sessions = new Set<http2.ServerHttp2Session>();
  server.on('session', (s) => {
    sessions.add(s);
    s.on('close', () => sessions.delete(s));
  });
  server.on('stream', (stream, headers) => {
    const chunks: Buffer[] = [];
    stream.on('data', (c: Buffer) => chunks.push(c));
    stream.on('end', () => handler(stream, headers, Buffer.concat(chunks)));
    stream.on('error', () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (typeof address !== 'object' || address === null) throw new Error('no address');
  cleanups.push(async () => {
    for (const s of sessions) s.destroy();
    await new Promise<void>((resolve) => server.close(() => resolve()));
  });
  return { url: `http://127.0.0.1:${address.port}`, server, sessions };
}

function client(url: string, maxResponseBytes?: number): GrpcUnaryClient {
  const c = new GrpcUnaryClient({ url, maxResponseBytes });
  cleanups.push(() => c.close());
  return c;
}

function frame(message: Buffer): Buffer {
  const prefix = Buffer.alloc(5);
  prefix.writeUInt32BE(message.length, 1);
  return Buffer.concat([prefix, message]);
}

/** A normal unary answer: headers, one framed message, trailers. */
function answer(stream: http2.ServerHttp2Stream, message: Buffer, status = 0, statusMessage?: string): void {
  stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
  stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': String(status), ...(statusMessage !== undefined && { 'grpc-message': statusMessage }) }));
  stream.end(frame(message));
}

async function failure(promise: Promise<unknown>): Promise<GrpcCallError> {
  try {
    await promise;
  } catch (err) {
    expect(err).toBeInstanceOf(GrpcCallError);
    expect(isTracemeshError(err, 'TM_ERR_TELEMETRY_EXPORT')).toBe(true);
    return err as GrpcCallError;
  }
  throw new Error('the call succeeded');
}

describe('GrpcUnaryClient over node:http2', () => {
  it('sends a framed message with the gRPC headers and returns the answer message', async () => {
    const seen: Array<{ headers: http2.IncomingHttpHeaders; body: Buffer }> = [];
    const { url } = await fakeServer((stream, headers, body) => {
      seen.push({ headers, body });
      answer(stream, Buffer.from('pong'));
    });
    const c = client(url);
    const reply = await c.call('/pkg.Service/Method', [Buffer.from('pi'), Buffer.from('ng')], 5000);
    expect(reply.toString()).toBe('pong');
    expect(seen[0]!.body).toEqual(frame(Buffer.from('ping')));
    expect(seen[0]!.headers).toMatchObject({ ':method': 'POST', ':path': '/pkg.Service/Method', 'content-type': 'application/grpc', te: 'trailers', 'grpc-timeout': '5000m' });
    expect(c.callsInFlight).toBe(0);
    // The session is kept for the next call.
    expect((await c.call('/pkg.Service/Method', [Buffer.from('again')], 5000)).toString()).toBe('pong');
  });

  it('rejects with the server grpc-status and its decoded message, from trailers or a trailers-only answer', async () => {
    let mode: 'trailers' | 'only' = 'trailers';
    const { url } = await fakeServer((stream) => {
      if (mode === 'trailers') answer(stream, Buffer.alloc(0), 8, 'too%20many%20spans');
      else {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc', 'grpc-status': '14', 'grpc-message': 'draining' }, { endStream: true });
      }
    });
    const c = client(url);
    const a = await failure(c.call('/x/y', [Buffer.from('a')], 5000));
    expect(a.grpcStatus).toBe(8);
    expect(a.message).toBe('grpc-status 8: too many spans');
    mode = 'only';
    const b = await failure(c.call('/x/y', [Buffer.from('a')], 5000));
    expect(b.grpcStatus).toBe(14);
    expect(b.message).toContain('draining');
  });

  it('maps an HTTP error without grpc-status, and an answer without any status', async () => {
    let mode: 'http503' | 'nostatus' = 'http503';
    const { url } = await fakeServer((stream) => {
      if (mode === 'http503') stream.respond({ ':status': 503 }, { endStream: true });
      else {
        stream.respond({ ':status': 200, 'content-type': 'application/grpc' });
        stream.end(frame(Buffer.from('x')));
      }
    });
    const c = client(url);
    const a = await failure(c.call('/x/y', [], 5000));
    expect(a.grpcStatus).toBe(GRPC_UNAVAILABLE);
    expect(a.message).toContain('HTTP status 503');
    mode = 'nostatus';
    const b = await failure(c.call('/x/y', [], 5000));
    expect(b.grpcStatus).toBe(GRPC_INTERNAL);
  });

  it('gives up at the deadline with DEADLINE_EXCEEDED and cancels the stream', async () => {
    let cancelled = false;
    const server = http2.createServer();
    server.on('stream', (stream) => {
      stream.on('close', () => {
        cancelled = stream.rstCode === http2.constants.NGHTTP2_CANCEL;
      });
      stream.on('error', () => {});
      stream.resume(); // reads, never answers
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => sessions.add(s));
    cleanups.push(async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    const { port } = server.address() as { port: number };
    const c = client(`http://127.0.0.1:${port}`);
    const err = await failure(c.call('/x/y', [Buffer.from('a')], 100));
    expect(err.grpcStatus).toBe(GRPC_DEADLINE_EXCEEDED);
    expect(c.callsInFlight).toBe(0);
    await expect.poll(() => cancelled, { timeout: 5000 }).toBe(true);
  });

  it('refuses an answer larger than maxResponseBytes', async () => {
    const { url } = await fakeServer((stream) => answer(stream, Buffer.alloc(4096, 1)));
    const err = await failure(client(url, 1024).call('/x/y', [], 5000));
    expect(err.grpcStatus).toBe(GRPC_RESOURCE_EXHAUSTED);
  });

  it('reports UNAVAILABLE when nothing listens, and reconnects once the server is back or after GOAWAY', async () => {
    // A port with nothing on it, then a server on the same port.
    const probe = createServer();
    await new Promise<void>((resolve) => probe.listen(0, '127.0.0.1', resolve));
    const { port } = probe.address() as { port: number };
    await new Promise<void>((resolve) => probe.close(() => resolve()));
    const c = client(`http://127.0.0.1:${port}`);
    const down = await failure(c.call('/x/y', [], 2000));
    expect(down.grpcStatus).toBe(GRPC_UNAVAILABLE);
    expect(down.message).toContain('ECONNREFUSED');

    const server = http2.createServer();
    const sessions = new Set<http2.ServerHttp2Session>();
    server.on('session', (s) => sessions.add(s));
    server.on('stream', (stream) => {
      stream.on('error', () => {});
      stream.resume();
      stream.on('end', () => answer(stream, Buffer.from('ok')));
    });
    await new Promise<void>((resolve) => server.listen(port, '127.0.0.1', resolve));
    cleanups.push(async () => {
      for (const s of sessions) s.destroy();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    });
    expect((await c.call('/x/y', [], 2000)).toString()).toBe('ok');
    // The server says goodbye: the next call opens a new session.
    expect(c.connected).toBe(true);
    for (const s of sessions) s.goaway();
    await expect.poll(() => c.connected, { timeout: 5000 }).toBe(false);
    expect((await c.call('/x/y', [], 2000)).toString()).toBe('ok');
    expect(sessions.size).toBe(2);
  });

  it('rejects calls after close(), which is safe twice', async () => {
    const { url } = await fakeServer((stream) => answer(stream, Buffer.from('ok')));
    const c = new GrpcUnaryClient({ url });
    await c.call('/x/y', [], 2000);
    await Promise.all([c.close(), c.close()]);
    const err = await failure(c.call('/x/y', [], 2000));
    expect(err.grpcStatus).toBe(GRPC_UNAVAILABLE);
  });
});
