import { request as httpRequest, type IncomingMessage } from 'node:http';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, inboundDirection, startProxy, startUpstream } from './proxy-harness.test-helper.js';

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

const GIB = 1024 * 1024 * 1024;
const BLOCK = Buffer.alloc(64 * 1024, 'x');
/** Memory growth allowed while a gigabyte passes through (the proxy must not buffer it). */
const MAX_GROWTH = 64 * 1024 * 1024;

/** The body, one reused 64 KiB block at a time. */
function* gigabyte(): Generator<Buffer> {
  for (let sent = 0; sent < GIB; sent += BLOCK.length) yield BLOCK;
}

/** Samples RSS until stopped; reports the largest growth over the baseline. */
function watchMemory(): { stop(): number } {
  const baseline = process.memoryUsage().rss;
  let peak = baseline;
  const timer = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss);
  }, 20);
  return {
    stop() {
      clearInterval(timer);
      peak = Math.max(peak, process.memoryUsage().rss);
      return peak - baseline;
    },
  };
}

/** Reads a stream to its end, pausing `pauseMs` every MiB so the sender must wait (backpressure is exercised). */
function slowCount(stream: IncomingMessage, pauseMs: number): Promise<number> {
  return new Promise((resolve, reject) => {
    let total = 0;
    let sinceLastPause = 0;
    stream.on('data', (chunk: Buffer) => {
      total += chunk.length;
      sinceLastPause += chunk.length;
      if (sinceLastPause >= 1024 * 1024) {
        sinceLastPause = 0;
        stream.pause();
        setTimeout(() => stream.resume(), pauseMs);
      }
    });
    stream.on('end', () => resolve(total));
    stream.on('error', reject);
  });
}

describe('streamed bodies in bounded memory', () => {
  it('a 1 GiB chunked upload passes through with backpressure', async () => {
    const app = await startUpstream(cleanup, (req, res) => {
      slowCount(req, 1).then((total) => res.end(String(total)), () => res.destroy());
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const memory = watchMemory();
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxy.port, method: 'POST', path: '/upload', agent: false }, (res) => {
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('error', reject);
      const body = gigabyte();
      const pump = (): void => {
        for (;;) {
          const next = body.next();
          if (next.done === true) {
            req.end();
            return;
          }
          if (!req.write(next.value)) {
            req.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    const growth = memory.stop();
    expect(answer).toBe(String(GIB));
    expect(growth).toBeLessThan(MAX_GROWTH);
    expect(proxy.tel.requests[0]?.requestBytes).toBe(GIB);
  });

  it('a 1 GiB download passes through with backpressure', async () => {
    const app = await startUpstream(cleanup, (_req, res) => {
      res.writeHead(200, { 'content-length': String(GIB) });
      const body = gigabyte();
      const pump = (): void => {
        for (;;) {
          const next = body.next();
          if (next.done === true) {
            res.end();
            return;
          }
          if (!res.write(next.value)) {
            res.once('drain', pump);
            return;
          }
        }
      };
      pump();
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const memory = watchMemory();
    const received = await new Promise<number>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxy.port, path: '/download', agent: false }, (res) => {
        slowCount(res, 3).then(resolve, reject);
      });
      req.on('error', reject);
      req.end();
    });
    const growth = memory.stop();
    expect(received).toBe(GIB);
    expect(growth).toBeLessThan(MAX_GROWTH);
    expect(proxy.tel.requests[0]?.responseBytes).toBe(GIB);
  });
});

describe('interim responses', () => {
  it('Expect: 100-continue is forwarded and the upstream 100 relayed before the final response', async () => {
    let sawExpect = '';
    const app = await startUpstream(cleanup, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => res.end(`got ${body}`));
    });
    app.server.on('checkContinue', (req: IncomingMessage, res) => {
      sawExpect = String(req.headers['expect']);
      res.writeContinue();
      app.server.emit('request', req, res);
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const events: string[] = [];
    const answer = await new Promise<string>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxy.port, method: 'PUT', path: '/', agent: false, headers: { expect: '100-continue', 'content-length': '5' } }, (res) => {
        events.push(`response ${res.statusCode}`);
        let text = '';
        res.on('data', (c: Buffer) => (text += c.toString()));
        res.on('end', () => resolve(text));
      });
      req.on('continue', () => {
        events.push('continue');
        req.end('hello');
      });
      req.on('error', reject);
    });
    expect(sawExpect).toBe('100-continue');
    expect(events).toEqual(['continue', 'response 200']);
    expect(answer).toBe('got hello');
  });

  it('103 Early Hints reach the client before the final response', async () => {
    const app = await startUpstream(cleanup, (_req, res) => {
      res.writeEarlyHints({ link: '</style.css>; rel=preload; as=style' });
      setImmediate(() => res.end('page'));
    });
    const proxy = await startProxy(cleanup, { direction: inboundDirection(app.port) });
    const events: string[] = [];
    await new Promise<void>((resolve, reject) => {
      const req = httpRequest({ host: '127.0.0.1', port: proxy.port, path: '/', agent: false }, (res) => {
        events.push(`response ${res.statusCode}`);
        res.resume();
        res.on('end', () => resolve());
      });
      req.on('information', (info) => events.push(`information ${info.statusCode} ${String(info.headers['link'])}`));
      req.on('error', reject);
      req.end();
    });
    expect(events).toEqual(['information 103 </style.css>; rel=preload; as=style', 'response 200']);
  });
});
