/**
 * The pod topology of the transparent-capture test and `tracemesh demo
 * --transparent`, built for real: namespaces, a bridge, veths, /etc/netns
 * names, processes as root and as uid 1337. Needs root.
 */
import { execFileSync, spawn } from 'node:child_process';
import { chmodSync, copyFileSync, existsSync, mkdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import net from 'node:net';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeshNetwork } from '../../src/netns/mesh-network.js';
import type { MeshNetwork } from '../../src/netns/mesh-network.js';
import { listNamespaces } from '../../src/netns/namespaces.js';
import { isNetnsError } from '../../src/netns/netns-error.js';
import { PROXY_USER } from '../../src/netns/process-user.js';
import { assertRoot } from '../../src/netns/root-check.js';
import { cleanupStale } from '../../src/netns/stale.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = path.join(REPO, 'test/system/fixtures');
const NODE = process.execPath;
const ECHO_PORT = 8080;
const READY_MS = 10_000;
/** CAP_NET_ADMIN is bit 12 of the capability sets. */
const CAP_NET_ADMIN = 1n << 12n;

function fixture(name: string): string {
  return path.join(FIXTURES, name);
}

function hostLinkNames(): string[] {
  return execFileSync('ip', ['-o', 'link', 'show'], { encoding: 'utf8' })
    .split('\n')
    .map((line) => /^\d+:\s+([^:@\s]+)/.exec(line)?.[1])
    .filter((name): name is string => name !== undefined);
}

/** Gone, or a zombie waiting for a parent that will never reap it (pid 1 in some containers): either way it runs no more. */
function isGone(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat.slice(stat.lastIndexOf(')') + 2).startsWith('Z');
  } catch {
    return true;
  }
}

function leftovers(prefix: string): { namespaces: string[]; etc: string[] } {
  const etc = existsSync('/etc/netns') ? execFileSync('ls', ['/etc/netns'], { encoding: 'utf8' }).split('\n') : [];
  return {
    namespaces: listNamespaces().filter((name) => name.startsWith(`${prefix}-`)),
    etc: etc.filter((name) => name.startsWith(`${prefix}-`)),
  };
}

/** An interface of ours would be named like this (see names.ts); none may ever appear in the host. */
function isOurInterfaceName(name: string, prefix: string): boolean {
  return /^vp\d+$/.test(name) || name === 'tmbr0' || name.startsWith(prefix);
}

// Without root every test here fails with this one line, instead of each with its own `ip` error.
beforeAll(() => assertRoot());

