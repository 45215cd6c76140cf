/**
 * The control plane end to end, on real sockets: `tracemesh control-plane`
 * as its own process (so it can be killed for real) with a directory store,
 * two sidecars taking their configuration from it in explicit mode, and an
 * HTTP app behind one of them. Configuration goes in through `tracemesh
 * apply`; the proxies' state is read with `tracemesh proxies`.
 *
 * What a proxy could refuse: proxies validate snapshots with the same code
 * the control plane validates applied documents with, so no applied document
 * makes an honest proxy NACK. Two snapshots did differ from what had been
 * validated, and both are fixed: the empty set (no documents yet, or all
 * deleted), which proxies read as a file without documents and NACKed
 * (step 1 now waits for its ACK), and registrations merged into a Service's
 * endpoints, now checked by the endpoint rules at the door (step 3). The
 * NACK path itself (state and reason shown) is tested in
 * src/cli/commands/proxies.test.ts with a client speaking the real protocol.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { Readable } from 'node:stream';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { DiscoveryClient } from '../../proxy/control/discovery-client.js';
import type { Proxy } from '../../proxy/proxy.js';
import { createApplyCommand } from '../../src/cli/commands/apply.js';
import { proxiesCommand, type ProxyRow } from '../../src/cli/commands/proxies.js';
import { REGISTRY_PATH } from '../../src/control-plane/protocol.js';
import { runCaptured } from '../support/api-fixtures.js';
import { serviceYaml } from '../support/control-plane.js';
import { testSidecar, unusedPort } from '../support/sidecar.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const VITE_NODE = path.join(REPO, 'node_modules/vite-node/vite-node.mjs');
/** Longer than the proxies' longest reconnect wait (5 s): every running workload registers again before a snapshot goes out. */
const STARTUP_GRACE = '6s';
const WAIT_MS = 20_000;

const root = mkdtempSync(path.join(tmpdir(), 'tracemesh-cp-e2e-'));
const configDir = path.join(root, 'config');
const children = new Set<ChildProcess>();
const killChildren = (): void => {
  for (const child of children) child.kill('SIGKILL');
};

interface RunningControlPlane {
  child: ChildProcess;
  url: string;
  output(): string;
}

let controlPlane: RunningControlPlane;
let controlPlaneUrl: string;
let app: http.Server;
let appPort: number;
let shop: Proxy;
let client: Proxy;
const proxies = new Set<Proxy>();

/** `tracemesh control-plane` in a process of its own (vite-node runs the TypeScript sources); resolves at its ready line. */
async function spawnControlPlane(port: number): Promise<RunningControlPlane> {
  const child = spawn(process.execPath, [VITE_NODE, 'src/cli/main.ts', 'control-plane', '--config-dir', configDir, '--port', String(port), '--startup-grace', STARTUP_GRACE], {
    cwd: REPO,
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir() },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  child.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-20_000)));
  const url = await new Promise<string>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`the control plane printed no ready line within ${WAIT_MS} ms:\n${output}`)), WAIT_MS);
    const onExit = (code: number | null, signal: string | null): void => {
      clearTimeout(timer);
      reject(new Error(`the control plane exited (${code ?? signal ?? '?'}) before it was ready:\n${output}`));
    };
    child.once('exit', onExit);
    createInterface({ input: child.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      const match = /^tracemesh control-plane ready: (http:\/\/127\.0\.0\.1:\d+),/.exec(line);
      if (match === null) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(match[1] as string);
    });
  });
  return { child, url, output: () => output };
}

