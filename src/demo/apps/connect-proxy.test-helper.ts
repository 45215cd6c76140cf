/**
 * A tiny explicit-mode proxy for tests: answers `CONNECT name:port` by
 * tunnelling to 127.0.0.1:<mapped port>, records every target it was asked
 * for, and refuses (502) names it does not know. Enough to run the demo apps
 * "behind a proxy" before the real one exists.
 */
import http from 'node:http';
import net from 'node:net';
import type { Socket } from 'node:net';

export interface TestConnectProxy {
  url: string;
  port: number;
  /** Every CONNECT target, in arrival order. */
  targets: string[];
  /** The headers of each CONNECT, in the same order. */
  headers: http.IncomingHttpHeaders[];
  close(): Promise<void>;
}

export async function startConnectProxy(routes: ReadonlyMap<string, number>): Promise<TestConnectProxy> {
  const targets: string[] = [];
  const headers: http.IncomingHttpHeaders[] = [];
  const sockets = new Set<Socket>();
  const track = (socket: Socket): void => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
  };
  const server = http.createServer((_req, res) => {
    res.writeHead(405, { connection: 'close' });
    res.end('CONNECT only\n');
  });
  server.on('connection', track);
  server.on('connect', (req: http.IncomingMessage, client: Socket, head: Buffer) => {
    const target = req.url ?? '';
    targets.push(target);
    headers.push(req.headers);
    client.on('error', () => client.destroy());
    const port = routes.get(target);
    if (port === undefined) {
      client.end('HTTP/1.1 502 Bad Gateway\r\ncontent-length: 0\r\n\r\n');
      return;
    }
    const upstream = net.connect({ host: '127.0.0.1', port });
    track(upstream);
    upstream.on('error', () => client.destroy());
    client.on('close', () => upstream.destroy());
    upstream.on('close', () => client.destroy());
    upstream.once('connect', () => {
      client.write('HTTP/1.1 200 Connection Established\r\n\r\n');
      if (head.length > 0) upstream.write(head);
      upstream.pipe(client);
      client.pipe(upstream);
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : 0;
  return {
    url: `http://127.0.0.1:${port}`,
    port,
    targets,
    headers,
    async close() {
      const closed = new Promise<void>((resolve) => server.close(() => resolve()));
      for (const socket of sockets) socket.destroy();
      await closed;
    },
  };
}
