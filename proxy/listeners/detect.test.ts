import net from 'node:net';
import tls from 'node:tls';
import { afterEach, describe, expect, it } from 'vitest';
import type { AcceptedConnection } from './accepted.js';
import { classify } from './detect.js';
import { startListener, type Listener } from './listener.js';
import { readSni } from './tls-sni.js';

const PREFACE = 'PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n';

describe('classify', () => {
  it('recognises HTTP/1 methods, waiting while the bytes are a prefix of one', () => {
    expect(classify(Buffer.from('GET / HTTP/1.1\r\n'))).toBe('http1');
    expect(classify(Buffer.from('CONNECT ratings:50051 HTTP/1.1\r\n'))).toBe('http1');
    expect(classify(Buffer.from('DELETE /x'))).toBe('http1');
    expect(classify(Buffer.from('GE'))).toBe('more');
    expect(classify(Buffer.from('P'))).toBe('more'); // POST, PUT, PATCH or the HTTP/2 preface
  });

  it('recognises the HTTP/2 preface, also split', () => {
    expect(classify(Buffer.from(PREFACE))).toBe('h2c');
    expect(classify(Buffer.from(PREFACE.slice(0, 10)))).toBe('more');
    expect(classify(Buffer.from('PRI * HTTP/1.1'))).toBe('tcp');
  });

  it('recognises a TLS record header and waits for the whole record', () => {
    const header = Buffer.from([0x16, 0x03, 0x01, 0x00, 0x10]);
    expect(classify(header)).toBe('more');
    expect(classify(Buffer.concat([header, Buffer.alloc(16)]))).toBe('tls');
    expect(classify(Buffer.from([0x16, 0x07, 0x01]))).toBe('tcp');
  });

  it('calls anything else TCP, including lowercase methods and near misses', () => {
    expect(classify(Buffer.from('get / HTTP/1.1'))).toBe('tcp');
    expect(classify(Buffer.from('STOCK 42\n'))).toBe('tcp');
    expect(classify(Buffer.from('GETX / HTTP/1.1'))).toBe('tcp');
    expect(classify(Buffer.from([0, 1, 2, 3]))).toBe('tcp');
  });
});

describe('listener with detection (real sockets)', () => {
  let listener: Listener | undefined;
  afterEach(async () => {
    await listener?.close();
    listener = undefined;
  });

  async function listen(): Promise<{ port: number; next: () => Promise<AcceptedConnection> }> {
    const waiting: Array<(conn: AcceptedConnection) => void> = [];
    const arrived: AcceptedConnection[] = [];
    listener = await startListener({
      name: 'test',
      host: '127.0.0.1',
      port: 0,
      detectTimeoutMs: 100,
      maxConnections: 100,
      onConnection: (conn) => {
        const w = waiting.shift();
        if (w) w(conn);
        else arrived.push(conn);
      },
    });
    return {
      port: listener.port,
      next: () => new Promise((resolve) => {
        const a = arrived.shift();
        if (a) resolve(a);
        else waiting.push(resolve);
      }),
    };
  }

  it('reads the SNI of a real TLS ClientHello and keeps its bytes', async () => {
    const { port, next } = await listen();
    const client = tls.connect({ host: '127.0.0.1', port, servername: 'reviews.default.svc', rejectUnauthorized: false });
    client.on('error', () => {});
    const conn = await next();
    expect(conn.protocol).toBe('tls');
    expect(conn.sni).toBe('reviews.default.svc');
    expect(readSni(conn.head)).toBe('reviews.default.svc');
    expect(conn.head[0]).toBe(0x16);
    client.destroy();
    conn.socket.destroy();
  });

  it('treats a silent client as server-first TCP after the detection timeout', async () => {
    const { port, next } = await listen();
    const client = net.connect(port, '127.0.0.1');
    client.on('error', () => {});
    const conn = await next();
    expect(conn.protocol).toBe('tcp');
    expect(conn.head.length).toBe(0);
    expect(conn.remoteAddress).toBe('127.0.0.1');
    client.destroy();
    conn.socket.destroy();
  });

  it('detects HTTP/1 and HTTP/2 sent byte by byte', async () => {
    const { port, next } = await listen();
    for (const [text, protocol] of [
      ['POST /x HTTP/1.1\r\n', 'http1'],
      [PREFACE, 'h2c'],
    ] as const) {
      const client = net.connect(port, '127.0.0.1');
      client.setNoDelay(true);
      client.on('error', () => {});
      await new Promise((resolve) => client.once('connect', resolve));
      const first = next();
      for (const ch of text.slice(0, 12)) {
        client.write(ch);
        await new Promise((resolve) => setImmediate(resolve));
      }
      client.write(text.slice(12));
      const conn = await first;
      expect(conn.protocol).toBe(protocol);
      expect(conn.head.toString('latin1')).toBe(text.slice(0, conn.head.length));
      client.destroy();
      conn.socket.destroy();
    }
  });
});
