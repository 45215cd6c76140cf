/**
 * `tracemesh iptables` for real: the built CLI run with `ip netns exec` in network
 * namespaces this test creates (never the host's own tables), read back with
 * iptables-save, ip6tables-save, `ip rule` and `ip route`, and one namespace
 * with traffic through the REDIRECT rules.
 *
 * The CLI is compiled from the TypeScript sources into a temp dir first (the
 * same JavaScript `npm run build` ships, without touching dist/).
 */
import { execFile, execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, rmSync, symlinkSync } from 'node:fs';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';

const FIXTURES = path.join(import.meta.dirname, 'fixtures');
const TAG = `tmipt${process.pid}`;
const PROXY_UID = 1337;
const READY_TIMEOUT_MS = 15_000;

let buildDir: string | undefined;
let cliMain = '';
const namespaces: string[] = [];
const children = new Set<ChildProcess>();

function removeNamespaces(): void {
  for (const child of children) child.kill('SIGKILL');
  while (namespaces.length > 0) {
    const ns = namespaces.pop() as string;
    try {
      execFileSync('ip', ['netns', 'del', ns], { stdio: 'ignore' });
    } catch {
      // already gone
    }
  }
}
// If the worker dies without afterAll, the namespaces still go.
process.once('exit', removeNamespaces);

