/**
 * Transparent capture's socket options, through the native addon (proxy/capture/native/capture.c,
 * built by `npm install` into <root>/build/Release): the original destination of a connection that
 * iptables REDIRECTed to us, IP_TRANSPARENT for a TPROXY listener, and a transparent socket bound to
 * a client's address for an upstream connection that keeps it (transparent-connect.ts).
 *
 * The addon loads lazily, on first use, so explicit mode never needs it; `loadCaptureAddon()` says
 * why it is unavailable (never built, the build's error, or the dlopen error).
 */
import fs from 'node:fs';
import { createRequire } from 'node:module';
import type net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { TracemeshError, type ErrorCode } from '../../src/lib/errors.js';

export interface OriginalDestination {
  /** Dotted IPv4 or IPv6 text; an IPv4 connection on a dual-stack listener gives plain IPv4, never `::ffff:`. */
  address: string;
  port: number;
  family: 4 | 6;
}

export type CaptureAddonStatus = { ok: true } | { ok: false; reason: string };

/** What proxy/capture/native/capture.c exports. */
interface CaptureAddon {
  originalDst(fd: number): OriginalDestination;
  setTransparent(fd: number): void;
  isTransparent(fd: number): boolean;
  transparentSocket(family: 4 | 6, address: string, mark: number): number;
}

/** The native error: `code` is the errno name (ENOENT, EBADF, ENOPROTOOPT, ...). */
interface NativeError extends Error {
  code?: string;
  syscall?: string;
}

// Socket option failures on a live socket.
const SOCKOPT_ERROR: ErrorCode = 'TM_ERR_CAPTURE_SOCKOPT';
const UNAVAILABLE_ERROR: ErrorCode = 'TM_ERR_PROXY_MODE_UNAVAILABLE';

const ADDON_FILE = path.join('build', 'Release', 'tracemesh_capture.node');
const BUILD_ERROR_FILE = path.join('build', 'tracemesh-capture-build-error.txt');

/** The package root: the nearest directory above this module with a package.json (works from the sources and from dist/). */
function packageRoot(): string {
  let dir = path.dirname(fileURLToPath(import.meta.url));
  for (;;) {
    if (fs.existsSync(path.join(dir, 'package.json'))) return dir;
    const parent = path.dirname(dir);
    if (parent === dir) throw new Error(`no package.json above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
}

type Loaded = { ok: true; addon: CaptureAddon } | { ok: false; reason: string };
// Loaded once per process, like any module: a failed dlopen does not get better on retry.
let loaded: Loaded | undefined;

function load(): Loaded {
  if (loaded) return loaded;
  try {
    loaded = loadFrom(packageRoot());
  } catch (err) {
    loaded = { ok: false, reason: `the capture addon cannot be located: ${(err as Error).message}` };
  }
  return loaded;
}

function loadFrom(root: string): Loaded {
  if (process.platform !== 'linux') return { ok: false, reason: `transparent capture needs Linux (SO_ORIGINAL_DST, IP_TRANSPARENT); this is ${process.platform}` };
  const file = path.join(root, ADDON_FILE);
  if (!fs.existsSync(file)) {
    const errorFile = path.join(root, BUILD_ERROR_FILE);
    if (fs.existsSync(errorFile)) {
      const summary = fs.readFileSync(errorFile, 'utf8').split('\n')[0]?.trim() || 'no reason recorded';
      return { ok: false, reason: `the capture addon failed to build during npm install: ${summary} (full log: ${errorFile})` };
    }
    return { ok: false, reason: `the capture addon is not built (${file} is missing); run \`npm install\` or \`node scripts/build-native.mjs\` (needs g++, make and python3)` };
  }
  try {
    const addon = createRequire(import.meta.url)(file) as CaptureAddon;
    return { ok: true, addon };
  } catch (err) {
    return { ok: false, reason: `the capture addon ${file} did not load: ${(err as Error).message}` };
  }
}

/** Loads the addon if it is not loaded yet and says whether it can be used, and if not, why. */
export function loadCaptureAddon(): CaptureAddonStatus {
  const result = load();
  return result.ok ? { ok: true } : { ok: false, reason: result.reason };
}

/** The same check against another package root, without caching (for tests of the reasons). */
export function inspectCaptureAddon(root: string): CaptureAddonStatus {
  const result = loadFrom(root);
  return result.ok ? { ok: true } : { ok: false, reason: result.reason };
}

function addon(): CaptureAddon {
  const result = load();
  if (!result.ok) throw new TracemeshError(UNAVAILABLE_ERROR, `transparent capture is unavailable: ${result.reason}`);
  return result.addon;
}

