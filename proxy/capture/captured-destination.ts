/**
 * Where a captured connection was going. REDIRECT rewrites the destination,
 * so the kernel's conntrack entry has it (SO_ORIGINAL_DST); TPROXY leaves the
 * packet alone, so the socket's own local address is the original one. A
 * connection made straight to the listener's port was not captured at all.
 * Both capture modes are read the same way, so the proxy needs no flag to
 * know which rules the init step installed.
 */
import type net from 'node:net';
import { originalDestination } from './original-dst.js';

export interface CapturedDestination {
  readonly host: string;
  readonly port: number;
}

export function capturedDestination(socket: net.Socket, listenerPort: number): CapturedDestination | undefined {
  const redirected = originalDestination(socket);
  if (redirected !== undefined) return { host: redirected.address, port: redirected.port };
  const localPort = socket.localPort;
  const localAddress = socket.localAddress;
  if (localPort === undefined || localAddress === undefined || localPort === listenerPort) return undefined;
  return { host: plainAddress(localAddress), port: localPort };
}

/** `::ffff:10.0.0.1` (an IPv4 peer of a dual-stack socket) → `10.0.0.1`. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && address.includes('.') ? address.slice(7) : address;
}