function sh(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || String(err)}`);
  }
}

const inNs = (ns: string, argv: string[]): string => sh('ip', ['netns', 'exec', ns, ...argv]);

function compileCli(): string {
  const dir = compileTracemesh('tracemesh-iptables-cli-');
  return dir;
}

function newNamespace(role: string, options: { loopbackUp: boolean } = { loopbackUp: true }): string {
  const ns = `${TAG}-${role}${namespaces.length}`;
  sh('ip', ['netns', 'add', ns]);
  namespaces.push(ns);
  if (options.loopbackUp) sh('ip', ['-n', ns, 'link', 'set', 'lo', 'up']);
  return ns;
}

/** A pod namespace and a peer namespace joined by a veth pair, with IPv4 and ULA IPv6 addresses. */
interface PodPair {
  pod: string;
  peer: string;
}
const POD = { v4: '10.78.0.1', v6: 'fd78::1' };
const PEER = { v4: '10.78.0.2', v6: 'fd78::2' };

function podWithPeer(): PodPair {
  const pod = newNamespace('pod');
  const peer = newNamespace('peer');
  // Created inside the pod namespace, the other end moved straight into the peer: the host never sees either.
  sh('ip', ['-n', pod, 'link', 'add', 'tmv0', 'type', 'veth', 'peer', 'name', 'tmv1', 'netns', peer]);
  for (const [ns, dev, own] of [
    [pod, 'tmv0', POD],
    [peer, 'tmv1', PEER],
  ] as const) {
    sh('ip', ['-n', ns, 'addr', 'add', `${own.v4}/24`, 'dev', dev]);
    sh('ip', ['-n', ns, '-6', 'addr', 'add', `${own.v6}/64`, 'dev', dev, 'nodad']);
    // No link-local address: the kernel would add it at some moment during the test, and snapshots compare.
    sh('ip', ['-n', ns, 'link', 'set', dev, 'addrgenmode', 'none']);
    sh('ip', ['-n', ns, 'link', 'set', dev, 'up']);
  }
  return { pod, peer };
}

interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

function tracemesh(ns: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<CliResult> {
  return new Promise((resolve) => {
    execFile('ip', ['netns', 'exec', ns, process.execPath, cliMain, 'iptables', ...args], { encoding: 'utf8', timeout: 60_000, env }, (err, stdout, stderr) => {
      const code = err === null ? 0 : typeof (err as { code?: unknown }).code === 'number' ? ((err as { code: number }).code) : -1;
      resolve({ code, stdout, stderr });
    });
  });
}

async function mustApply(ns: string, args: string[]): Promise<CliResult> {
  const res = await tracemesh(ns, args);
  if (res.code !== 0) throw new Error(`tracemesh iptables ${args.join(' ')} exited ${res.code}: ${res.stderr}`);
  return res;
}

/** Everything capture can touch, with the lines that change on their own (comments, counters) normalised. */
function snapshot(ns: string): string {
  const reads = [
    ['iptables-save'],
    ['ip6tables-save'],
    ['ip', 'rule', 'show'],
    ['ip', '-6', 'rule', 'show'],
    ['ip', '-4', 'route', 'show', 'table', 'all'],
    ['ip', '-6', 'route', 'show', 'table', 'all'],
  ];
  return reads
    .map((argv) => {
      const text = inNs(ns, argv)
        .split('\n')
        .filter((line) => !line.startsWith('#'))
        .map((line) => line.replace(/\[\d+:\d+\]/g, '[0:0]').trimEnd())
        .join('\n');
      return `== ${argv.join(' ')}\n${text}`;
    })
    .join('\n');
}

/** Our part of `-S` for one family, per table: chain → its rules in order (built-in chains: only ours). */
function installedRules(ns: string, family: 4 | 6): Record<string, string[]> {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const found: Record<string, string[]> = {};
  for (const table of ['nat', 'mangle']) {
    for (const line of inNs(ns, [tool, '-t', table, '-S']).split('\n')) {
      const [verb, chain = '', ...rest] = line.split(' ');
      const ours = chain.startsWith('TRACEMESH_') || rest.join(' ').includes('--comment tracemesh');
      if (!ours) continue;
      const key = `${table} ${chain}`;
      found[key] ??= [];
      if (verb === '-A') found[key].push(rest.join(' '));
    }
  }
  return found;
}

/** The same, from the commands `--dry-run` printed. */
function plannedRules(dryRun: string, family: 4 | 6): Record<string, string[]> {
  const tool = family === 4 ? 'iptables' : 'ip6tables';
  const planned: Record<string, string[]> = {};
  for (const line of dryRun.split('\n')) {
    const [cmd, , table, verb, chain = '', ...rest] = line.split(' ');
    if (cmd !== tool || (verb !== '-N' && verb !== '-A')) continue;
    const key = `${table} ${chain}`;
    planned[key] ??= [];
    if (verb === '-A') planned[key].push(rest.join(' '));
  }
  return planned;
}

/** Foreign rules, chains, ip rules and routes that cleanup must leave exactly as they are. */
function addForeignState(ns: string): void {
  inNs(ns, ['iptables', '-t', 'nat', '-A', 'OUTPUT', '-p', 'udp', '--dport', '53', '-j', 'RETURN']);
  inNs(ns, ['iptables', '-t', 'mangle', '-N', 'FOREIGN']);
  inNs(ns, ['iptables', '-t', 'mangle', '-A', 'FOREIGN', '-m', 'comment', '--comment', 'someone else', '-j', 'RETURN']);
  inNs(ns, ['iptables', '-t', 'mangle', '-A', 'PREROUTING', '-p', 'udp', '-j', 'FOREIGN']);
  inNs(ns, ['ip6tables', '-t', 'nat', '-A', 'POSTROUTING', '-p', 'tcp', '--dport', '25', '-j', 'RETURN']);
  inNs(ns, ['ip', 'rule', 'add', 'fwmark', '0x77', 'lookup', '200']);
  inNs(ns, ['ip', 'route', 'add', 'local', '10.55.0.0/16', 'dev', 'lo', 'table', '200']);
  inNs(ns, ['ip', '-6', 'rule', 'add', 'fwmark', '0x77', 'lookup', '200']);
}

beforeAll(() => {
  if (process.getuid?.() !== 0) throw new Error('test/system/iptables.test.ts needs root: it creates network namespaces and runs iptables in them');
  buildDir = compileCli();
  cliMain = path.join(buildDir, 'src/cli/main.js');
});

afterAll(() => {
  removeNamespaces();
  if (buildDir !== undefined) rmSync(buildDir, { recursive: true, force: true });
});

const FLAGS = [
  '--exclude-inbound-ports',
  '22,9000-9010',
  '--exclude-outbound-ports',
  '9090',
  '--exclude-outbound-cidrs',
  '10.99.0.0/16,fd99::/16',
  '--collector',
  `${PEER.v4}:4317`,
  '--control-plane',
  `http://[${PEER.v6}]:15010`,
];

