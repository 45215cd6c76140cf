/**
 * The real client address at the app under TPROXY capture (issue 4): a client pod connects to
 * a server pod's port; `tracemesh iptables --mode tproxy` in the server pod hands the connection
 * to a proxy-like relay (uid 1337, CAP_NET_ADMIN) that connects to the app through
 * upstreamConnector('tproxy') — from the client's address to the pod's own address at the
 * captured port — and the app (root) sees the client pod's address as its peer. IPv4 and IPv6.
 *
 * What else it shows: the relay accepted each connection once (its upstream connection was not
 * captured again), the rules that carry it counted packets (CONNMARK save and restore, the mark
 * exemptions in mangle and nat), a connect that gets no answer ends with the connector's timeout,
 * and without CAP_NET_ADMIN the error says what is missing. `--cleanup` leaves the pod as it was.
 */
import { rmSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createMeshNetwork } from '../../src/netns/mesh-network.js';
import type { MeshNetwork, Pod } from '../../src/netns/mesh-network.js';
import type { PodProcess } from '../../src/netns/pod-process.js';
import { PROXY_USER } from '../../src/netns/process-user.js';
import { assertRoot } from '../../src/netns/root-check.js';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = path.join(REPO, 'test/system/fixtures');
const NODE = process.execPath;
const APP_PORT = 9080;
const INBOUND_PORT = 15006;
const MARK = '0x539';
const READY_MS = 20_000;
const RUN_MS = 20_000;
const CONNECT_TIMEOUT_MS = 3_000;

let buildDir = '';
let network: MeshNetwork | undefined;
let relay: PodProcess;
let app: PodProcess;
let before = '';
process.once('exit', () => {
  if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
});

/** The CLI and the capture modules, compiled from the sources into a temp dir uid 1337 can read. */
function compile(): string {
  const dir = compileTracemesh('tracemesh-tproxy-source-');
  return dir;
}

async function mustRun(pod: string, command: string, args: string[]): Promise<string> {
  const result = await (network as MeshNetwork).run(pod, { command, args, timeoutMs: RUN_MS });
  expect(result.code, `${command} ${args.join(' ')} in ${pod}: ${result.stderr}`).toBe(0);
  return result.stdout;
}

/** iptables-save, ip6tables-save and the ip rules, counters blanked. */
async function captureState(pod: string): Promise<string> {
  const parts: string[] = [];
  for (const [command, ...args] of [['iptables-save'], ['ip6tables-save'], ['ip', 'rule', 'show'], ['ip', '-6', 'rule', 'show']] as const) {
    const text = await mustRun(pod, command, [...args]);
    parts.push(`== ${command} ${args.join(' ')}\n${text.split('\n').filter((l) => !l.startsWith('#')).map((l) => l.replace(/\[\d+:\d+\]/g, '[0:0]')).join('\n')}`);
  }
  return parts.join('\n');
}

/** Packets counted by the rules of `chain` whose `-L -v` line contains every one of `words`. */
async function rulePackets(pod: string, tool: 'iptables' | 'ip6tables', table: string, chain: string, words: string[]): Promise<number> {
  const listing = await mustRun(pod, tool, ['-t', table, '-L', chain, '-v', '-x', '-n']);
  const lines = listing.split('\n').slice(2).filter((line) => words.every((word) => line.includes(word)));
  expect(lines.length, `a rule with ${words.join(' + ')} in ${tool} ${table} ${chain}:\n${listing}`).toBeGreaterThan(0);
  return lines.reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0]), 0);
}

interface TcpResult {
  remoteAddress: string;
  localAddress: string;
  reply: string;
  error: string;
}

async function tcp(pod: string, host: string, port: number): Promise<TcpResult> {
  return JSON.parse(await mustRun(pod, NODE, [path.join(FIXTURES, 'capture-tcp-client.mjs'), host, String(port)])) as TcpResult;
}

interface ConnectFromResult {
  connected: boolean;
  localAddress: string;
  code: string;
  message: string;
}

async function connectFromIn(pod: string, capabilities: string[], source: string, host: string, port: number, timeoutMs: number): Promise<ConnectFromResult> {
  const result = await (network as MeshNetwork).run(pod, {
    command: NODE,
    args: [path.join(FIXTURES, 'connect-from.mjs'), buildDir, source, host, String(port), String(timeoutMs)],
    user: PROXY_USER,
    capabilities,
    timeoutMs: RUN_MS,
  });
  expect(result.code, result.stderr).toBe(0);
  return JSON.parse(result.stdout) as ConnectFromResult;
}

const linesOf = (proc: PodProcess, prefix: string): string[] =>
  proc
    .output('stdout')
    .split('\n')
    .filter((line) => line.startsWith(prefix));

