/**
 * The app behind the fuzzed proxies: one port that answers HTTP/1.1
 * (node:http) and h2c prior knowledge (node:http2) alike, told apart by the
 * connection preface, because an inbound proxy has one app port for both.
 * Every request is read to its end, then answered 200 "ok" (a request whose
 * body never ends gets no 200). Its own timeouts are short so a half-sent
 * request cannot hold a socket for long.
 */
import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';

export interface FuzzUpstream {
  readonly port: number;
  /** Requests answered so far, by protocol. */
  readonly answered: { http1: number; http2: number };
  close(): Promise<void>;
}

const H2_PREFACE_START = Buffer.from('PRI * HTTP/2.0', 'latin1');

/** HTTP/2 clients (the proxy's pools among them) send the whole preface in their first write; anything shorter is HTTP/1's to judge. */
function looksLikeH2(chunk: Buffer): boolean {
  return chunk.length >= H2_PREFACE_START.length && chunk.subarray(0, H2_PREFACE_START.length).equals(H2_PREFACE_START);
}

export async function startFuzzUpstream(): Promise<FuzzUpstream> {
  const answered = { http1: 0, http2: 0 };
  const h1 = http.createServer(
    { requestTimeout: 2_000, headersTimeout: 1_000, keepAliveTimeout: 1_000, connectionsCheckingInterval: 250 },
    (req, res) => {
      req.resume();
      req.on('end', () => {
        answered.http1++;
        res.writeHead(200, { 'content-type': 'text/plain', 'content-length': '2' });
        res.end('ok');
      });
      req.on('error', () => res.destroy());
    },
  );
  h1.on('clientError', (_err, socket) => socket.destroy());
  const h2 = http2.createServer();
  h2.on('stream', (stream) => {
    stream.on('error', () => {});
    stream.resume();
    stream.on('end', () => {
      if (stream.destroyed || stream.closed) return;
      answered.http2++;
      stream.respond({ ':status': 200, 'content-type': 'text/plain' });
      stream.end('ok');
    });
  });
  h2.on('sessionError', () => {});
  const h2Sessions = new Set<http2.ServerHttp2Session>();
  h2.on('session', (session) => {
    h2Sessions.add(session);
    session.once('close', () => h2Sessions.delete(session));
  });

  const sockets = new Set<net.Socket>();
  const front = net.createServer({ pauseOnConnect: true }, (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    socket.on('error', () => {});
    socket.once('data', (chunk: Buffer) => {
      socket.pause();
      socket.unshift(chunk);
      if (looksLikeH2(chunk)) {
        // node:http2 feeds itself what is buffered (next tick) and then reads the handle natively.
        h2.emit('connection', socket);
        socket.read(0);
      } else {
        h1.emit('connection', socket);
        socket.resume();
      }
    });
    socket.resume();
  });
  await new Promise<void>((resolve) => front.listen(0, '127.0.0.1', resolve));
  const port = (front.address() as net.AddressInfo).port;
  return {
    port,
    answered,
    async close() {
      const closed = new Promise<void>((resolve) => front.close(() => resolve()));
      for (const session of h2Sessions) session.destroy();
      for (const socket of sockets) socket.destroy();
      h1.closeAllConnections();
      await closed;
    },
  };
}
