import { createHash, randomBytes } from 'node:crypto';
import { connect, type Socket } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { Cleanup, inboundDirection, startProxy, startRawUpstream } from './proxy-harness.test-helper.js';

// Upstream sockets read into one reused buffer per connection (onread). When
// the client is slower than the upstream, forwarded bytes wait in the
// downstream socket's queue while the next upstream read arrives; they must
// not be overwritten by it. Random bytes make any overwrite change the digest.

const cleanup = new Cleanup();
afterEach(() => cleanup.run());

/** Small pieces, one per turn of the upstream's event loop: the proxy sees many reads below a socket's high-water mark, which write() accepts even when it has to queue them. */
const PIECE = 4 * 1024;
const PIECES = 2048; // 8 MiB

/** The bytes after the response head, as the upstream frames them. */
function bodyPieces(chunked: boolean): Buffer[] {
  const pieces: Buffer[] = [];
  for (let i = 0; i < PIECES; i++) {
    const data = randomBytes(PIECE);
    pieces.push(chunked ? Buffer.concat([Buffer.from(`${PIECE.toString(16)}\r\n`, 'latin1'), data, Buffer.from('\r\n', 'latin1')]) : data);
  }
  if (chunked) pieces.push(Buffer.from('0\r\n\r\n', 'latin1'));
  return pieces;
}

function digestOf(pieces: Buffer[]): { digest: string; bytes: number } {
  const hash = createHash('sha256');
  let bytes = 0;
  for (const piece of pieces) {
    hash.update(piece);
    bytes += piece.length;
  }
  return { digest: hash.digest('hex'), bytes };
}

/** An upstream that answers the first request with `head`, then writes `pieces` one per event-loop turn (honouring 'drain'). */
async function pacedUpstream(head: string, pieces: Buffer[], endAfter: boolean): Promise<number> {
  const upstream = await startRawUpstream(cleanup, (socket) => {
    socket.once('data', () => {
      socket.write(head);
      let next = 0;
      const pump = (): void => {
        if (next >= pieces.length) {
          if (endAfter) socket.end();
          return;
        }
        if (socket.write(pieces[next++] as Buffer)) setImmediate(pump);
        else socket.once('drain', pump);
      };
      pump();
    });
  });
  return upstream.port;
}

/**
 * Sends `request` and hashes `bytes` bytes after the response head, reading
 * slowly: the socket is paused a few ms every 128 KiB, so the proxy's
 * downstream writes back up and queue.
 */
function slowBodyDigest(port: number, request: string, bytes: number): Promise<{ digest: string; bytes: number }> {
  const client: Socket = connect(port, '127.0.0.1');
  cleanup.add(() => {
    client.destroy();
  });
  return new Promise((resolve, reject) => {
    const hash = createHash('sha256');
    let head = Buffer.alloc(0);
    let inBody = false;
    let got = 0;
    let sincePause = 0;
    const take = (part: Buffer): void => {
      hash.update(part);
      got += part.length;
      if (got >= bytes) resolve({ digest: hash.digest('hex'), bytes: got });
    };
    client.on('data', (chunk: Buffer) => {
      if (!inBody) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf('\r\n\r\n');
        if (end < 0) return;
        inBody = true;
        take(head.subarray(end + 4));
      } else {
        take(chunk);
      }
      sincePause += chunk.length;
      if (sincePause >= 128 * 1024) {
        sincePause = 0;
        client.pause();
        setTimeout(() => client.resume(), 5);
      }
    });
    client.on('error', reject);
    client.on('close', () => reject(new Error(`connection closed after ${got} of ${bytes} body bytes`)));
    client.write(request);
  });
}

describe('upstream read buffer under a slow client', () => {
  it('a Content-Length body arrives intact', async () => {
    const pieces = bodyPieces(false);
    const sent = digestOf(pieces);
    const port = await pacedUpstream(`HTTP/1.1 200 OK\r\nContent-Length: ${sent.bytes}\r\n\r\n`, pieces, false);
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port) });
    expect(await slowBodyDigest(proxy.port, 'GET /blob HTTP/1.1\r\nHost: a\r\n\r\n', sent.bytes)).toEqual(sent);
  });

  it('a chunked body arrives intact, framing and all', async () => {
    const pieces = bodyPieces(true);
    const sent = digestOf(pieces);
    const port = await pacedUpstream('HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n', pieces, false);
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port) });
    expect(await slowBodyDigest(proxy.port, 'GET /blob HTTP/1.1\r\nHost: a\r\n\r\n', sent.bytes)).toEqual(sent);
  });

  it('bytes after a 101 (the raw pipe) arrive intact', async () => {
    const pieces = bodyPieces(false);
    const sent = digestOf(pieces);
    const port = await pacedUpstream('HTTP/1.1 101 Switching Protocols\r\nUpgrade: blob\r\nConnection: Upgrade\r\n\r\n', pieces, true);
    const proxy = await startProxy(cleanup, { direction: inboundDirection(port) });
    const request = 'GET /pipe HTTP/1.1\r\nHost: a\r\nUpgrade: blob\r\nConnection: Upgrade\r\n\r\n';
    expect(await slowBodyDigest(proxy.port, request, sent.bytes)).toEqual(sent);
  });
});
