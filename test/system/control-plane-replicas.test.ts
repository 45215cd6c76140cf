/**
 * Two control-plane replicas on one real etcd (Debian's etcd-server), two
 * real sidecars in explicit mode with real HTTP apps behind them, each
 * sidecar given both replicas' URLs but in a different order, so the shop's
 * proxy follows replica 1 and the client's replica 2:
 *
 *   shop app ← proxy "shop"   ──stream──► replica 1 ─┐
 *                                                    ├── etcd (config, registrations, replicas)
 *   client app ← proxy "client" ──stream──► replica 2 ─┘
 *
 * A change applied through replica 1 reaches the proxy on replica 2 and
 * changes its traffic, and both replicas' `tracemesh proxies` show both
 * ACKs; each proxy routes to the endpoint the other registered through the
 * other replica; replica 1 stopped under traffic loses no request, its
 * proxy moves to replica 2; replica 1 restarted with the default start-up
 * grace holds nothing back, because the registrations outlived it in etcd.
 */
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proxy } from '../../proxy/proxy.js';
import { createApplyCommand } from '../../src/cli/commands/apply.js';
import { proxiesCommand, type ProxyRow } from '../../src/cli/commands/proxies.js';
import { ControlPlane, DEFAULT_CONTROL_PLANE_TIMING } from '../../src/control-plane/server.js';
import { EtcdConfigStore } from '../../src/control-plane/store/etcd-store.js';
import { runCaptured } from '../support/api-fixtures.js';
import { serviceYaml } from '../support/control-plane.js';
import { testSidecar } from '../support/sidecar.js';
import { requireEtcdBinary, startEtcd, type EtcdServer } from './fixtures/etcd-server.js';

const WAIT_MS = 20_000;
const PREFIX = `/tracemesh-replicas-${process.pid}/config/`;

const root = mkdtempSync(path.join(tmpdir(), 'tracemesh-cp-replicas-'));
let etcd: EtcdServer;
const replicas: (ControlPlane | undefined)[] = [undefined, undefined];
const urls: string[] = ['', ''];
const logs: string[] = [];
const apps: http.Server[] = [];
const proxies = new Set<Proxy>();
let shop: Proxy;
let client: Proxy;

/** Replica `index` (0 or 1) on `port` (0: any), with the default start-up grace unless told. */
async function startReplica(index: number, port: number, startupGraceMs = 0): Promise<ControlPlane> {
  const controlPlane = new ControlPlane({
    ...DEFAULT_CONTROL_PLANE_TIMING,
    startupGraceMs,
    store: new EtcdConfigStore({ urls: [etcd.url], prefix: PREFIX }),
    host: '127.0.0.1',
    port,
    maxProxies: 1_000,
    log: (message) => logs.push(`replica ${index + 1}: ${message}`),
  });
  replicas[index] = controlPlane;
  await controlPlane.start();
  urls[index] = `http://127.0.0.1:${controlPlane.port}`;
  return controlPlane;
}

