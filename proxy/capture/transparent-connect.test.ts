// What can be checked on one host's loopback: arguments, errors, Node's socket options on a
// transparent socket, the connector's choices. That a connection really comes from a foreign
// client's address through the TPROXY rules is test/system/tproxy-source.test.ts.
import { execFile } from 'node:child_process';
import net from 'node:net';
import { fileURLToPath } from 'node:url';
import { promisify } from 'node:util';
import { afterEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { thrownTracemeshError as thrown } from '../../test/support/thrown.js';
import { connectFrom, plainAddress, upstreamConnector } from './transparent-connect.js';

const root = process.getuid?.() === 0;
const execFileAsync = promisify(execFile);

const closers: Array<() => void> = [];
afterEach(() => {
  for (const close of closers.splice(0).reverse()) close();
});

/** A server on 127.0.0.1 answering each connection with the peer it saw, then echoing. */
async function whoAmIServer(): Promise<number> {
  const server = net.createServer((socket) => {
    socket.on('error', () => socket.destroy());
    socket.write(`${socket.remoteAddress}\n`);
    socket.pipe(socket);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => server.close());
  return (server.address() as net.AddressInfo).port;
}

function outcome(socket: net.Socket): Promise<{ connected: boolean; error?: Error }> {
  closers.push(() => socket.destroy());
  return new Promise((resolve) => {
    socket.once('connect', () => resolve({ connected: true }));
    socket.once('error', (error) => resolve({ connected: false, error }));
  });
}

describe('connectFrom arguments', () => {
  it.each([
    [['10.0.0.1', 'b', 80], /host "b" is not an IP address/],
    [['nobody', '10.0.0.2', 80], /source "nobody" is not an IP address/],
    [['10.0.0.1', '10.0.0.2', 0], /port 0 is not an integer from 1 to 65535/],
    [['10.0.0.1', '10.0.0.2', 70_000], /port 70000 is not an integer/],
    [['10.0.0.1', 'fd00::2', 80], /source 10.0.0.1 and host fd00::2 are not of one address family/],
    [['10.0.0.1', '127.0.0.1', 80], /host 127.0.0.1 is a loopback address: a packet from 10.0.0.1 to it is a martian/],
    [['fd00::1', '::1', 80], /host ::1 is a loopback address/],
  ] as const)('%j is refused at once, naming what is wrong', (args, message) => {
    const err = thrown(() => connectFrom(args[0], args[1], args[2]));
    expect(err.code).toBe('TM_ERR_CAPTURE_SOCKOPT');
    expect(err.message).toMatch(/^connectFrom: /);
    expect(err.message).toMatch(message);
  });

  it('refuses a bad timeout and mark, every problem in one message', () => {
    const err = thrown(() => connectFrom('10.0.0.1', '10.0.0.2', 80, { timeoutMs: -1, mark: 2 ** 32 }));
    expect(err.message).toContain('timeoutMs -1 is not a number >= 0');
    expect(err.message).toContain('mark 4294967296 is not an integer from 0 to 0xffffffff');
  });

  it('reads an IPv4-mapped client address (a dual-stack listener) as IPv4', () => {
    expect(plainAddress('::ffff:10.1.2.3')).toBe('10.1.2.3');
    expect(plainAddress('fd00::1')).toBe('fd00::1');
    expect(plainAddress('::ffff:zz')).toBe('::ffff:zz');
  });
});

/**
 * What connectFrom reports without CAP_NET_ADMIN. As root (CI) the check runs in a child
 * process as nobody with no capabilities (setpriv), so the EPERM path is tested either way.
 */
async function withoutCapability(): Promise<{ connected: boolean; code: string; message: string }> {
  if (!root) {
    const result = await outcome(connectFrom('127.0.0.2', '127.0.0.1', 9));
    return { connected: result.connected, code: isTracemeshError(result.error) ? result.error.code : '', message: result.error?.message ?? '' };
  }
  const helper = fileURLToPath(new URL('./connect-without-capability.test-helper.ts', import.meta.url));
  const viteNode = fileURLToPath(new URL('../../node_modules/.bin/vite-node', import.meta.url));
  const args = ['--reuid', '65534', '--regid', '65534', '--clear-groups', '--inh-caps=-all', '--bounding-set=-all', process.execPath, viteNode, helper];
  const { stdout } = await execFileAsync('setpriv', args, { timeout: 30_000 });
  return JSON.parse(stdout) as { connected: boolean; code: string; message: string };
}

describe('connectFrom without CAP_NET_ADMIN', () => {
  it('fails on the socket, like a refused connect, with the EPERM named', async () => {
    const result = await withoutCapability();
    expect(result.connected).toBe(false);
    expect(result.code).toBe('TM_ERR_CAPTURE_SOCKOPT');
    expect(result.message).toMatch(/a transparent socket from 127\.0\.0\.2 \(the proxy needs CAP_NET_ADMIN.*\): setsockopt\(IP_TRANSPARENT\): Operation not permitted \(EPERM\)/);
  });
});

describe.runIf(root)('connectFrom with CAP_NET_ADMIN (root)', () => {
  it('connects from the address it was given, with the socket options of net.connect (allowHalfOpen, noDelay, onread)', async () => {
    const port = await whoAmIServer();
    const chunks: string[] = [];
    const buffer = Buffer.alloc(1024);
    const socket = connectFrom('::ffff:127.0.0.2', '127.0.0.1', port, {
      allowHalfOpen: true,
      noDelay: true,
      timeoutMs: 5_000,
      onread: { buffer, callback: (n, buf) => (chunks.push(Buffer.from(buf.subarray(0, n)).toString()), true) },
    });
    expect(socket.connecting).toBe(true);
    expect(await outcome(socket)).toEqual({ connected: true });
    expect(socket.localAddress).toBe('127.0.0.2');
    expect(socket.allowHalfOpen).toBe(true);
    socket.end('ping\n');
    await new Promise((resolve) => socket.once('end', resolve));
    expect(chunks.join('')).toBe('127.0.0.2\nping\n');
  });

  it('reports a refused connection as net.connect does', async () => {
    const port = await whoAmIServer();
    closers.splice(0).forEach((close) => close());
    const result = await outcome(connectFrom('127.0.0.2', '127.0.0.1', port));
    expect(result).toMatchObject({ connected: false, error: { code: 'ECONNREFUSED' } });
  });

  it('says which step failed when the socket cannot be made (bind to a link-local address without an interface)', async () => {
    // Fails at bind, before any packet: nothing leaves this host's namespace.
    const result = await outcome(connectFrom('fe80::1', '2001:db8::2', 80));
    expect(result.connected).toBe(false);
    expect(isTracemeshError(result.error) && result.error.code).toBe('TM_ERR_CAPTURE_SOCKOPT');
    expect(result.error?.message).toBe('a transparent socket from fe80::1: bind to [fe80::1] port 0: Invalid argument (EINVAL)');
  });
});

describe('upstreamConnector', () => {
  it('explicit and REDIRECT: always from the proxy, no per-client key', async () => {
    const port = await whoAmIServer();
    for (const mode of ['explicit', 'redirect'] as const) {
      const connector = upstreamConnector(mode);
      expect(connector.keepsClientAddress).toBe(false);
      expect(connector.sourceKey({ host: '10.0.0.2', port }, '10.0.0.1')).toBe('');
      const socket = connector.connect({ host: '127.0.0.1', port }, '10.0.0.1', { noDelay: true });
      expect(await outcome(socket)).toEqual({ connected: true });
      expect(socket.localAddress).toBe('127.0.0.1');
    }
  });

  it('TPROXY: from the client when that can work, keyed by the client; else from the proxy', () => {
    const connector = upstreamConnector('tproxy');
    expect(connector.keepsClientAddress).toBe(true);
    const pod = { host: '10.0.0.2', port: 9080 };
    expect(connector.sourceKey(pod, '::ffff:10.0.0.1')).toBe('10.0.0.1');
    expect(connector.sourceKey({ host: 'fd00::2', port: 9080 }, 'fd00::1')).toBe('fd00::1');
    // No client, a client inside the pod, another family, a loopback target: the proxy's own address.
    expect(connector.sourceKey(pod, undefined)).toBe('');
    expect(connector.sourceKey(pod, '127.0.0.1')).toBe('');
    expect(connector.sourceKey(pod, 'fd00::1')).toBe('');
    expect(connector.sourceKey({ host: '127.0.0.1', port: 9080 }, '10.0.0.1')).toBe('');
  });

  it('TPROXY with a loopback target connects as the other modes do', async () => {
    const port = await whoAmIServer();
    const socket = upstreamConnector('tproxy').connect({ host: '127.0.0.1', port }, '10.0.0.1');
    expect(await outcome(socket)).toEqual({ connected: true });
    expect(socket.localAddress).toBe('127.0.0.1');
  });
});
