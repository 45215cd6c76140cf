/**
 * Reaching a pod's port from the host without touching the host's network:
 * a relay process inside the pod listens on a Unix socket (a path in the
 * file system, which every network namespace sees alike) and connects each
 * client on to the port inside the pod; in this process a TCP listener on the
 * host's 127.0.0.1 hands each connection to that socket. The test or the demo
 * then queries, say, the collector in the infra pod with a plain URL.
 */
import net from 'node:net';
import path from 'node:path';
import type { PodProcess } from './pod-process.js';

/** The relay, run with `node -e` so it needs no file of its own. Args: socket path, target host, target port. */
export const RELAY_SOURCE = `
const net = require('node:net');
const fs = require('node:fs');
const [socketPath, host, port] = process.argv.slice(1);
try { fs.unlinkSync(socketPath); } catch {}
const server = net.createServer((client) => {
  const upstream = net.connect({ host, port: Number(port) });
  const close = () => { client.destroy(); upstream.destroy(); };
  client.pipe(upstream).pipe(client);
  client.on('error', close); upstream.on('error', close);
  client.on('close', close); upstream.on('close', close);
});
server.listen(socketPath, () => process.stdout.write('relay ready\\n'));
process.on('SIGTERM', () => { server.close(); process.exit(0); });
`;

export interface PortForward {
  /** Always 127.0.0.1. */
  host: string;
  /** The host-side port (ephemeral). */
  port: number;
  /** e.g. http://127.0.0.1:41234 */
  url: string;
  /** Stops the listener and the relay; open connections are cut. Safe twice. */
  close(): Promise<void>;
}

const RELAY_READY_MS = 10_000;

/** `startRelay(socketPath)` spawns RELAY_SOURCE inside the pod (the network does this, so teardown also stops it). */
export async function openPortForward(socketDir: string, index: number, startRelay: (socketPath: string) => PodProcess): Promise<PortForward> {
  const socketPath = path.join(socketDir, `forward-${index}.sock`);
  const relay = startRelay(socketPath);
  await relay.waitForLine(/^relay ready$/, RELAY_READY_MS);
  const sockets = new Set<net.Socket>();
  const server = net.createServer((client) => {
    const upstream = net.connect(socketPath);
    sockets.add(client).add(upstream);
    const close = (): void => {
      client.destroy();
      upstream.destroy();
      sockets.delete(client);
      sockets.delete(upstream);
    };
    client.pipe(upstream).pipe(client);
    client.on('error', close);
    upstream.on('error', close);
    client.on('close', close);
    upstream.on('close', close);
  });
  try {
    await new Promise<void>((resolve, reject) => {
      server.once('error', reject);
      server.listen(0, '127.0.0.1', () => resolve());
    });
  } catch (err) {
    await relay.stop();
    throw err;
  }
  const port = (server.address() as net.AddressInfo).port;
  let closed: Promise<void> | undefined;
  return {
    host: '127.0.0.1',
    port,
    url: `http://127.0.0.1:${port}`,
    close() {
      closed ??= (async () => {
        for (const socket of sockets) socket.destroy();
        await new Promise<void>((resolve) => server.close(() => resolve()));
        await relay.stop();
      })();
      return closed;
    },
  };
}