async function startApp(name: string): Promise<number> {
  const app = http.createServer((req, res) => res.end(`${name} says hi to ${req.url ?? ''}`));
  apps.push(app);
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  return (app.address() as AddressInfo).port;
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe().catch(() => undefined);
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${await describeState()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

interface ProxiesAnswer {
  version: string;
  held: boolean;
  proxies: (ProxyRow & { replica: string })[];
  unreachable: unknown[];
}

async function proxyRows(url: string): Promise<ProxiesAnswer> {
  const result = await runCaptured([proxiesCommand], ['proxies', '--json', '--control-plane', url]);
  if (result.code !== 0) throw new Error(`tracemesh proxies --control-plane ${url}: ${result.stderr}`);
  return JSON.parse(result.stdout) as ProxiesAnswer;
}

async function describeState(): Promise<string> {
  const states = await Promise.all(urls.map((url) => (url === '' ? 'not started' : proxyRows(url).then((r) => JSON.stringify(r), (err: unknown) => String(err)))));
  return `replica 1: ${states[0]}\nreplica 2: ${states[1]}\nlogs:\n${logs.slice(-20).join('\n')}`;
}

/** Both proxies ACKing the current version (other than `previous`), as replica `url` reports them; returns the answer. */
function bothAckedAt(url: string, previous?: string): Promise<ProxiesAnswer> {
  return until(async () => {
    const answer = await proxyRows(url);
    if (answer.version === previous || answer.version === '') return undefined;
    const connected = answer.proxies.filter((p) => p.connected);
    return connected.length === 2 && connected.every((p) => p.state === 'acked' && p.ackedVersion === answer.version) ? answer : undefined;
  }, `both proxies to ACK a version other than ${previous ?? '(none)'} at ${url}`);
}

function apply(file: string, url: string): ReturnType<typeof runCaptured> {
  return runCaptured([createApplyCommand(() => Readable.from(['']))], ['apply', '-f', file, '--control-plane', url]);
}

/** GET http://HOST/PATH with `proxy`'s outbound listener as the HTTP proxy (explicit mode). */
function through(proxy: Proxy, host: string, pathname: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.outboundPort, method: 'GET', path: `http://${host}${pathname}`, headers: { host }, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

function writeConfig(name: string, text: string): string {
  const file = path.join(root, name);
  writeFileSync(file, text);
  return file;
}

beforeAll(async () => {
  requireEtcdBinary();
  etcd = await startEtcd('tmcpreplicas');
  await startReplica(0, 0);
  await startReplica(1, 0);
  const shopPort = await startApp('shop');
  const clientPort = await startApp('client');
  // Each proxy lists both replicas, its own first.
  shop = testSidecar('shop', shopPort, { controlPlaneUrl: `${urls[0]},${urls[1]}`, stateDir: path.join(root, 'state-shop') });
  client = testSidecar('client', clientPort, { controlPlaneUrl: `${urls[1]},${urls[0]}`, stateDir: path.join(root, 'state-client') });
  proxies.add(shop).add(client);
  await Promise.all([shop.start(), client.start()]);
});

afterAll(async () => {
  await Promise.all([...proxies].map((p) => p.stop()));
  await Promise.all(replicas.map((r) => r?.stop()));
  await Promise.all(apps.map((app) => new Promise<void>((resolve) => app.close(() => resolve()))));
  await etcd?.stop();
  rmSync(root, { recursive: true, force: true });
});

describe('two control-plane replicas on one etcd', () => {
  let applied = '';

  it('(1) a change applied through replica 1 reaches the proxy on replica 2; both replicas show both ACKs; each proxy routes to the endpoint registered through the other replica', async () => {
    const empty = await bothAckedAt(urls[0] as string);
    const result = await apply(writeConfig('services.yaml', `${serviceYaml('shop', 9080)}---\n${serviceYaml('client', 9080)}`), urls[0] as string);
    expect(result.stderr).toBe('');
    expect(result.code).toBe(0);
    const viaOne = await bothAckedAt(urls[0] as string, empty.version);
    applied = viaOne.version;
    const viaTwo = await bothAckedAt(urls[1] as string, empty.version);
    expect(viaTwo.version).toBe(applied);
    // The same rows through either replica: the shop's stream is on replica 1, the client's on replica 2.
    for (const answer of [viaOne, viaTwo]) {
      const byService = Object.fromEntries(answer.proxies.filter((p) => p.connected).map((p) => [p.registration?.service, p.replica]));
      expect(byService).toEqual({ shop: urls[0], client: urls[1] });
      expect(answer.unreachable).toEqual([]);
    }
    // Each replica knows both registrations, whichever replica took them.
    for (const replica of replicas) expect(replica?.registry.list().map((r) => r.service).sort()).toEqual(['client', 'shop']);
    expect(await through(client, 'shop:9080', '/from-client')).toEqual({ status: 200, body: 'shop says hi to /from-client' });
    expect(await through(shop, 'client:9080', '/from-shop')).toEqual({ status: 200, body: 'client says hi to /from-shop' });
  });

  it('(2) a port change applied through replica 1 takes effect on the traffic of the proxy on replica 2', async () => {
    const before = await through(client, 'shop:9090', '/new-port');
    expect(before.status).not.toBe(200);
    const result = await apply(writeConfig('shop-9090.yaml', serviceYaml('shop', 9090)), urls[0] as string);
    expect(result.code).toBe(0);
    const answer = await bothAckedAt(urls[1] as string, applied);
    applied = answer.version;
    expect(await through(client, 'shop:9090', '/new-port')).toEqual({ status: 200, body: 'shop says hi to /new-port' });
  });

  it('(3) replica 1 stopped under steady traffic: no request fails, its proxy moves to replica 2 and ACKs changes from there', async () => {
    const failures: string[] = [];
    let sent = 0;
    let running = true;
    // One request at a time each way, at most 2,000 in all, until told to stop.
    const traffic = (async () => {
      while (running && sent < 2_000) {
        sent++;
        const [from, host, expected] = sent % 2 === 0 ? [client, 'shop:9090', 'shop'] : [shop, 'client:9080', 'client'];
        try {
          const answer = await through(from, host, `/steady/${sent}`);
          if (answer.status !== 200 || !answer.body.startsWith(`${expected} says hi`)) failures.push(`request ${sent} to ${host}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
        } catch (err) {
          failures.push(`request ${sent} to ${host}: ${String(err)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    try {
      await until(async () => (sent >= 20 ? true : undefined), '20 requests before the stop');
      await replicas[0]?.stop();
      replicas[0] = undefined;
      const one = urls[0] as string;
      urls[0] = '';
      // The shop's proxy is now on replica 2, as replica 2 sees it, and has ACKed there.
      await until(async () => {
        const answer = await proxyRows(urls[1] as string);
        const row = answer.proxies.find((p) => p.registration?.service === 'shop' && p.connected);
        return row !== undefined && row.replica === urls[1] && row.state === 'acked' ? true : undefined;
      }, 'the shop proxy to follow replica 2');
      const sentAfterMove = sent;
      await until(async () => (sent >= sentAfterMove + 20 ? true : undefined), '20 requests after the move');
      // A change through replica 2 reaches both proxies (the shop's is really following replica 2).
      const result = await apply(writeConfig('shop-v2.yaml', serviceYaml('shop', 9090).replace('name: shop,', 'name: shop, labels: { tier: backend },')), urls[1] as string);
      expect(result.stderr).toBe('');
      const answer = await bothAckedAt(urls[1] as string, applied);
      applied = answer.version;
      expect(answer.proxies.filter((p) => p.connected).every((p) => p.replica === urls[1])).toBe(true);
      urls[0] = one;
    } finally {
      running = false;
      await traffic;
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(40);
  });

  it('(4) replica 1 restarted with the default start-up grace holds nothing back: the registrations outlived it in etcd', async () => {
    const port = Number(new URL(urls[0] as string).port);
    const restarted = await startReplica(0, port, DEFAULT_CONTROL_PLANE_TIMING.startupGraceMs);
    expect(restarted.registry.list().map((r) => r.service).sort()).toEqual(['client', 'shop']);
    expect(restarted.distributor.held).toBe(false);
    expect(restarted.distributor.currentVersion).toBe(applied);
    // Asked through the restarted replica, both proxies (on replica 2) show, ACKed.
    const answer = await bothAckedAt(urls[0] as string);
    expect(answer.version).toBe(applied);
    expect(answer.held).toBe(false);
  });
});
