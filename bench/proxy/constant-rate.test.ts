import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { runConstantRate, validateOptions } from './constant-rate.js';
import type { ConstantRateOptions } from './constant-rate.js';
import { RequestEndCounter, startUpstream } from './upstream.js';

const closers: Array<() => Promise<void>> = [];
afterEach(async () => {
  for (const close of closers.splice(0)) await close();
});

/** A server answering each request after `delayMs`, optionally closing the connection after each answer. */
async function startServer(delayMs: number, closeEach: boolean): Promise<number> {
  const sockets = new Set<net.Socket>();
  const timers = new Set<NodeJS.Timeout>();
  const body = 'ok';
  const response = `HTTP/1.1 200 OK\r\nContent-Length: ${body.length}\r\n${closeEach ? 'Connection: close\r\n' : ''}\r\n${body}`;
  const server = net.createServer((socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    const counter = new RequestEndCounter();
    socket.on('data', (chunk: Buffer) => {
      for (let n = counter.push(chunk); n > 0; n--) {
        const timer = setTimeout(() => {
          timers.delete(timer);
          if (closeEach) socket.end(response);
          else socket.write(response);
        }, delayMs);
        timers.add(timer);
      }
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(
    () =>
      new Promise<void>((resolve) => {
        for (const timer of timers) clearTimeout(timer);
        for (const socket of sockets) socket.destroy();
        server.close(() => resolve());
      }),
  );
  return (server.address() as net.AddressInfo).port;
}

function options(port: number, overrides: Partial<ConstantRateOptions> = {}): ConstantRateOptions {
  return { host: '127.0.0.1', port, hostHeader: 'bench-server:8080', rate: 200, durationMs: 500, connections: 2, drainMs: 2_000, ...overrides };
}

describe('runConstantRate', () => {
  it('sends rate × duration requests over keep-alive connections and measures every answer', async () => {
    const upstream = await startUpstream();
    closers.push(() => upstream.close());
    const result = await runConstantRate(options(upstream.port));
    expect(result.scheduled).toBe(100);
    expect(result.sent).toBe(100);
    expect(result.completed).toBe(100);
    expect(result.failed).toBe(0);
    expect(result.non2xx).toBe(0);
    expect(result.reconnects).toBe(0);
    expect(result.latencyUs.count).toBe(100);
    expect(result.latencyUs.p50).toBeGreaterThan(0);
    expect(result.latencyUs.p50).toBeLessThanOrEqual(result.latencyUs.p99);
    expect(result.latencyUs.p99).toBeLessThanOrEqual(result.latencyUs.max);
  });

  it('charges the wait for a busy connection to the request (no coordinated omission)', async () => {
    // One connection, 20 ms per answer, a request due every 5 ms: requests queue up, and the
    // last ones wait far longer than one service time. A closed-loop measure would say ~20 ms.
    const port = await startServer(20, false);
    const result = await runConstantRate(options(port, { rate: 200, durationMs: 200, connections: 1, drainMs: 5_000 }));
    expect(result.completed).toBe(40);
    expect(result.queued).toBeGreaterThan(0);
    expect(result.latencyUs.max).toBeGreaterThan(200_000);
  });

  it('reopens connections the server closes after each answer, and counts the reconnects', async () => {
    const port = await startServer(0, true);
    const result = await runConstantRate(options(port, { rate: 100, durationMs: 200, connections: 2 }));
    expect(result.completed).toBe(20);
    expect(result.failed).toBe(0);
    expect(result.reconnects).toBeGreaterThan(0);
  });

  it('counts requests that never get an answer as failed, by the drain deadline', async () => {
    const port = await startServer(60_000, false);
    const result = await runConstantRate(options(port, { rate: 100, durationMs: 100, connections: 2, drainMs: 200 }));
    expect(result.completed).toBe(0);
    expect(result.failed).toBe(10);
  });

  it('rejects when nothing listens, and bad options with a message naming the option', async () => {
    const dead = await startServer(0, false);
    await closers.pop()!();
    await expect(runConstantRate(options(dead))).rejects.toThrow(/ECONNREFUSED/);
    expect(() => validateOptions(options(1, { rate: 0 }))).toThrow(/rate/);
    expect(() => validateOptions(options(1, { connections: 0 }))).toThrow(/connections/);
    expect(() => validateOptions(options(0))).toThrow(/port/);
    expect(() => validateOptions(options(1, { hostHeader: 'a\r\nb' }))).toThrow(/host header/);
  });
});
