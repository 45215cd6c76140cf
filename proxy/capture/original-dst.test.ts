import fs from 'node:fs';
import net from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { thrownTracemeshError as thrown } from '../../test/support/thrown.js';
import { inspectCaptureAddon, isTransparent, loadCaptureAddon, originalDestination, setTransparent } from './original-dst.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** A server on `where`: a host (ephemeral port; `::` is dual-stack) or a Unix socket path. */
async function listen(where: string): Promise<net.Server> {
  const server = net.createServer();
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(where.startsWith('/') ? { path: where } : { port: 0, host: where, ipv6Only: false }, resolve);
  });
  closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
  return server;
}

/** Connects to `server` at `to` (an address, or the Unix socket path) and returns both ends once accepted. */
async function connectPair(server: net.Server, to: string): Promise<{ accepted: net.Socket; client: net.Socket }> {
  const accepted = new Promise<net.Socket>((resolve) => server.once('connection', resolve));
  const client = to.startsWith('/') ? net.connect({ path: to }) : net.connect({ port: (server.address() as net.AddressInfo).port, host: to });
  await new Promise<void>((resolve, reject) => client.once('connect', resolve).once('error', reject));
  const socket = await accepted;
  closers.push(() => {
    client.destroy();
    socket.destroy();
  });
  return { accepted: socket, client };
}

/** A stand-in for a Node socket whose handle holds `fd`: the only way to hand the addon a bad descriptor. */
function socketWithFd(fd: number): net.Socket {
  return { _handle: { fd }, remoteAddress: '192.0.2.1', remotePort: 4242 } as unknown as net.Socket;
}

describe('the capture addon', () => {
  it('is built by npm install and loads', () => {
    expect(loadCaptureAddon()).toEqual({ ok: true });
  });

  it('says why when it was never built, failed to build, or does not load', () => {
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'tm-addon-'));
    closers.push(() => fs.rmSync(root, { recursive: true, force: true }));
    const missing = inspectCaptureAddon(root);
    expect(missing.ok).toBe(false);
    expect(!missing.ok && missing.reason).toMatch(/capture addon is not built \(.*tracemesh_capture\.node is missing\)/);

    fs.mkdirSync(path.join(root, 'build', 'Release'), { recursive: true });
    fs.writeFileSync(path.join(root, 'build', 'tracemesh-capture-build-error.txt'), 'node-gyp rebuild failed (exit 1): g++: not found\n\nfull log\n');
    const failed = inspectCaptureAddon(root);
    expect(!failed.ok && failed.reason).toMatch(/failed to build during npm install: node-gyp rebuild failed \(exit 1\): g\+\+: not found \(full log: /);

    fs.writeFileSync(path.join(root, 'build', 'Release', 'tracemesh_capture.node'), 'not an ELF file');
    const broken = inspectCaptureAddon(root);
    expect(!broken.ok && broken.reason).toMatch(/capture addon .*tracemesh_capture\.node did not load: .*(invalid ELF header|too short)/);
  });
});

describe('originalDestination', () => {
  it('is undefined for a loopback connection that was not redirected (IPv4)', async () => {
    const server = await listen('127.0.0.1');
    const { accepted, client } = await connectPair(server, '127.0.0.1');
    expect(originalDestination(accepted)).toBeUndefined();
    expect(originalDestination(client)).toBeUndefined();
  });

  it('is undefined for IPv6 and for IPv4-mapped connections on a dual-stack listener', async () => {
    const server = await listen('::');
    const v6 = await connectPair(server, '::1');
    expect(v6.accepted.remoteFamily).toBe('IPv6');
    expect(originalDestination(v6.accepted)).toBeUndefined();
    const mapped = await connectPair(server, '127.0.0.1');
    expect(mapped.accepted.remoteAddress).toBe('::ffff:127.0.0.1');
    expect(originalDestination(mapped.accepted)).toBeUndefined();
  });

  it('refuses a socket that has no descriptor (closed or never connected)', async () => {
    const server = await listen('127.0.0.1');
    const { accepted } = await connectPair(server, '127.0.0.1');
    accepted.destroy();
    const err = thrown(() => originalDestination(accepted));
    expect(err.code).toBe('TM_ERR_CAPTURE_SOCKOPT');
    expect(err.message).toMatch(/^the socket \(closed or not connected\) has no open file descriptor/);
    expect(thrown(() => originalDestination(new net.Socket())).message).toMatch(/^the socket \(closed or not connected\) has no open file descriptor/);
  });

  it('names the errno of a bad descriptor: closed (EBADF), not a socket (ENOTSOCK), not IP (EAFNOSUPPORT)', async () => {
    const fd = fs.openSync(os.devNull, 'r');
    fs.closeSync(fd);
    const closed = thrown(() => originalDestination(socketWithFd(fd)));
    expect(closed.code).toBe('TM_ERR_CAPTURE_SOCKOPT');
    expect(closed.message).toBe(
      `the original destination of the connection from 192.0.2.1:4242: getsockname (before SO_ORIGINAL_DST) on fd ${fd}: Bad file descriptor (EBADF)`,
    );
    expect((closed.cause as { code?: string }).code).toBe('EBADF');

    const file = fs.openSync(os.devNull, 'r');
    closers.push(() => fs.closeSync(file));
    const notSocket = thrown(() => originalDestination(socketWithFd(file)));
    expect((notSocket.cause as { code?: string }).code).toBe('ENOTSOCK');

    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tm-addon-'));
    closers.push(() => fs.rmSync(dir, { recursive: true, force: true }));
    const unixServer = await listen(path.join(dir, 'sock'));
    const unix = await connectPair(unixServer, path.join(dir, 'sock'));
    const notIp = thrown(() => originalDestination(unix.accepted));
    expect(notIp.message).toMatch(/getsockname \(before SO_ORIGINAL_DST\) on fd \d+: .* \(EAFNOSUPPORT\)/);
    expect((notIp.cause as { code?: string; syscall?: string }).syscall).toBe('getsockname');
  });
});

describe('setTransparent', () => {
  const root = process.getuid?.() === 0;

  // Unit tests also run unprivileged: there the kernel's EPERM (no CAP_NET_ADMIN) must come back named.
  it.each(['127.0.0.1', '::1', '::'])('sets the transparent option on a server listening on %s, and accepted sockets inherit it', async (host) => {
    const server = await listen(host);
    expect(isTransparent(server)).toBe(false);
    if (!root) {
      const err = thrown(() => setTransparent(server));
      expect(err.message).toMatch(/setting IP_TRANSPARENT on the server at .*: setsockopt\(IPV?6?_TRANSPARENT\) on fd \d+: Operation not permitted \(EPERM\)/);
      expect(isTransparent(server)).toBe(false);
      return;
    }
    setTransparent(server);
    expect(isTransparent(server)).toBe(true);
    const { accepted, client } = await connectPair(server, host === '::' ? '127.0.0.1' : host);
    expect(isTransparent(accepted)).toBe(true);
    expect(isTransparent(client)).toBe(false);
  });

  it('refuses a server that is not listening', () => {
    const err = thrown(() => setTransparent(net.createServer()));
    expect(err.code).toBe('TM_ERR_CAPTURE_SOCKOPT');
    expect(err.message).toMatch(/the server has no open file descriptor/);
  });
});