beforeAll(async () => {
  assertRoot();
  buildDir = compile();
  network = createMeshNetwork({ base: 'tmtps', pods: [{ name: 'client' }, { name: 'server' }] });
  before = await captureState('server');
  const applied = await mustRun('server', NODE, [path.join(buildDir, 'src/cli/main.js'), 'iptables', '--mode', 'tproxy', '--collector', 'none']);
  expect(applied).toContain('TPROXY capture in place for IPv4 and IPv6');
  // The app: root, every address of the pod, answers `app saw <peer>`.
  app = network.spawn('server', { command: NODE, args: [path.join(FIXTURES, 'capture-listener.mjs'), 'app', String(APP_PORT)], label: 'server:app' });
  relay = network.spawn('server', {
    command: NODE,
    args: [path.join(FIXTURES, 'tproxy-relay.mjs'), buildDir, String(INBOUND_PORT), String(CONNECT_TIMEOUT_MS)],
    user: PROXY_USER,
    capabilities: ['net_admin'],
    label: 'server:relay',
  });
  await Promise.all([app.waitForLine(/^listening on/, READY_MS), relay.waitForLine(/^listening on/, READY_MS)]);
});

afterAll(async () => {
  try {
    await network?.teardown();
  } finally {
    if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
  }
});

describe('TPROXY capture with the upstream connection made from the client address', () => {
  let client: Pod;
  let server: Pod;

  beforeAll(() => {
    client = (network as MeshNetwork).pod('client');
    server = (network as MeshNetwork).pod('server');
  });

  it.each(['ipv4', 'ipv6'] as const)('the app sees the client pod (%s) as its peer, through the relay, accepted once', async (family) => {
    const accepted = linesOf(relay, 'accepted ').length;
    const seen = await tcp('client', server[family], APP_PORT);
    expect(seen).toMatchObject({ remoteAddress: server[family], localAddress: client[family], error: '' });
    // The app's own peer: the client pod, not 127.0.0.1 and not the server pod's address.
    expect(seen.reply).toBe(`app saw ${client[family]}\n`);
    expect(linesOf(app, 'connection from ').at(-1)).toBe(`connection from ${client[family]}`);
    // It went through the relay, which connected from the client's address, and exactly once:
    // the relay's own connection to the pod address was not TPROXYed or REDIRECTed back to it.
    const acceptedNow = linesOf(relay, 'accepted ');
    expect(acceptedNow).toHaveLength(accepted + 1);
    expect(acceptedNow.at(-1)).toBe(`accepted ${client[family]} for ${server[family]} ${APP_PORT} key ${client[family]}`);
    expect(linesOf(relay, 'relayed ').at(-1)).toMatch(new RegExp(`^relayed ${client[family].replace(/\./g, '\\.')} from ${client[family].replace(/\./g, '\\.')} \\d+$`));
    expect(linesOf(relay, 'relay error')).toEqual([]);
  });

  it('the rules that carry it counted packets in both families: CONNMARK save (before the jump) and restore, the mark exemptions', async () => {
    for (const tool of ['iptables', 'ip6tables'] as const) {
      // The relay's packets arrive over lo with its SO_MARK: saved as the connection mark...
      expect(await rulePackets('server', tool, 'mangle', 'PREROUTING', ['mark match', MARK, 'CONNMARK save'])).toBeGreaterThan(0);
      // ...restored on the app's replies, which then route back to the relay's transparent socket...
      expect(await rulePackets('server', tool, 'mangle', 'OUTPUT', ['connmark match', MARK, 'CONNMARK restore'])).toBeGreaterThan(0);
      // ...and neither TPROXYed (mangle) nor REDIRECTed (nat) back to the relay.
      expect(await rulePackets('server', tool, 'mangle', 'TRACEMESH_INBOUND', ['mark match', MARK, 'RETURN'])).toBeGreaterThan(0);
      expect(await rulePackets('server', tool, 'nat', 'TRACEMESH_OUTBOUND', ['mark match', MARK, 'RETURN'])).toBeGreaterThan(0);
      // The client's own connection was TPROXYed.
      expect(await rulePackets('server', tool, 'mangle', 'TRACEMESH_TPROXY', ['TPROXY'])).toBeGreaterThan(0);
    }
  });

  it('a connect nobody answers ends with the connect timeout, naming both ends', async () => {
    // .1 of the subnet is left free (addressing.ts): no ARP answer, no SYN-ACK.
    const nobody = (network as MeshNetwork).subnet.ipv4Cidr.replace(/\.0\/24$/, '.1');
    const result = await connectFromIn('server', ['net_admin'], client.ipv4, nobody, APP_PORT, 300);
    expect(result).toEqual({ connected: false, localAddress: '', code: 'TM_ERR_UPSTREAM', message: `connect from ${client.ipv4} to ${nobody}:${APP_PORT} timed out after 300 ms` });
  });

  it('without CAP_NET_ADMIN the connection fails with an error that says so', async () => {
    const result = await connectFromIn('server', [], client.ipv4, server.ipv4, APP_PORT, 1_000);
    expect(result.connected).toBe(false);
    expect(result.code).toBe('TM_ERR_CAPTURE_SOCKOPT');
    expect(result.message).toContain(`a transparent socket from ${client.ipv4} (the proxy needs CAP_NET_ADMIN for IP_TRANSPARENT and SO_MARK)`);
    expect(result.message).toContain('Operation not permitted (EPERM)');
  });

  it('tracemesh iptables --cleanup leaves the server pod as it was', async () => {
    await mustRun('server', NODE, [path.join(buildDir, 'src/cli/main.js'), 'iptables', '--cleanup']);
    expect(await captureState('server')).toBe(before);
  });
});
