/**
 * The listener tier: accept, bound the connection count, detect the protocol,
 * hand the connection over. Nothing protocol-specific happens here.
 */
import net from 'node:net';
import { TracemeshError } from '../../src/lib/errors.js';
import type { ConnectionHandler, DetectedProtocol } from './accepted.js';
import { plainAddress } from '../capture/captured-destination.js';
import { detectProtocol } from './detect.js';

const EMPTY = Buffer.alloc(0);

export interface ListenerOptions {
  readonly name: string; // 'inbound' | 'outbound', for errors and the admin page
  readonly host: string;
  readonly port: number;
  readonly detectTimeoutMs: number;
  readonly maxConnections: number;
  readonly onConnection: ConnectionHandler;
  /**
   * Transparent capture: where each accepted connection was going (the
   * `target` handed on); called once per connection, before detection.
   */
  readonly destinationOf?: (socket: net.Socket, listenerPort: number) => ConnectionTarget | undefined;
  /**
   * Skip protocol detection for this target and hand the connection on as
   * TCP at once: for destinations that are piped whatever they speak (a
   * server-first protocol then waits for no detection timeout).
   */
  readonly opaque?: (target: ConnectionTarget | undefined) => boolean;
  /** Called once listening, before any connection is accepted (TPROXY sets IP_TRANSPARENT here). */
  readonly onListening?: (server: net.Server) => void;
}

export interface ConnectionTarget {
  readonly host: string;
  readonly port: number;
}

export interface Listener {
  readonly name: string;
  readonly port: number;
  /** Connections accepted so far, by detected protocol (the admin page shows them). */
  readonly accepted: Record<DetectedProtocol, number>;
  readonly activeConnections: () => number;
  close(): Promise<void>;
}

export async function startListener(options: ListenerOptions): Promise<Listener> {
  const sockets = new Set<net.Socket>();
  const accepted: Record<DetectedProtocol, number> = { http1: 0, h2c: 0, tls: 0, tcp: 0 };
  // allowHalfOpen: a TCP client's half-close is forwarded, not turned into a full close.
  const server = net.createServer({ allowHalfOpen: true, noDelay: true });
  server.maxConnections = options.maxConnections;
  server.on('connection', (socket) => {
    sockets.add(socket);
    socket.once('close', () => sockets.delete(socket));
    // A reset before anyone else listens must not crash the process; the protocol paths add their own.
    socket.on('error', ignoreError);
    // A dual-stack listener reports IPv4 peers as ::ffff:a.b.c.d; spans and logs want the plain address.
    const remoteAddress = plainAddress(socket.remoteAddress ?? '');
    const remotePort = socket.remotePort ?? 0;
    let target: ConnectionTarget | undefined;
    if (options.destinationOf !== undefined) {
      try {
        target = options.destinationOf(socket, port);
      } catch {
        // The socket died between accept and the lookup (EBADF, ENOTCONN): nothing to serve.
        socket.destroy();
        return;
      }
      if (options.opaque?.(target) === true) {
        accepted.tcp++;
        socket.pause();
        options.onConnection({ socket, head: EMPTY, protocol: 'tcp', sni: '', target, remoteAddress, remotePort });
        return;
      }
    }
    detectProtocol(socket, options.detectTimeoutMs, (detection) => {
      if (detection === undefined) {
        socket.destroy();
        return;
      }
      accepted[detection.protocol]++;
      options.onConnection({
        socket,
        head: detection.head,
        protocol: detection.protocol,
        sni: detection.sni,
        target,
        remoteAddress,
        remotePort,
      });
    });
  });
  await new Promise<void>((resolve, reject) => {
    const onError = (err: NodeJS.ErrnoException): void => {
      reject(new TracemeshError('TM_ERR_PROXY_LISTEN', `${options.name} listener cannot listen on ${options.host}:${options.port}: ${err.message}`, { cause: err }));
    };
    server.once('error', onError);
    server.listen(options.port, options.host, () => {
      server.removeListener('error', onError);
      resolve();
    });
  });
  server.on('error', ignoreError);
  const address = server.address();
  const port = typeof address === 'object' && address !== null ? address.port : options.port;
  if (options.onListening !== undefined) {
    try {
      options.onListening(server);
    } catch (err) {
      await new Promise<void>((resolve) => server.close(() => resolve()));
      throw err;
    }
  }
  let closing: Promise<void> | undefined;
  return {
    name: options.name,
    port,
    accepted,
    activeConnections: () => sockets.size,
    close() {
      closing ??= new Promise<void>((resolve) => {
        server.close(() => resolve());
        for (const socket of sockets) socket.destroy();
      });
      return closing;
    },
  };
}

function ignoreError(): void {
  // Socket errors are reported by whoever owns the socket; this only keeps an unowned one from crashing the process.
}