describe.each(['redirect', 'tproxy'] as const)('tracemesh iptables --mode %s, IPv4 and IPv6', (mode) => {
  it('installs exactly the planned rules, a second apply changes nothing, --cleanup restores the namespace', async () => {
    const { pod } = podWithPeer();
    addForeignState(pod);
    const before = snapshot(pod);
    const args = ['--mode', mode, ...FLAGS];

    const dryRun = await mustApply(pod, [...args, '--dry-run']);
    expect(dryRun.stdout).toContain('ip6tables -t nat -N TRACEMESH_OUTBOUND'); // --ipv6 auto saw fd78::1
    expect(snapshot(pod)).toBe(before);

    const applied = await mustApply(pod, args);
    expect(applied.stdout).toContain(`${mode === 'tproxy' ? 'TPROXY' : 'REDIRECT'} capture in place for IPv4 and IPv6`);
    for (const family of [4, 6] as const) expect(installedRules(pod, family)).toEqual(plannedRules(dryRun.stdout, family));
    const once = snapshot(pod);
    expect(once).toContain(`-A TRACEMESH_OUTBOUND -d ${PEER.v4}/32 -p tcp -m tcp --dport 4317 -j RETURN`);
    expect(once).toContain(`-A TRACEMESH_OUTBOUND -d ${PEER.v6}/128 -p tcp -m tcp --dport 15010 -j RETURN`);
    if (mode === 'tproxy') {
      expect(inNs(pod, ['ip', 'rule', 'show'])).toMatch(/from all fwmark 0x539 lookup 133/);
      expect(inNs(pod, ['ip', '-6', 'rule', 'show'])).toMatch(/from all fwmark 0x539 lookup 133/);
      expect(inNs(pod, ['ip', 'route', 'show', 'table', '133'])).toMatch(/^local default dev lo/);
      expect(inNs(pod, ['ip', '-6', 'route', 'show', 'table', '133'])).toMatch(/^local default dev lo/);
    }

    await mustApply(pod, args);
    expect(snapshot(pod)).toBe(once);

    const cleaned = await mustApply(pod, ['--cleanup']);
    expect(cleaned.stdout).toContain('removed the tracemesh capture rules');
    expect(snapshot(pod)).toBe(before);

    const again = await mustApply(pod, ['--cleanup']);
    expect(again.stdout).toContain('nothing to remove');
    expect(snapshot(pod)).toBe(before);
  });
});

describe('tracemesh iptables in a namespace nobody configured', () => {
  it('leaves no table behind after --cleanup, and converges when the mode changes', async () => {
    const ns = newNamespace('fresh');
    inNs(ns, ['ip', '-6', 'addr', 'add', 'fd79::1/64', 'dev', 'lo', 'nodad']);
    const before = snapshot(ns);
    const tproxyOnly = (await mustApply(ns, ['--mode', 'tproxy', '--dry-run'])).stdout;

    await mustApply(ns, []);
    await mustApply(ns, ['--mode', 'tproxy']);
    // Switching modes leaves just what a TPROXY apply in a fresh namespace makes.
    for (const family of [4, 6] as const) expect(installedRules(ns, family)).toEqual(plannedRules(tproxyOnly, family));
    expect(inNs(ns, ['iptables', '-t', 'nat', '-S', 'PREROUTING'])).not.toContain('tracemesh');

    await mustApply(ns, ['--cleanup']);
    expect(snapshot(ns)).toBe(before);
    expect(inNs(ns, ['iptables-save'])).toBe('');
  });
});

describe('tracemesh iptables failures', () => {
  it('names the command that failed with its stderr, and leaves nothing of ours behind', async () => {
    // IPv6 refuses a local route through a loopback that is down: a real failure halfway
    // through, after every IPv4 rule and the IPv6 chains are in.
    const ns = newNamespace('fail', { loopbackUp: false });
    const before = snapshot(ns);
    const res = await tracemesh(ns, ['--mode', 'tproxy', '--ipv6', 'on']);
    expect(res.code).toBe(1);
    expect(res.stderr.split('\n')).toHaveLength(2);
    expect(res.stderr).toContain('tracemesh iptables: ip -6 route replace local ::/0 dev lo table 133 failed (TPROXY: table 133 delivers marked IPv6 packets locally)');
    expect(res.stderr).toMatch(/Nexthop device is not up/);
    expect(res.stderr).toContain('rolled back: no tracemesh rules, chains or routes are left in this namespace');
    expect(snapshot(ns)).toBe(before);
  });

  it('says which tool is missing from PATH', async () => {
    const ns = newNamespace('path');
    const bin = path.join(buildDir as string, 'only-iptables');
    mkdirSync(bin);
    for (const tool of ['iptables', 'iptables-restore', 'ip']) symlinkSync(sh('which', [tool]).trim(), path.join(bin, tool));
    const res = await tracemesh(ns, ['--ipv6', 'on'], { ...process.env, PATH: bin });
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`tracemesh iptables: ip6tables is not on PATH (${bin}); it is needed to install IPv6 capture rules (or pass --ipv6 off); install the iptables package`);
    expect(inNs(ns, ['iptables-save'])).toBe('');
  });
});

