/**
 * Upstream connections that come from the downstream client's address, so that under TPROXY
 * capture the app sees the real client as its peer (Envoy's original_src, for us).
 *
 * How (each step checked in network namespaces, test/system/tproxy-source.test.ts):
 * - The addon makes a non-blocking TCP socket with IP_TRANSPARENT (bind may then take an
 *   address this host does not own) and SO_MARK = the capture mark, bound to (client, 0).
 *   Node wraps it with `new net.Socket({ fd })` (libuv's uv_tcp_open) and `connect()`
 *   (uv_tcp_connect), which keeps an already bound fd: it binds only when the handle is
 *   asked to bind, and connects the fd it was given. So connect, its errors and the
 *   `connect` event are Node's own; nothing is connected in C.
 * - The target must be the pod's own address at the captured port (the connection's original
 *   destination), not 127.0.0.1: a packet from a non-local address to loopback is a martian.
 * - The rules of `tracemesh iptables --mode tproxy` carry it (iptables-rules.ts): the mark
 *   exempts it from nat REDIRECT and from TPROXY as it loops through lo, PREROUTING saves the
 *   mark as the connection mark, and OUTPUT restores it on the app's replies, which then route
 *   through the TPROXY table to lo and back to this socket instead of out to the real client.
 *   `mark` must therefore equal the rules' --tproxy-mark (default 0x539).
 * - Needs CAP_NET_ADMIN (IP_TRANSPARENT, SO_MARK), which a TPROXY proxy has anyway.
 */
import fs from 'node:fs';
import net from 'node:net';
import { TracemeshError } from '../../src/lib/errors.js';
import { CAPTURE_DEFAULTS } from './iptables-rules.js';
import { openTransparentSocket } from './original-dst.js';

/** The net.Socket options the proxy's pools pass to net.connect, honoured the same way here. */
export interface UpstreamSocketOptions {
  allowHalfOpen?: boolean;
  noDelay?: boolean;
  onread?: net.OnReadOpts;
}

export interface ConnectFromOptions extends UpstreamSocketOptions {
  /** Destroy the socket with TM_ERR_UPSTREAM when it has not connected within this; 0 or absent: no limit. */
  timeoutMs?: number;
  /** SO_MARK of the connection: the --tproxy-mark the capture rules were installed with. */
  mark?: number;
}

const BAD_ARGUMENT = 'TM_ERR_CAPTURE_SOCKOPT';

/** `::ffff:10.0.0.1` (an IPv4 client on a dual-stack listener) → `10.0.0.1`; other text unchanged. */
export function plainAddress(address: string): string {
  return address.startsWith('::ffff:') && net.isIPv4(address.slice(7)) ? address.slice(7) : address;
}

function isLoopback(address: string): boolean {
  return address === '::1' || (net.isIPv4(address) && address.startsWith('127.'));
}

function checkArguments(source: string, host: string, port: number, options: ConnectFromOptions): void {
  const problems: string[] = [];
  if (typeof source !== 'string' || net.isIP(source) === 0) problems.push(`source ${JSON.stringify(source)} is not an IP address`);
  if (typeof host !== 'string' || net.isIP(host) === 0) problems.push(`host ${JSON.stringify(host)} is not an IP address (connect to the original destination's address)`);
  if (!Number.isInteger(port) || port < 1 || port > 65_535) problems.push(`port ${JSON.stringify(port)} is not an integer from 1 to 65535`);
  const { timeoutMs, mark } = options;
  if (timeoutMs !== undefined && !(Number.isFinite(timeoutMs) && timeoutMs >= 0)) problems.push(`timeoutMs ${JSON.stringify(timeoutMs)} is not a number >= 0`);
  if (mark !== undefined && !(Number.isInteger(mark) && mark >= 0 && mark <= 0xffff_ffff)) problems.push(`mark ${JSON.stringify(mark)} is not an integer from 0 to 0xffffffff`);
  if (problems.length === 0) {
    if (net.isIP(source) !== net.isIP(host)) problems.push(`source ${source} and host ${host} are not of one address family`);
    else if (isLoopback(host) && !isLoopback(source)) {
      problems.push(`host ${host} is a loopback address: a packet from ${source} to it is a martian; connect to the pod's own address at the captured port`);
    }
  }
  if (problems.length > 0) throw new TracemeshError(BAD_ARGUMENT, `connectFrom: ${problems.join('; ')}`);
}

function onConnectTimeout(socket: net.Socket, what: string, ms: number): void {
  if (socket.connecting) socket.destroy(new TracemeshError('TM_ERR_UPSTREAM', `${what} timed out after ${ms} ms`));
}

/**
 * A TCP connection to `host`:`port` whose source address is `source` (a downstream client's,
 * usually not this host's), returned connecting, like net.connect: `connect` when it is up,
 * `error` + `close` when it fails (refused, timed out, or the transparent socket could not be
 * made: no addon, EPERM without CAP_NET_ADMIN; those errors are TracemeshErrors). Arguments that
 * cannot work (not IP addresses, mixed families, a loopback target for a foreign source) throw
 * TM_ERR_CAPTURE_SOCKOPT at once.
 */
