/**
 * The hand-off from the listener tier (accept, protocol detection, CONNECT)
 * to a protocol path. Detection has already read some bytes from the socket;
 * they arrive in `head`, and the protocol path consumes them before anything
 * it reads from the socket itself. The socket is paused when handed over.
 */
import type { Socket } from 'node:net';

export type DetectedProtocol = 'http1' | 'h2c' | 'tls' | 'tcp';

export interface AcceptedConnection {
  readonly socket: Socket;
  readonly head: Buffer;
  readonly protocol: DetectedProtocol;
  /** Server name from a TLS ClientHello, '' when not TLS or absent. */
  readonly sni: string;
  /**
   * The destination the client asked for before the proxy got the connection:
   * the CONNECT target in explicit mode, the original destination in
   * transparent mode; undefined for plain inbound/outbound listener traffic.
   */
  readonly target: { readonly host: string; readonly port: number } | undefined;
  /** The downstream peer, captured at accept (a closed socket forgets it). */
  readonly remoteAddress: string;
  readonly remotePort: number;
}

export type ConnectionHandler = (conn: AcceptedConnection) => void;