async function kill(running: RunningControlPlane): Promise<void> {
  if (running.child.exitCode !== null || running.child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => running.child.once('exit', () => resolve()));
  running.child.kill('SIGKILL');
  await exited;
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, context: () => Promise<string>, timeoutMs = WAIT_MS): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}; ${await context()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function proxyRows(): Promise<{ version: string; proxies: ProxyRow[] }> {
  const result = await runCaptured([proxiesCommand], ['proxies', '--json', '--control-plane', controlPlaneUrl]);
  if (result.code !== 0) throw new Error(`tracemesh proxies: ${result.stderr}`);
  return JSON.parse(result.stdout) as { version: string; proxies: ProxyRow[] };
}

async function describeState(): Promise<string> {
  const rows = await proxyRows().catch((err: unknown) => String(err));
  return `proxies: ${JSON.stringify(rows)}\ncontrol plane output:\n${controlPlane?.output() ?? ''}`;
}

/** Both proxies connected and ACKing the control plane's current version, other than `previous`; returns it. */
function bothAcked(previous?: string): Promise<string> {
  return until(
    async () => {
      const answer = await proxyRows().catch(() => undefined);
      if (answer === undefined || answer.version === previous) return undefined;
      const connected = answer.proxies.filter((p) => p.connected);
      return connected.length === 2 && connected.every((p) => p.state === 'acked' && p.ackedVersion === answer.version) ? answer.version : undefined;
    },
    'both proxies to ACK the current version',
    describeState,
  );
}

function apply(file: string): ReturnType<typeof runCaptured> {
  return runCaptured([createApplyCommand(() => Readable.from(['']))], ['apply', '-f', file, '--control-plane', controlPlaneUrl]);
}

/** GET http://shop:9080/PATH with the client proxy's outbound listener as the HTTP proxy (explicit mode). */
async function throughClient(proxy: Proxy, pathname: string): Promise<{ status: number; body: string }> {
  const { status, body } = await throughClientWithHeaders(proxy, pathname);
  return { status, body };
}

function throughClientWithHeaders(proxy: Proxy, pathname: string): Promise<{ status: number; body: string; headers: http.IncomingHttpHeaders }> {
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port: proxy.outboundPort, method: 'GET', path: `http://shop:9080${pathname}`, headers: { host: 'shop:9080' }, agent: false, timeout: 5_000 }, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => (body += chunk));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body, headers: res.headers }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error('no answer within 5 s')));
    req.on('error', reject);
    req.end();
  });
}

interface ConfigDump {
  configVersion: string;
  controlPlane: { connected: boolean; appliedVersion: string; source: string };
  routes: { name: string }[];
}

async function configDump(proxy: Proxy): Promise<ConfigDump> {
  const res = await fetch(`http://127.0.0.1:${proxy.adminPort}/config_dump`);
  return (await res.json()) as ConfigDump;
}

/** The proxy's link to the control plane (private in Proxy: reached here to count what came down the stream and to break a base on purpose). */
function discoveryOf(proxy: Proxy): DiscoveryClient {
  return (proxy as unknown as { discovery: DiscoveryClient }).discovery;
}

function routeYaml(tag: string): string {
  return `apiVersion: tracemesh.dev/v1\nkind: Route\nmetadata: { name: shop, namespace: default }\nspec:\n  hosts: [shop]\n  http:\n    - name: all\n      destinations: [{ service: shop }]\n      headers: { response: { set: { x-route: ${tag} } } }\n`;
}

function sidecar(service: string, port: number): Proxy {
  const proxy = testSidecar(service, port, { controlPlaneUrl, stateDir: path.join(root, `state-${service}`) });
  proxies.add(proxy);
  return proxy;
}

beforeAll(async () => {
  process.on('exit', killChildren);
  app = http.createServer((req, res) => res.end(`shop says hi to ${req.url ?? ''}`));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  appPort = (app.address() as AddressInfo).port;
  controlPlane = await spawnControlPlane(0);
  controlPlaneUrl = controlPlane.url;
  shop = sidecar('shop', appPort);
  client = sidecar('client', await unusedPort());
  await Promise.all([shop.start(), client.start()]);
});