/** The file descriptor under a Node socket or server; the one place that reaches into `_handle`. */
function fdOf(target: net.Socket | net.Server, what: string): number {
  const fd = (target as unknown as { _handle?: { fd?: number } | null })._handle?.fd;
  if (typeof fd !== 'number' || fd < 0) {
    throw new TracemeshError(SOCKOPT_ERROR, `${what} has no open file descriptor (closed, not yet connected or listening, or not a TCP socket)`);
  }
  return fd;
}

function sockoptError(err: unknown, what: string): TracemeshError {
  const native = err as NativeError;
  return new TracemeshError(SOCKOPT_ERROR, `${what}: ${native.message ?? String(err)}`, { cause: err });
}

/**
 * The address and port a REDIRECTed connection was originally sent to, or `undefined` when the
 * connection was not redirected. The kernel says so in two ways: ENOENT when conntrack does not
 * track the connection at all, and, once nat rules exist in the namespace and conntrack tracks
 * everything, an "original" destination that is just the socket's own local address and port
 * (no NAT happened). Both mean undefined here, so a connection made straight to the capture
 * port is never forwarded back to itself.
 *
 * On a dual-stack (`::`) listener an IPv4 connection is looked up in IPv4 conntrack and comes back
 * as `{ family: 4, address: '10.0.0.5' }`, the form service VIPs are written in; a native IPv6
 * connection uses IP6T_SO_ORIGINAL_DST. For TPROXY-captured connections the original destination
 * is simply the socket's local address (socket.localAddress/localPort); no NAT is involved.
 */
export function originalDestination(socket: net.Socket): OriginalDestination | undefined {
  const native = addon();
  const connection = socket.remoteAddress === undefined ? 'the socket (closed or not connected)' : `the connection from ${socket.remoteAddress}:${socket.remotePort}`;
  const fd = fdOf(socket, connection);
  let original: OriginalDestination;
  try {
    original = native.originalDst(fd);
  } catch (err) {
    if ((err as NativeError).code === 'ENOENT') return undefined;
    throw sockoptError(err, `the original destination of ${connection}`);
  }
  const local = socket.localAddress?.startsWith('::ffff:') ? socket.localAddress.slice(7) : socket.localAddress;
  return original.port === socket.localPort && original.address === local ? undefined : original;
}

/**
 * Sets IP_TRANSPARENT (IPv4 server) or IPV6_TRANSPARENT (IPv6 or dual-stack server) on a listening
 * server, so TPROXY can hand it connections addressed to other hosts. Call it once `listening` has
 * fired: Node creates, binds and listens the socket in one step, so there is no fd earlier. That is
 * enough for TPROXY, which checks the flag when it looks the listener up per packet; accepted
 * sockets inherit it. Needs CAP_NET_ADMIN (EPERM otherwise).
 */
export function setTransparent(server: net.Server): void {
  const native = addon();
  const fd = fdOf(server, 'the server');
  try {
    native.setTransparent(fd);
  } catch (err) {
    throw sockoptError(err, `setting IP_TRANSPARENT on the server at ${describeAddress(server)}`);
  }
}

/** Whether IP_TRANSPARENT / IPV6_TRANSPARENT is set on a listening server (or an accepted socket). */
export function isTransparent(target: net.Server | net.Socket): boolean {
  const native = addon();
  const fd = fdOf(target, 'the socket');
  try {
    return native.isTransparent(fd);
  } catch (err) {
    throw sockoptError(err, 'reading IP_TRANSPARENT');
  }
}

function describeAddress(server: net.Server): string {
  const address = server.address();
  if (address === null) return '(not listening)';
  if (typeof address === 'string') return address;
  return `${address.address}:${address.port}`;
}

/**
 * A new non-blocking TCP socket (its file descriptor, owned by the caller) with IP_TRANSPARENT /
 * IPV6_TRANSPARENT and SO_MARK `mark` (0: none), bound to `address` port 0, not connected: the
 * start of a connection that comes from an address this host does not own. Needs CAP_NET_ADMIN.
 * Throws TM_ERR_CAPTURE_SOCKOPT naming the step that failed (EPERM without the capability).
 */
export function openTransparentSocket(family: 4 | 6, address: string, mark: number): number {
  const native = addon();
  try {
    return native.transparentSocket(family, address, mark);
  } catch (err) {
    const hint = (err as NativeError).code === 'EPERM' ? ' (the proxy needs CAP_NET_ADMIN for IP_TRANSPARENT and SO_MARK)' : '';
    throw sockoptError(err, `a transparent socket from ${address}${hint}`);
  }
}