describe('a mesh network of three pods and infra', () => {
  let network: MeshNetwork;
  let linksBefore: string[];

  beforeAll(() => {
    linksBefore = hostLinkNames();
    network = createMeshNetwork({ base: 'tmt', pods: [{ name: 'a' }, { name: 'b' }, { name: 'c', aliases: ['c-alias'] }] });
  });

  afterAll(async () => {
    await network?.teardown();
  });

  it('gives every pod its own IPv4 and IPv6 address on eth0 and loopback up, and the host no interface of ours', async () => {
    const addresses = new Set<string>();
    for (const pod of network.pods()) {
      const result = await network.run(pod.name, { command: 'ip', args: ['-o', 'addr', 'show'] });
      expect(result.code, result.stderr).toBe(0);
      expect(result.stdout).toMatch(new RegExp(`\\d+: eth0\\s+inet ${pod.ipv4.replaceAll('.', '\\.')}/24 `));
      expect(result.stdout).toContain(`eth0    inet6 ${pod.ipv6}/64`);
      expect(result.stdout).toMatch(/\d+: lo\s+inet 127\.0\.0\.1\/8/);
      addresses.add(pod.ipv4).add(pod.ipv6);
    }
    expect(network.pods().map((pod) => pod.name)).toEqual(['infra', 'a', 'b', 'c']);
    expect(addresses.size).toBe(8);
    expect(hostLinkNames().filter((name) => isOurInterfaceName(name, network.prefix))).toEqual([]);
  });

  it('resolves pod names, their cluster names and aliases inside a pod through /etc/netns/<pod>/hosts', async () => {
    const b = network.pod('b');
    const short = await network.run('a', { command: 'getent', args: ['ahostsv4', 'b'] });
    expect(short.stdout.split('\n')[0]).toMatch(new RegExp(`^${b.ipv4.replaceAll('.', '\\.')}\\s`));
    const fqdn = await network.run('a', { command: 'getent', args: ['ahostsv6', 'b.default.svc.cluster.local'] });
    expect(fqdn.stdout.split('\n')[0]).toMatch(new RegExp(`^${b.ipv6}\\s`));
    const collector = await network.run('c', { command: 'getent', args: ['ahostsv4', 'collector'] });
    expect(collector.stdout).toContain(network.infra.ipv4);
    const alias = await network.run('infra', { command: 'getent', args: ['ahostsv4', 'c-alias'] });
    expect(alias.stdout).toContain(network.pod('c').ipv4);
    // An unknown name fails at once (no DNS server to wait for), not after the host resolver's timeouts.
    const started = Date.now();
    const unknown = await network.run('a', { command: 'getent', args: ['hosts', 'nosuchpod'] });
    expect(unknown.code).toBe(2);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it('connects from pod a to a server in pod b by name over IPv4 and IPv6, and b sees a\'s own address', async () => {
    const server = network.spawn('b', { command: NODE, args: [fixture('netns-echo-server.mjs'), 'b', String(ECHO_PORT)] });
    await server.waitForPort(ECHO_PORT, READY_MS);
    const a = network.pod('a');
    const b = network.pod('b');
    for (const [family, from, to] of [
      ['4', a.ipv4, b.ipv4],
      ['6', a.ipv6, b.ipv6],
    ] as const) {
      const result = await network.run('a', { command: NODE, args: [fixture('netns-connect.mjs'), 'b', String(ECHO_PORT), family] });
      expect(result.code, result.stderr).toBe(0);
      const seenFromA = JSON.parse(result.stdout) as { address: string; reply: string };
      const peer = family === '4' ? `::ffff:${from}` : from;
      expect(seenFromA).toEqual({ address: to, reply: `pong from b to ${peer}` });
    }
    // The infra pod reaches b as well: one bridge, one subnet.
    const fromInfra = await network.run('infra', { command: NODE, args: [fixture('netns-connect.mjs'), 'b.default', String(ECHO_PORT), '4'] });
    expect(fromInfra.stdout).toContain(`pong from b to ::ffff:${network.infra.ipv4}`);
    expect((await server.stop()).code).toBe(0);
  });

  it('forwards a port of the infra pod to the host\'s loopback without any interface in the host', async () => {
    const server = network.spawn('infra', { command: NODE, args: [fixture('netns-echo-server.mjs'), 'infra', String(ECHO_PORT)] });
    await server.waitForPort(ECHO_PORT, READY_MS);
    const forward = await network.forward('infra', ECHO_PORT);
    const replies: string[] = [];
    for (let i = 0; i < 2; i++) {
      replies.push(
        await new Promise<string>((resolve, reject) => {
          let text = '';
          net
            .connect(forward.port, forward.host)
            .setEncoding('utf8')
            .on('data', (chunk: string) => (text += chunk))
            .on('end', () => resolve(text.trim()))
            .on('error', reject);
        }),
      );
    }
    expect(replies).toEqual(['pong from infra to ::ffff:127.0.0.1', 'pong from infra to ::ffff:127.0.0.1']);
    await forward.close();
    await forward.close();
    await expect(
      new Promise((resolve, reject) => net.connect(forward.port, forward.host).on('connect', resolve).on('error', reject)),
    ).rejects.toThrow(/ECONNREFUSED/);
    await expect(network.forward('infra', 70_000)).rejects.toThrow('forward: port 70000 is not an integer from 1 to 65535');
    await server.stop();
  });

  it('runs a process as uid 1337 with no supplementary groups, and with ambient CAP_NET_ADMIN only when asked', async () => {
    const plain = await network.run('a', { command: NODE, args: [fixture('netns-whoami.mjs')], user: PROXY_USER, reveal: [REPO] });
    expect(plain.code, plain.stderr).toBe(0);
    const who = JSON.parse(plain.stdout) as { uid: number; gid: number; groups: number[]; capEff: string };
    expect(who).toMatchObject({ uid: 1337, gid: 1337, groups: [] });
    expect(BigInt(`0x${who.capEff}`)).toBe(0n);
    const withCap = await network.run('a', { command: NODE, args: [fixture('netns-whoami.mjs')], user: PROXY_USER, capabilities: ['net_admin'] });
    const capEff = BigInt(`0x${(JSON.parse(withCap.stdout) as { capEff: string }).capEff}`);
    expect(capEff).toBe(CAP_NET_ADMIN);
    const logFile = path.join(tmpdir(), `tmt-whoami-${process.pid}.log`);
    try {
      const root = await network.run('a', { command: NODE, args: [fixture('netns-whoami.mjs')], logFile });
      expect(JSON.parse(root.stdout)).toMatchObject({ uid: 0, gid: 0 });
      expect(readFileSync(logFile, 'utf8')).toBe(root.stdout);
    } finally {
      rmSync(logFile, { force: true });
    }
  });

  it('lets uid 1337 read a project under a directory closed to it, in that process only, seeing nothing else of the directory', async () => {
    const closed = path.join(tmpdir(), `tmt-closed-${process.pid}`);
    try {
      mkdirSync(path.join(closed, 'project'), { recursive: true });
      copyFileSync(fixture('netns-whoami.mjs'), path.join(closed, 'project', 'whoami.mjs'));
      writeFileSync(path.join(closed, 'secret.txt'), 'not for uid 1337\n');
      chmodSync(path.join(closed, 'project'), 0o755);
      chmodSync(path.join(closed, 'project', 'whoami.mjs'), 0o644);
      chmodSync(closed, 0o700);
      const args = [path.join(closed, 'project', 'whoami.mjs'), path.join(closed, 'secret.txt')];
      const refused = await network.run('a', { command: NODE, args, user: PROXY_USER });
      expect(refused.code).not.toBe(0);
      expect(refused.stderr).toMatch(/EACCES|Cannot find module/);
      const revealed = await network.run('a', { command: NODE, args, user: PROXY_USER, reveal: [path.join(closed, 'project')] });
      expect(revealed.code, revealed.stderr).toBe(0);
      expect(JSON.parse(revealed.stdout)).toMatchObject({ uid: 1337, probeExists: false });
      // The host saw no change: the directory is still closed and holds what it held.
      expect(readFileSync(path.join(closed, 'secret.txt'), 'utf8')).toBe('not for uid 1337\n');
      expect(statSync(closed).mode & 0o777).toBe(0o700);
      // A mount cannot change the mode of the path itself: that is refused before anything starts, saying why.
      chmodSync(path.join(closed, 'project'), 0o700);
      expect(() => network.spawn('a', { command: NODE, args, user: PROXY_USER, reveal: [path.join(closed, 'project')] })).toThrow(
        /uid 1337 cannot read .*project \(mode 0700, owner 0:0\); the project must be readable by others/,
      );
    } finally {
      rmSync(closed, { recursive: true, force: true });
    }
  });

  it('stop() ends the whole process group; readiness waits end with the output when the process dies first or is too slow', async () => {
    const parent = network.spawn('c', { command: 'sh', args: ['-c', 'sleep 300 & echo "child $!"; wait'] });
    const line = await parent.waitForLine(/^child \d+$/, READY_MS);
    const childPid = Number(line.split(' ')[1]);
    const status = await parent.stop(2_000);
    expect(status.signal).toBe('SIGTERM');
    expect(isGone(parent.pid)).toBe(true);
    expect(isGone(childPid)).toBe(true);

    const quitter = network.spawn('c', { command: NODE, args: ['-e', 'console.log("bye"); process.exit(3)'] });
    const early = await quitter.waitForLine(/never printed/, READY_MS).catch((err: unknown) => err);
    expect(isNetnsError(early, 'TM_ERR_NETNS_PROCESS')).toBe(true);
    expect((early as Error).message).toMatch(/exited with code 3 before printing a line matching .*\n.*bye/s);

    const idle = network.spawn('c', { command: 'sleep', args: ['300'] });
    const slow = await idle.waitForPort(9, 300).catch((err: unknown) => err);
    expect((slow as Error).message).toContain('did not listen on port 9 within 300 ms');
    await idle.stop();

    const stuck = await network.run('c', { command: 'sleep', args: ['300'], timeoutMs: 300 }).catch((err: unknown) => err);
    expect(isNetnsError(stuck, 'TM_ERR_NETNS_PROCESS')).toBe(true);
    expect((stuck as Error).message).toContain('did not finish within 300 ms');
  });

  it('rejects bad process options with what was wrong', () => {
    expect(() => network.spawn('zz', { command: 'true' })).toThrow(/no pod 'zz' in this network \(pods: infra, a, b, c\)/);
    expect(() => network.spawn('a', { command: 'true', user: { uid: -1, gid: 0 }, capabilities: ['NET ADMIN'] })).toThrow(
      /user\.uid: -1 is not a non-negative integer; capabilities: 'NET ADMIN' is not a capability name/,
    );
    expect(() => network.spawn('a', { command: 'true', cwd: '/nonexistent' })).toThrow("cwd: '/nonexistent' is not a directory");
    expect(() => network.spawn('a', { command: 'true', user: PROXY_USER, reveal: ['relative/path'] })).toThrow(
      "reveal: 'relative/path' is not an absolute path",
    );
  });

  it('tears down everything: processes, namespaces, veths, bridge, /etc/netns dirs; and twice is fine', async () => {
    const server = network.spawn('b', { command: NODE, args: [fixture('netns-echo-server.mjs'), 'b', String(ECHO_PORT)] });
    const proxy = network.spawn('a', { command: 'sleep', args: ['300'], user: PROXY_USER });
    await server.waitForPort(ECHO_PORT, READY_MS);
    const forward = await network.forward('b', ECHO_PORT);
    expect(leftovers(network.prefix).namespaces).toHaveLength(5);
    expect(leftovers(network.prefix).etc).toHaveLength(4);

    await network.teardown();
    expect(server.exitStatus()).toBeDefined();
    expect(proxy.exitStatus()).toBeDefined();
    expect(isGone(server.pid) && isGone(proxy.pid)).toBe(true);
    await expect(
      new Promise((resolve, reject) => net.connect(forward.port, forward.host).on('connect', resolve).on('error', reject)),
    ).rejects.toThrow(/ECONNREFUSED/);
    expect(leftovers(network.prefix)).toEqual({ namespaces: [], etc: [] });
    expect(existsSync(path.join(tmpdir(), `tracemesh-netns-${network.prefix}`))).toBe(false);
    const added = hostLinkNames().filter((name) => !linksBefore.includes(name));
    expect(added.filter((name) => isOurInterfaceName(name, network.prefix))).toEqual([]);
    await network.teardown();
    expect(() => network.spawn('a', { command: 'true' })).toThrow(/torn down/);
  });
});

describe('a setup that fails half way', () => {
  it('removes what it had made and leaves a namespace it did not make', () => {
    const prefix = `tmf${process.pid}`;
    // Someone else's namespace with the name the third pod needs: `ip netns add` fails there, for real.
    execFileSync('ip', ['netns', 'add', `${prefix}-c`]);
    try {
      let failure: unknown;
      try {
        createMeshNetwork({ base: 'tmf', pods: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] });
      } catch (err) {
        failure = err;
      }
      expect(isNetnsError(failure, 'TM_ERR_NETNS_COMMAND')).toBe(true);
      expect((failure as Error).message).toContain(`ip netns add ${prefix}-c failed`);
      expect(leftovers(prefix)).toEqual({ namespaces: [`${prefix}-c`], etc: [] });
      expect(hostLinkNames().filter((name) => isOurInterfaceName(name, prefix) && name !== `${prefix}-c`)).toEqual([]);
    } finally {
      execFileSync('ip', ['netns', 'del', `${prefix}-c`]);
    }
  });

  it('refuses a bad spec before creating anything, naming every problem', () => {
    expect(() => createMeshNetwork({ base: 'Bad', pods: [{ name: 'infra' }, { name: 'x_y' }, { name: 'a' }, { name: 'a' }] })).toThrow(
      /base: "Bad" .*\n.*pods\[0\]\.name: 'infra' is reserved.*\n.*pods\[1\]\.name: "x_y" is not a DNS label.*\n.*pods\[3\]\.name: 'a' is listed twice/,
    );
  });
});

describe('leftovers of a crashed run', () => {
  it('cleanupStale removes namespaces, their processes and /etc/netns dirs of dead owners, and keeps those of live ones', async () => {
    const dead = spawn('true');
    const deadPid = await new Promise<number>((resolve) => dead.on('exit', () => resolve(dead.pid ?? 0)));
    const stale = `tms${deadPid}-x`;
    const live = `tms${process.pid}-y`;
    execFileSync('ip', ['netns', 'add', stale]);
    execFileSync('ip', ['netns', 'add', live]);
    mkdirSync(`/etc/netns/${stale}`, { recursive: true });
    writeFileSync(`/etc/netns/${stale}/hosts`, '127.0.0.1 localhost\n');
    const orphan = spawn('ip', ['netns', 'exec', stale, 'sleep', '300'], { detached: true, stdio: 'ignore' });
    try {
      await expect.poll(() => execFileSync('ip', ['netns', 'pids', stale], { encoding: 'utf8' }).trim(), { timeout: 5_000 }).not.toBe('');
      expect(cleanupStale('tms')).toEqual([stale]);
      expect(listNamespaces()).not.toContain(stale);
      expect(listNamespaces()).toContain(live);
      expect(existsSync(`/etc/netns/${stale}`)).toBe(false);
      await expect.poll(() => isGone(orphan.pid ?? 0), { timeout: 5_000 }).toBe(true);
    } finally {
      orphan.kill('SIGKILL');
      for (const name of [stale, live]) {
        if (listNamespaces().includes(name)) execFileSync('ip', ['netns', 'del', name]);
      }
      rmSync(`/etc/netns/${stale}`, { recursive: true, force: true });
    }
  });
});