afterAll(async () => {
  await Promise.all([...proxies].map((p) => p.stop()));
  killChildren();
  process.off('exit', killChildren);
  await new Promise<void>((resolve) => (app === undefined ? resolve() : app.close(() => resolve())));
  rmSync(root, { recursive: true, force: true });
});

describe('control plane distribution, end to end', () => {
  let applied = '';

  it('(1) an applied Service reaches both proxies, which ACK it; the endpoint comes from the shop proxy\'s registration', async () => {
    // Nothing is applied yet: the empty configuration is a version like any other, and ACKed.
    const empty = await bothAcked();
    const file = path.join(root, 'shop.yaml');
    writeFileSync(file, serviceYaml('shop', 9080));
    const result = await apply(file);
    expect(result.stderr).toBe('');
    expect(result.stdout).toMatch(/^Service default\/shop created\napplied: revision 1\n$/);
    // `apply` answers once the change is stored; the snapshot follows through the store's watch.
    applied = await bothAcked(empty);
    const rows = await proxyRows();
    expect(rows.proxies.map((p) => p.registration?.service).sort()).toEqual(['client', 'shop']);
    const answer = await throughClient(client, '/hello');
    expect(answer).toEqual({ status: 200, body: 'shop says hi to /hello' });
    const dump = await configDump(client);
    expect(dump.controlPlane).toMatchObject({ connected: true, appliedVersion: applied, source: 'control-plane' });
  });

  it('(2) an invalid document is refused with its errors, and no proxy\'s version changes', async () => {
    const file = path.join(root, 'broken.yaml');
    writeFileSync(file, serviceYaml('shop', 9080).replace('protocol: http', 'protocol: smtp'));
    const before = await proxyRows();
    const result = await apply(file);
    expect(result.code).toBe(1);
    expect(result.stderr).toContain(`${file}: document 0 (Service shop): spec.ports[0].protocol: expected one of http, http2, grpc, tcp, got "smtp" (line 5, column 47)`);
    // Nothing was stored, so nothing is published: the state is final at once.
    const after = await proxyRows();
    expect(after.version).toBe(applied);
    expect(after.proxies.map((p) => [p.proxy, p.state, p.ackedVersion])).toEqual(before.proxies.map((p) => [p.proxy, 'acked', applied]));
    for (const proxy of [shop, client]) expect((await configDump(proxy)).controlPlane.appliedVersion).toBe(applied);
  });

  it('(3) a registration whose endpoint no proxy could accept is refused at the door, so no proxy NACKs', async () => {
    const bad = { id: 'rogue-1', service: 'shop', namespace: 'default', version: 'v9', labels: { 'not a label': 'x' }, address: 'not an address', port: 1234 };
    const res = await fetch(`${controlPlaneUrl}${REGISTRY_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(bad) });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { message: string }).message).toMatch(/^registration: "labels\.not a label": expected a label key/);
    const rows = await proxyRows();
    expect(rows.version).toBe(applied);
    expect(rows.proxies.every((p) => p.state === 'acked')).toBe(true);
  });

  it('(4) a Route change reaches the proxies as a delta; a proxy whose base is broken NACKs it and is sent the whole snapshot', async () => {
    const count = (proxy: Proxy): { snapshots: number; deltas: number; nacks: number } => ({ ...discoveryOf(proxy).updates });
    const shopBefore = count(shop);
    const clientBefore = count(client);
    const file = path.join(root, 'route.yaml');
    writeFileSync(file, routeYaml('one'));
    expect((await apply(file)).stderr).toBe('');
    const withRoute = await bothAcked(applied);
    // Both got the Route as a delta, not a snapshot.
    for (const [proxy, before] of [[shop, shopBefore], [client, clientBefore]] as const) {
      expect(count(proxy)).toEqual({ snapshots: before.snapshots, deltas: before.deltas + 1, nacks: before.nacks });
    }
    const dump = await configDump(client);
    expect(dump.controlPlane.appliedVersion).toBe(withRoute);
    expect(dump.configVersion).toBe(withRoute);
    expect(dump.routes.map((r) => r.name)).toEqual(['shop']);
    expect((await throughClientWithHeaders(client, '/routed')).headers['x-route']).toBe('one');

    // The client's base is broken on purpose: it believes it serves another version, so the next delta does not fit.
    discoveryOf(client).appliedVersion = 'broken-base';
    const shopMid = count(shop);
    const clientMid = count(client);
    writeFileSync(file, routeYaml('two'));
    expect((await apply(file)).stderr).toBe('');
    const changed = await bothAcked(withRoute);
    expect(count(shop)).toEqual({ snapshots: shopMid.snapshots, deltas: shopMid.deltas + 1, nacks: shopMid.nacks });
    // The client NACKed the delta, then received and ACKed the whole snapshot.
    expect(count(client)).toEqual({ snapshots: clientMid.snapshots + 1, deltas: clientMid.deltas + 1, nacks: clientMid.nacks + 1 });
    const after = await configDump(client);
    expect(after.controlPlane).toMatchObject({ appliedVersion: changed, source: 'control-plane', connected: true });
    expect(after.configVersion).toBe(changed);
    expect((await throughClientWithHeaders(client, '/routed')).headers['x-route']).toBe('two');
    const rows = await proxyRows();
    expect(rows.proxies.filter((p) => p.connected).map((p) => [p.state, p.ackedVersion, p.nackedVersion])).toEqual([
      ['acked', changed, ''],
      ['acked', changed, ''],
    ]);
    applied = changed;
  });

  it('(5) killed during steady traffic, no request fails; restarted on the same directory and port, the proxies reconnect and ACK again', async () => {
    const failures: string[] = [];
    let again = '';
    let sent = 0;
    let running = true;
    // A bounded loop: one request at a time, at most 3,000, until told to stop.
    const traffic = (async () => {
      while (running && sent < 3_000) {
        sent++;
        try {
          const answer = await throughClient(client, `/steady/${sent}`);
          if (answer.status !== 200) failures.push(`request ${sent}: HTTP ${answer.status} ${answer.body.slice(0, 200)}`);
        } catch (err) {
          failures.push(`request ${sent}: ${String(err)}`);
        }
        await new Promise((resolve) => setTimeout(resolve, 5));
      }
    })();
    try {
      await until(async () => (sent >= 20 ? true : undefined), '20 requests before the kill', describeState);
      const port = Number(new URL(controlPlaneUrl).port);
      await kill(controlPlane);
      await until(async () => ((await configDump(client)).controlPlane.connected ? undefined : true), 'the client proxy to notice', describeState);
      const sentWhileDown = sent;
      await until(async () => (sent >= sentWhileDown + 20 ? true : undefined), '20 requests while the control plane is down', describeState);
      controlPlane = await spawnControlPlane(port);
      expect(controlPlane.url).toBe(controlPlaneUrl);
      again = await bothAcked();
      const sentAfter = sent;
      await until(async () => (sent >= sentAfter + 20 ? true : undefined), '20 requests after the proxies ACKed again', describeState);
    } finally {
      running = false;
      await traffic;
    }
    expect(failures).toEqual([]);
    expect(sent).toBeGreaterThanOrEqual(60);
    // The same documents and the same registrations make the same version.
    expect(again).toBe(applied);
  });

  it('(6) a proxy restarted while the control plane is down serves its cached configuration', async () => {
    await client.stop();
    proxies.delete(client);
    await kill(controlPlane);
    client = sidecar('client', await unusedPort());
    await client.start();
    const dump = await configDump(client);
    expect(dump.controlPlane).toMatchObject({ connected: false, appliedVersion: applied, source: 'cache' });
    expect(dump.configVersion).toBe(applied);
    expect(await throughClient(client, '/from-cache')).toEqual({ status: 200, body: 'shop says hi to /from-cache' });
  });
});
