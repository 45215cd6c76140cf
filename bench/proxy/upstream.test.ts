import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { BODY_BYTES, RESPONSE, RequestEndCounter, startUpstream } from './upstream.js';
import type { Upstream } from './upstream.js';

const REQUEST = 'GET / HTTP/1.1\r\nHost: x\r\n\r\n';

describe('RequestEndCounter', () => {
  it('counts request ends split at every byte position', () => {
    const bytes = Buffer.from(REQUEST + REQUEST + REQUEST);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const counter = new RequestEndCounter();
      const ends = counter.push(bytes.subarray(0, cut)) + counter.push(bytes.subarray(cut));
      expect(ends, `cut at ${cut}`).toBe(3);
      expect(counter.pending).toBe(0);
    }
  });

  it('does not count CR LF CR without the final LF, nor a lone LF LF', () => {
    const counter = new RequestEndCounter();
    expect(counter.push(Buffer.from('GET / HTTP/1.1\r\nA: b\r\n\rX\n\n'))).toBe(0);
    expect(counter.pending).toBeGreaterThan(0);
    expect(counter.push(Buffer.from('\r\r\n\r\n'))).toBe(1);
  });
});

describe('upstream', () => {
  let upstream: Upstream | undefined;
  afterEach(async () => {
    await upstream?.close();
    upstream = undefined;
  });

  it('answers each of several pipelined keep-alive requests with the 1 KiB response', async () => {
    upstream = await startUpstream();
    expect(RESPONSE.toString('latin1')).toContain(`Content-Length: ${BODY_BYTES}\r\n`);
    const socket = net.connect({ host: '127.0.0.1', port: upstream.port });
    const received: Buffer[] = [];
    let total = 0;
    const done = new Promise<void>((resolve, reject) => {
      socket.on('data', (chunk: Buffer) => {
        received.push(chunk);
        total += chunk.length;
        if (total >= 3 * RESPONSE.length) resolve();
      });
      socket.on('error', reject);
    });
    socket.write(REQUEST + REQUEST);
    socket.write(REQUEST.slice(0, 5));
    socket.write(REQUEST.slice(5));
    await done;
    socket.destroy();
    expect(Buffer.concat(received).equals(Buffer.concat([RESPONSE, RESPONSE, RESPONSE]))).toBe(true);
  });

  it('closes a client that sends a head of more than 16 KiB without ending it', async () => {
    upstream = await startUpstream();
    const socket = net.connect({ host: '127.0.0.1', port: upstream.port });
    const closed = new Promise<void>((resolve) => socket.on('close', () => resolve()));
    socket.on('error', () => {});
    socket.write(`GET / HTTP/1.1\r\nX: ${'a'.repeat(20 * 1024)}`);
    await closed;
    expect(socket.destroyed).toBe(true);
  });
});
