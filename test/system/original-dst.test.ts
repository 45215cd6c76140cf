import { spawn } from 'node:child_process';
import type net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { originalDestination, type OriginalDestination } from '../../proxy/capture/original-dst.js';
import { run } from '../support/netns.js';

// Addresses on the namespace's own lo: connecting to them is local, so nat OUTPUT sees the packets.
const V4 = '10.77.0.5';
const V6 = 'fd77::5';

/** A bare namespace of our own with lo up and both test addresses on it; removed by `remove`. */
function createNamespace(): { name: string; remove(): void } {
  if (process.getuid?.() !== 0) throw new Error('system tests need root (network namespaces and iptables)');
  const name = `tmodst${process.pid % 100000}`;
  run('ip', ['netns', 'add', name]);
  const remove = () => run('ip', ['netns', 'del', name]);
  try {
    const inNs = (...args: string[]) => run('ip', ['netns', 'exec', name, ...args]);
    inNs('ip', 'link', 'set', 'lo', 'up');
    if (!inNs('ip', '-6', 'addr', 'show', 'dev', 'lo').includes('::1/128')) {
      throw new Error('the namespace has no IPv6 (no ::1 on lo): IPv6 capture cannot be tested on this machine');
    }
    inNs('ip', 'addr', 'add', `${V4}/32`, 'dev', 'lo');
    inNs('ip', '-6', 'addr', 'add', `${V6}/128`, 'dev', 'lo', 'nodad');
  } catch (err) {
    remove();
    throw err;
  }
  return { name, remove };
}

interface Observed {
  client: { address: string; port: number };
  original: OriginalDestination | undefined;
}

/**
 * Runs the fixture in the namespace; it passes each accepted socket over the IPC channel, and this
 * process reads the socket's original destination, so the TypeScript module itself is under test.
 */
function observeRedirects(namespace: string): Promise<Map<string, Observed>> {
  const script = path.join(import.meta.dirname, 'fixtures', 'original-dst-redirect.mjs');
  const child = spawn('ip', ['netns', 'exec', namespace, process.execPath, script, V4, V6], { stdio: ['ignore', 'pipe', 'pipe', 'ipc'] });
  const seen = new Map<string, Observed>();
  let stderr = '';
  child.stderr?.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const deadline = setTimeout(() => child.kill('SIGKILL'), 20_000);
    child.on('message', (message: { name: string; client: Observed['client'] }, handle: unknown) => {
      const socket = handle as net.Socket;
      try {
        seen.set(message.name, { client: message.client, original: originalDestination(socket) });
      } catch (err) {
        reject(err);
        child.kill('SIGKILL');
      } finally {
        socket.destroy();
      }
      if (seen.size === 4) child.send('done');
    });
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(deadline);
      if (code === 0 && seen.size === 4) resolve(seen);
      else reject(new Error(`the fixture exited with ${code ?? signal} after ${seen.size} of 4 connections: ${stderr.trim() || '(no stderr)'}`));
    });
  });
}

let ns: { name: string; remove(): void } | undefined;
let seen: Map<string, Observed>;

beforeAll(async () => {
  ns = createNamespace();
  seen = await observeRedirects(ns.name);
});

afterAll(() => {
  ns?.remove();
});

describe('the original destination of REDIRECTed connections, in a network namespace', () => {
  it('is the IPv4 address and port the client dialled', () => {
    expect(seen.get('ipv4')?.original).toEqual({ address: V4, port: 8080, family: 4 });
  });

  it('is plain IPv4 (not ::ffff:) for an IPv4 connection accepted by a dual-stack listener', () => {
    expect(seen.get('ipv4 on a dual-stack listener')?.original).toEqual({ address: V4, port: 8081, family: 4 });
  });

  it('is the IPv6 address and port the client dialled (ip6tables)', () => {
    expect(seen.get('ipv6')?.original).toEqual({ address: V6, port: 8082, family: 6 });
  });

  // With nat rules in the namespace conntrack tracks this one too and the kernel answers with the
  // socket's own address; the unit test covers the other answer, ENOENT (not tracked at all).
  it('is undefined for a connection that was not redirected', () => {
    expect(seen.get('not redirected')).toEqual({ client: { address: '127.0.0.1', port: expect.any(Number) }, original: undefined });
  });
});