/** Starts the listeners fixture in `ns`; resolves once it printed `ready`. */
async function listeners(ns: string, specs: string[]): Promise<void> {
  const child = spawn('ip', ['netns', 'exec', ns, process.execPath, path.join(FIXTURES, 'iptables-listeners.mjs'), ...specs], { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let stderr = '';
  child.stderr.on('data', (chunk: Buffer) => {
    stderr += chunk.toString();
  });
  await new Promise<void>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`listeners in ${ns} not ready within ${READY_TIMEOUT_MS} ms: ${stderr}`)), READY_TIMEOUT_MS);
    createInterface({ input: child.stdout }).on('line', (line) => {
      if (line !== 'ready') return;
      clearTimeout(timer);
      resolve();
    });
    child.once('exit', (code) => {
      clearTimeout(timer);
      reject(new Error(`listeners in ${ns} exited ${code}: ${stderr}`));
    });
  });
}

/** Connects from `ns` (as root, or as the proxy's UID/GID) and returns the name of the listener that answered. */
function whoAnswers(ns: string, host: string, port: number, as: 'app' | 'proxy'): Promise<string> {
  const user = as === 'proxy' ? ['setpriv', '--reuid', String(PROXY_UID), '--regid', String(PROXY_UID), '--clear-groups'] : [];
  const argv = ['netns', 'exec', ns, ...user, process.execPath, path.join(FIXTURES, 'iptables-connect.mjs'), host, String(port)];
  return new Promise((resolve) => {
    execFile('ip', argv, { encoding: 'utf8', timeout: 20_000 }, (_err, stdout, stderr) => resolve(stdout.trim() || `no answer: ${stderr.trim()}`));
  });
}

describe('traffic through the REDIRECT rules', () => {
  it('captures the app, not the proxy, not excluded ports, not the collector, not the admin port; loopback without loops', async () => {
    const { pod, peer } = podWithPeer();
    await listeners(pod, ['outbound=[::]:15001', 'inbound=[::]:15006', 'admin=[::]:15000', 'app=[::]:8080', 'ssh=[::]:22']);
    await listeners(peer, [`peer80=${PEER.v4}:80`, `peer80v6=[${PEER.v6}]:80`, `peer9090=${PEER.v4}:9090`, `collector=${PEER.v4}:4317`]);
    await mustApply(pod, ['--exclude-outbound-ports', '9090', '--exclude-inbound-ports', '22', '--collector', `${PEER.v4}:4317`]);

    const seen = {
      appToPeer: await whoAnswers(pod, PEER.v4, 80, 'app'),
      appToPeerV6: await whoAnswers(pod, PEER.v6, 80, 'app'),
      proxyToPeer: await whoAnswers(pod, PEER.v4, 80, 'proxy'),
      proxyToPeerV6: await whoAnswers(pod, PEER.v6, 80, 'proxy'),
      appToExcludedPort: await whoAnswers(pod, PEER.v4, 9090, 'app'),
      appToCollector: await whoAnswers(pod, PEER.v4, 4317, 'app'),
      appToOwnAddress: await whoAnswers(pod, POD.v4, 8080, 'app'),
      appToLocalhost: await whoAnswers(pod, '127.0.0.1', 8080, 'app'),
      proxyToOwnAddress: await whoAnswers(pod, POD.v4, 8080, 'proxy'),
      peerToApp: await whoAnswers(peer, POD.v4, 8080, 'app'),
      peerToAppV6: await whoAnswers(peer, POD.v6, 8080, 'app'),
      peerToAdmin: await whoAnswers(peer, POD.v4, 15000, 'app'),
      peerToExcludedPort: await whoAnswers(peer, POD.v4, 22, 'app'),
    };
    expect(seen).toEqual({
      appToPeer: 'outbound',
      appToPeerV6: 'outbound',
      proxyToPeer: 'peer80',
      proxyToPeerV6: 'peer80v6',
      appToExcludedPort: 'peer9090',
      appToCollector: 'collector',
      appToOwnAddress: 'app',
      appToLocalhost: 'app',
      // The proxy calling its own pod's address (a pod calling its own service) goes to inbound, not back out.
      proxyToOwnAddress: 'inbound',
      peerToApp: 'inbound',
      peerToAppV6: 'inbound',
      peerToAdmin: 'admin',
      peerToExcludedPort: 'ssh',
    });

    await mustApply(pod, ['--cleanup']);
    expect(await whoAnswers(pod, PEER.v4, 80, 'app')).toBe('peer80');
    expect(await whoAnswers(peer, POD.v4, 8080, 'app')).toBe('app');
  });
});