export function connectFrom(source: string, host: string, port: number, options: ConnectFromOptions = {}): net.Socket {
  const from = typeof source === 'string' ? plainAddress(source) : source;
  const to = typeof host === 'string' ? plainAddress(host) : host;
  checkArguments(from, to, port, options);
  const what = `connect from ${from} to ${net.isIPv6(to) ? `[${to}]` : to}:${port}`;
  const socketOptions: net.SocketConstructorOpts & { noDelay?: boolean } = {
    allowHalfOpen: options.allowHalfOpen ?? false,
    noDelay: options.noDelay ?? false,
    ...(options.onread === undefined ? {} : { onread: options.onread }),
  };
  let fd: number;
  try {
    fd = openTransparentSocket(net.isIPv6(from) ? 6 : 4, from, options.mark ?? CAPTURE_DEFAULTS.tproxyMark);
  } catch (err) {
    // Reported like any connect failure, on the socket, so callers have one error path.
    const failed = new net.Socket(socketOptions);
    process.nextTick(() => failed.destroy(err as Error));
    return failed;
  }
  let socket: net.Socket;
  try {
    socket = new net.Socket({ ...socketOptions, fd });
  } catch (err) {
    fs.closeSync(fd);
    throw err;
  }
  socket.connect({ host: to, port });
  const timeoutMs = options.timeoutMs ?? 0;
  if (timeoutMs > 0) {
    const timer = setTimeout(onConnectTimeout, timeoutMs, socket, what, timeoutMs).unref();
    socket.once('connect', () => clearTimeout(timer));
    socket.once('close', () => clearTimeout(timer));
  }
  return socket;
}

/** Where an upstream connection goes: an address (the original destination under TPROXY) and port. */
export interface UpstreamTarget {
  host: string;
  port: number;
}

/**
 * How a proxy direction opens upstream connections. Pools call `connect` instead of net.connect,
 * with the downstream client's address, and add `sourceKey(client)` to their pool key: a
 * connection made from one client's address must never carry another client's requests.
 */
export interface UpstreamConnector {
  /** True when connections can come from the client's address (TPROXY): pools must key by sourceKey. */
  readonly keepsClientAddress: boolean;
  /** The client address a connection to `target` for `client` would come from; '' when it comes from the proxy's own. */
  sourceKey(target: UpstreamTarget, client: string | undefined): string;
  /** A connecting socket (net.connect's contract): from the client's address when sourceKey is not ''. */
  connect(target: UpstreamTarget, client: string | undefined, options?: UpstreamSocketOptions): net.Socket;
}

export type UpstreamSourceMode = 'explicit' | 'redirect' | 'tproxy';

export interface UpstreamConnectorOptions {
  /** The capture rules' --tproxy-mark (default 0x539). */
  mark?: number;
  /** Connect timeout of connections made from a client's address (net.connect has none; pools keep their own). */
  connectTimeoutMs?: number;
}

function plainConnect(target: UpstreamTarget, options: UpstreamSocketOptions = {}): net.Socket {
  return net.connect({ host: target.host, port: target.port, ...options });
}

const PROXY_OWN_ADDRESS: UpstreamConnector = {
  keepsClientAddress: false,
  sourceKey: () => '',
  connect: (target, _client, options) => plainConnect(target, options),
};

/**
 * The connector for a capture mode. REDIRECT and explicit mode connect from the proxy's own
 * address (the app learns the client from x-forwarded-for). TPROXY connects from the client's
 * address when that can work: a non-loopback client of the target's family and a non-loopback
 * target (the pod's own address); otherwise (a client inside the pod, a 127.0.0.1 target) it
 * connects as the others do.
 */
export function upstreamConnector(mode: UpstreamSourceMode, options: UpstreamConnectorOptions = {}): UpstreamConnector {
  if (mode !== 'tproxy') return PROXY_OWN_ADDRESS;
  const mark = options.mark ?? CAPTURE_DEFAULTS.tproxyMark;
  const timeoutMs = options.connectTimeoutMs ?? 0;
  const sourceKey = (target: UpstreamTarget, client: string | undefined): string => {
    if (client === undefined) return '';
    const from = plainAddress(client);
    const to = plainAddress(target.host);
    const family = net.isIP(from);
    if (family === 0 || family !== net.isIP(to) || isLoopback(from) || isLoopback(to)) return '';
    return from;
  };
  return {
    keepsClientAddress: true,
    sourceKey,
    connect(target, client, socketOptions = {}) {
      const from = sourceKey(target, client);
      if (from === '') return plainConnect(target, socketOptions);
      return connectFrom(from, plainAddress(target.host), target.port, { ...socketOptions, mark, timeoutMs });
    },
  };
}
