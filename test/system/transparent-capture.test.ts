/**
 * Transparent capture end to end (issue 4's system test), once with REDIRECT
 * and once with TPROXY: pods as network namespaces on a bridge (src/netns),
 * `tracemesh iptables` in each app pod, the demo apps as root, a sidecar per
 * pod as uid 1337, a collector in the infra pod. Unmodified clients in pod a
 * (curl, a plain TCP client) call pod b by name and pod c by address; b's web
 * app calls c over gRPC and TCP. Everything asserted comes from the
 * collector's store (its query API, forwarded to this process), the proxies'
 * admin pages, and what the servers saw.
 *
 * Client addresses: in both modes the inbound proxy sees pod a's address,
 * because nat REDIRECT rewrites only the destination (the proxy reads the
 * original one with SO_ORIGINAL_DST) and TPROXY leaves the packet alone (the
 * socket's local address is the original destination). Under REDIRECT the
 * app's socket peer is its proxy on 127.0.0.1 (it learns the client from
 * x-forwarded-for), and the proxy's upstream is 127.0.0.1:port. Under TPROXY
 * the proxy connects to the captured destination (the pod's own address at
 * that port) from the client's address, so the app's peer is the calling pod
 * over HTTP/1, gRPC and TCP alike (a peer-reporting app in pod c shows it),
 * and the demo apps there listen on every address (`--host ::`).
 *
 * The CLI and the demo apps are compiled from the sources into a temp dir
 * (what `npm run build` ships, without touching dist/); uid 1337 reads it
 * there and writes only its --state-dir.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { chmodSync, chownSync, existsSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { ApiSpan } from '../../collector/api/span-json.js';
import { ratingFor, stockFor } from '../../src/demo/apps/catalog.js';
import { createMeshNetwork } from '../../src/netns/mesh-network.js';
import type { MeshNetwork, Pod } from '../../src/netns/mesh-network.js';
import { listNamespaces } from '../../src/netns/namespaces.js';
import type { PodProcess } from '../../src/netns/pod-process.js';
import { PROXY_USER } from '../../src/netns/process-user.js';
import { assertRoot } from '../../src/netns/root-check.js';
import { GRPC_METHOD_SPAN } from '../support/demo-processes.js';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const FIXTURES = path.join(REPO, 'test/system/fixtures');
const NODE = process.execPath;
const MODES = ['redirect', 'tproxy'] as const;
type Mode = (typeof MODES)[number];
type AppPod = 'a' | 'b' | 'c';
const APP_PODS: readonly AppPod[] = ['a', 'b', 'c'];

const WEB_PORT = 9080;
const RATINGS_PORT = 50051;
const INVENTORY_PORT = 7070;
const ADMIN_PORT = 15000;
const OTLP_PORT = 4317;
const API_PORT = 16686;
/** A port of pod c that `--exclude-inbound-ports` keeps away from its proxy. */
const EXCLUDED_INBOUND_PORT = 8081;
/** A port in the infra pod that no service claims: pod a's connections there pass through. */
const PASSTHROUGH_PORT = 8090;
/** A port pod a's `--exclude-outbound-ports` keeps away from its proxy. */
const EXCLUDED_OUTBOUND_PORT = 9090;
/** Pod c's peer-reporting app (capture-peer-apps.mjs): what the app behind the sidecar sees as its client. */
const PEER_HTTP_PORT = 9180;
const PEER_GRPC_PORT = 50151;
const PEER_TCP_PORT = 7170;
const PRODUCT = '42';

const READY_MS = 20_000;
const COLLECTOR_READY_MS = 60_000;
const RUN_MS = 20_000;
const TRACE_WAIT_MS = 20_000;

/** Compiled CLI and demo apps, readable by uid 1337; removed in afterAll. */
let buildDir = '';
/** Temp dirs of this file: also removed if the worker exits without afterAll (the network's own guard removes the namespaces). */
const tempDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
const cli = (): string => path.join(buildDir, 'src/cli/main.js');
const app = (name: string): string => path.join(buildDir, 'src/demo/apps', `${name}.js`);

function compileForCapture(): string {
  const dir = compileTracemesh('tracemesh-capture-build-');
  tempDirs.add(dir);
  return dir;
}

function addressesOf(pod: Pod): string[] {
  return [pod.ipv4, pod.ipv6];
}

/** `address:port` as endpoint keys are written (IPv6 in brackets). */
function endpointKey(address: unknown, port: number): string {
  const text = String(address);
  return text.includes(':') ? `[${text}]:${port}` : `${text}:${port}`;
}

/** The pod's address in the family of `address`: a proxy connects from its own address of the family it connects over. */
function sameFamily(pod: Pod, address: unknown): string {
  return String(address).includes(':') ? pod.ipv6 : pod.ipv4;
}

/** Service documents for the proxies' --config: b's web app, c's ratings (gRPC) and inventory (TCP), both addresses of each pod. */
function servicesYaml(network: MeshNetwork): string {
  const service = (name: string, port: number, protocol: string, pod: Pod): string =>
    [
      'apiVersion: tracemesh.dev/v1',
      'kind: Service',
      `metadata: { name: ${name}, namespace: default }`,
      'spec:',
      `  ports: [{ name: ${protocol}, port: ${port}, protocol: ${protocol} }]`,
      '  endpoints:',
      ...addressesOf(pod).map((address) => `    - { address: '${address}', port: ${port}, labels: { version: v1 } }`),
    ].join('\n');
  return `${[
    service('b', WEB_PORT, 'http', network.pod('b')),
    service('c', RATINGS_PORT, 'grpc', network.pod('c')),
    service('inventory', INVENTORY_PORT, 'tcp', network.pod('c')),
    service('peer-http', PEER_HTTP_PORT, 'http', network.pod('c')),
    service('peer-grpc', PEER_GRPC_PORT, 'grpc', network.pod('c')),
    service('peer-tcp', PEER_TCP_PORT, 'tcp', network.pod('c')),
  ].join('\n---\n')}\n`;
}

/** What a capture change can touch in a pod, with counters (which change on their own) and comments blanked. */
async function captureTables(network: MeshNetwork, pod: string): Promise<string> {
  const reads = [['iptables-save'], ['ip6tables-save'], ['ip', 'rule', 'show'], ['ip', '-6', 'rule', 'show']];
  const parts: string[] = [];
  for (const [command, ...args] of reads) {
    const result = await network.run(pod, { command: command as string, args, timeoutMs: RUN_MS });
    expect(result.code, `${command} in ${pod}: ${result.stderr}`).toBe(0);
    const text = result.stdout
      .split('\n')
      .filter((line) => !line.startsWith('#'))
      .map((line) => line.replace(/\[\d+:\d+\]/g, '[0:0]'))
      .join('\n');
    parts.push(`== ${command} ${args.join(' ')}\n${text}`);
  }
  return parts.join('\n');
}

/** Packets that went through the rules of one of our chains, IPv4 and IPv6 together; 0 when the chain does not exist. */
async function chainPackets(network: MeshNetwork, pod: string, table: 'nat' | 'mangle', chain: string): Promise<number> {
  let total = 0;
  for (const tool of ['iptables', 'ip6tables']) {
    const result = await network.run(pod, { command: tool, args: ['-t', table, '-L', chain, '-v', '-x', '-n'], timeoutMs: RUN_MS });
    if (result.code !== 0) continue;
    // Two header lines, then one line per rule starting with its packet count.
    for (const line of result.stdout.split('\n').slice(2)) {
      const packets = Number(line.trim().split(/\s+/)[0]);
      if (Number.isInteger(packets)) total += packets;
    }
  }
  return total;
}

interface CurlResult {
  status: number;
  remoteIp: string;
  body: string;
}

/** curl in a pod: no proxy settings (the environment is clean), nothing but a URL and maybe headers. */
async function curl(network: MeshNetwork, pod: string, url: string, headers: string[] = []): Promise<CurlResult> {
  const args = ['-sS', '--noproxy', '*', '--max-time', '10', '-w', '\n%{http_code} %{remote_ip}', ...headers.flatMap((h) => ['-H', h]), url];
  const result = await network.run(pod, { command: 'curl', args, timeoutMs: RUN_MS });
  expect(result.code, `curl ${url} in ${pod}: ${result.stderr}`).toBe(0);
  const lines = result.stdout.split('\n');
  const [status = '0', remoteIp = ''] = (lines.pop() ?? '').split(' ');
  return { status: Number(status), remoteIp, body: lines.join('\n') };
}

interface TcpResult {
  remoteAddress: string;
  localAddress: string;
  reply: string;
  error: string;
}

/** An unmodified gRPC client (grpc-js) in a pod calling the peer app's WhoAmI. */
async function grpcWhoAmI(network: MeshNetwork, pod: string, host: string, port: number): Promise<{ reply: string; error: string }> {
  const result = await network.run(pod, { command: NODE, args: [path.join(FIXTURES, 'capture-grpc-client.mjs'), host, String(port)], timeoutMs: RUN_MS });
  expect(result.code, `grpc client in ${pod}: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as { reply: string; error: string };
}

async function tcp(network: MeshNetwork, pod: string, host: string, port: number, line?: string): Promise<TcpResult> {
  const args = [path.join(FIXTURES, 'capture-tcp-client.mjs'), host, String(port), ...(line === undefined ? [] : [line])];
  const result = await network.run(pod, { command: NODE, args, timeoutMs: RUN_MS });
  expect(result.code, `tcp client in ${pod}: ${result.stderr}`).toBe(0);
  return JSON.parse(result.stdout) as TcpResult;
}

const FETCH_MS = 5_000;

function fetchWithin(url: string): Promise<Response> {
  return fetch(url, { signal: AbortSignal.timeout(FETCH_MS) });
}

interface ListenerCounts {
  name: string;
  port: number;
  accepted: Record<string, number>;
}

function describeSpans(spans: ApiSpan[]): string {
  return spans
    .map((s) => `${s.serviceName} ${s.kind} ${s.name} ${s.spanId}<-${s.parentSpanId || '-'} ${String(s.attributes['tracemesh.direction'] ?? 'app')}`)
    .join('\n  ');
}

function one(spans: ApiSpan[], what: string, match: (s: ApiSpan) => boolean): ApiSpan {
  const found = spans.filter(match);
  expect(found, `${what} in:\n  ${describeSpans(spans)}`).toHaveLength(1);
  return found[0] as ApiSpan;
}

const isProxySpan = (s: ApiSpan): boolean => s.attributes['tracemesh.direction'] !== undefined;

/** One mode's world: the network, the collector's API, the sidecars and their admin pages. */
class CaptureScene {
  readonly network: MeshNetwork;
  readonly dir: string;
  readonly configFile: string;
  readonly proxies = new Map<AppPod, PodProcess>();
  readonly admin = new Map<AppPod, string>();
  /** iptables-save, ip6tables-save and ip rules of each app pod before `tracemesh iptables`. */
  readonly before = new Map<AppPod, string>();
  /** Each listener fixture by pod, to read who connected. */
  readonly listeners = new Map<string, PodProcess>();
  api = '';

  constructor(readonly mode: Mode) {
    this.network = createMeshNetwork({ base: 'tmcap', pods: [{ name: 'a' }, { name: 'b' }, { name: 'c' }] });
    try {
      this.dir = mkdtempSync(path.join(tmpdir(), `tracemesh-capture-${mode}-`));
      tempDirs.add(this.dir);
      chmodSync(this.dir, 0o755);
      this.configFile = path.join(this.dir, 'services.yaml');
      writeFileSync(this.configFile, servicesYaml(this.network), { mode: 0o644 });
    } catch (err) {
      this.network.teardownNow();
      throw err;
    }
  }

  get infra(): Pod {
    return this.network.infra;
  }

  pod(name: string): Pod {
    return this.network.pod(name);
  }

  async start(): Promise<void> {
    const n = this.network;
    const collector = n.spawn('infra', {
      command: NODE,
      args: [cli(), 'collector', '--data-dir', path.join(this.dir, 'collector'), '--otlp-http-port', '4318', '--api-port', String(API_PORT)],
      label: 'infra:collector',
    });
    for (const pod of APP_PODS) this.before.set(pod, await captureTables(n, pod));
    await this.iptables('a', ['--exclude-outbound-ports', String(EXCLUDED_OUTBOUND_PORT)]);
    await this.iptables('b', []);
    await this.iptables('c', ['--exclude-inbound-ports', String(EXCLUDED_INBOUND_PORT)]);

    const collectorUrl = `http://${this.infra.ipv4}:${OTLP_PORT}`;
    // TPROXY: the proxy connects to the app at the pod's own address, so the app must listen there.
    const listenArgs = this.mode === 'tproxy' ? ['--host', '::'] : [];
    const appArgs = [...listenArgs, '--collector', collectorUrl, '--export-delay-ms', '100'];
    const apps = [
      n.spawn('c', { command: NODE, args: [app('ratings'), '--port', String(RATINGS_PORT), ...appArgs], label: 'c:ratings' }),
      n.spawn('c', { command: NODE, args: [app('inventory'), '--port', String(INVENTORY_PORT), ...appArgs], label: 'c:inventory' }),
      n.spawn('b', {
        command: NODE,
        args: [app('web'), '--port', String(WEB_PORT), '--ratings', `c:${RATINGS_PORT}`, '--inventory', `c:${INVENTORY_PORT}`, ...appArgs],
        label: 'b:web',
      }),
      n.spawn('c', {
        command: NODE,
        args: [path.join(FIXTURES, 'capture-peer-apps.mjs'), String(PEER_HTTP_PORT), String(PEER_GRPC_PORT), String(PEER_TCP_PORT)],
        label: 'c:peer-apps',
      }),
    ];
    this.listen('c', 'c-excluded', EXCLUDED_INBOUND_PORT);
    this.listen('infra', 'passthrough', PASSTHROUGH_PORT);
    this.listen('infra', 'excluded-outbound', EXCLUDED_OUTBOUND_PORT);
    for (const pod of APP_PODS) this.startProxy(pod, 'allow-any');

    await collector.waitForLine(/^tracemesh collector ready: /, COLLECTOR_READY_MS);
    await Promise.all([
      ...apps.map((proc) => proc.waitForLine(/^(tracemesh-demo \S+ )?listening on/, READY_MS)),
      ...[...this.listeners.values()].map((proc) => proc.waitForLine(/^listening on/, READY_MS)),
      ...APP_PODS.map((pod) => this.proxyReady(pod)),
    ]);
    this.api = (await n.forward('infra', API_PORT)).url;
    for (const pod of APP_PODS) this.admin.set(pod, (await n.forward(pod, ADMIN_PORT)).url);
    await this.waitForApi();
  }

  private async iptables(pod: AppPod, extra: string[]): Promise<void> {
    const args = [cli(), 'iptables', '--mode', this.mode, '--collector', `${this.infra.ipv4}:${OTLP_PORT}`, ...extra];
    const result = await this.network.run(pod, { command: NODE, args, timeoutMs: RUN_MS });
    expect(result.code, `tracemesh iptables in ${pod}: ${result.stderr}`).toBe(0);
    expect(result.stdout).toContain(`${this.mode === 'tproxy' ? 'TPROXY' : 'REDIRECT'} capture in place for IPv4 and IPv6`);
  }

  private listen(pod: string, name: string, port: number): void {
    this.listeners.set(name, this.network.spawn(pod, { command: NODE, args: [path.join(FIXTURES, 'capture-listener.mjs'), name, String(port)], label: `${pod}:${name}` }));
  }

  /** The sidecar of `pod` as uid 1337; under TPROXY with CAP_NET_ADMIN (IP_TRANSPARENT) and nothing else. */
  startProxy(pod: AppPod, policy: 'allow-any' | 'registry-only'): PodProcess {
    const stateDir = path.join(this.dir, `state-${pod}`);
    if (!existsSync(stateDir)) {
      mkdirSync(stateDir, { mode: 0o700 });
      chownSync(stateDir, PROXY_USER.uid, PROXY_USER.gid);
    }
    const proc = this.network.spawn(pod, {
      command: NODE,
      args: [
        cli(),
        'proxy',
        '--service',
        pod,
        '--mode',
        'transparent',
        '--capture',
        this.mode,
        '--outbound-policy',
        policy,
        '--collector',
        `${this.infra.ipv4}:${OTLP_PORT}`,
        '--config',
        this.configFile,
        '--state-dir',
        stateDir,
        '--metrics-interval',
        '1s',
      ],
      user: PROXY_USER,
      capabilities: this.mode === 'tproxy' ? ['net_admin'] : [],
      // Where a proxy that ignored --state-dir would write: its cwd is somewhere it cannot.
      cwd: this.dir,
      label: `${pod}:proxy`,
    });
    this.proxies.set(pod, proc);
    return proc;
  }

  async proxyReady(pod: AppPod): Promise<void> {
    await this.proxies.get(pod)?.waitForLine(/^tracemesh proxy ready: /, READY_MS);
  }

  private async waitForApi(): Promise<void> {
    await this.poll(async () => ((await fetchWithin(`${this.api}/ready`)).status === 200 ? true : undefined), 'the collector query API', COLLECTOR_READY_MS);
  }

  async poll<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = TRACE_WAIT_MS): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    let last: unknown;
    for (;;) {
      try {
        const value = await probe();
        if (value !== undefined) return value;
      } catch (err) {
        last = err;
      }
      if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${last === undefined ? '' : `: ${String(last)}`}`);
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
  }

  async getJson<T>(pathAndQuery: string): Promise<{ status: number; body: T }> {
    const res = await fetchWithin(`${this.api}${pathAndQuery}`);
    return { status: res.status, body: (await res.json()) as T };
  }

  /** Trace ids of `service` whose spans match every attribute filter, newest first. */
  async traceIds(service: string, attributes: Record<string, string | number>): Promise<string[]> {
    const query = new URLSearchParams({ service, limit: '50' });
    for (const [key, value] of Object.entries(attributes)) query.set(`attr.${key}`, String(value));
    const { status, body } = await this.getJson<{ traces: Array<{ traceId: string }> }>(`/api/v1/traces?${query.toString()}`);
    expect(status).toBe(200);
    return body.traces.map((t) => t.traceId);
  }

  async spansOf(traceId: string): Promise<ApiSpan[]> {
    const { status, body } = await this.getJson<{ spans: ApiSpan[] }>(`/api/v1/traces/${traceId}`);
    return status === 200 ? body.spans : [];
  }

  /** The one span of `service` matching `attributes` (polling until it is stored). */
  async waitForSpan(service: string, attributes: Record<string, string | number>, what: string): Promise<ApiSpan> {
    return this.poll(async () => {
      const ids = await this.traceIds(service, attributes);
      if (ids.length === 0) return undefined;
      expect(ids, what).toHaveLength(1);
      const spans = (await this.spansOf(ids[0] as string)).filter(
        (s) => s.serviceName === service && Object.entries(attributes).every(([k, v]) => String(s.attributes[k]) === String(v)),
      );
      return spans.length === 0 ? undefined : one(spans, what, () => true);
    }, what);
  }

  async listenerCounts(pod: AppPod): Promise<Record<string, Record<string, number>>> {
    const res = await fetchWithin(`${this.admin.get(pod) as string}/clusters`);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { listeners: ListenerCounts[] };
    return Object.fromEntries(body.listeners.map((l) => [l.name, Object.fromEntries(Object.entries(l.accepted).filter(([, n]) => n > 0))]));
  }

  async teardown(): Promise<void> {
    try {
      await this.network.teardown();
    } finally {
      rmSync(this.dir, { recursive: true, force: true });
    }
  }
}

// Without root every test here fails with this one line.
beforeAll(() => {
  assertRoot();
  buildDir = compileForCapture();
});

afterAll(() => {
  if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
});

describe.each(MODES)('transparent capture with tracemesh iptables --mode %s', (mode) => {
  let scene: CaptureScene;

  beforeAll(async () => {
    scene = new CaptureScene(mode);
    await scene.start();
  });

  afterAll(async () => {
    await scene?.teardown();
  });

  it('a calls b by name, b calls c over gRPC and TCP: one trace with a client and a server proxy span per hop, no capture loop', async () => {
    const a = scene.pod('a');
    const b = scene.pod('b');
    const c = scene.pod('c');
    const requestId = randomUUID();
    const res = await curl(scene.network, 'a', `http://b:${WEB_PORT}/product/${PRODUCT}`, [`x-request-id: ${requestId}`]);
    expect(res.status, res.body).toBe(200);
    expect(JSON.parse(res.body)).toEqual({ productId: PRODUCT, rating: ratingFor(PRODUCT), stock: stockFor(PRODUCT) });
    expect(addressesOf(b)).toContain(res.remoteIp);

    // No capture loop: each proxy accepted exactly the connections its app made or received, once.
    // A proxy's upstream connection captured again would show up as a second accept on some listener.
    expect(await scene.listenerCounts('a')).toEqual({ inbound: {}, outbound: { http1: 1 } });
    expect(await scene.listenerCounts('b')).toEqual({ inbound: { http1: 1 }, outbound: { h2c: 1, tcp: 1 } });
    expect(await scene.listenerCounts('c')).toEqual({ inbound: { h2c: 1, tcp: 1 }, outbound: {} });
    // Inbound reached b's proxy through the mode's own rules: nat REDIRECT, or mangle TPROXY with no NAT at all.
    const redirected = await chainPackets(scene.network, 'b', 'nat', 'TRACEMESH_IN_REDIRECT');
    const tproxied = await chainPackets(scene.network, 'b', 'mangle', 'TRACEMESH_TPROXY');
    if (mode === 'redirect') {
      expect(redirected).toBeGreaterThan(0);
      expect(tproxied).toBe(0);
    } else {
      expect(tproxied).toBeGreaterThan(0);
      expect(redirected).toBe(0);
    }

    const [traceId] = await scene.poll(async () => {
      const ids = await scene.traceIds('a', { 'tracemesh.request_id': requestId });
      return ids.length > 0 ? ids : undefined;
    }, `a trace of a's proxy with request id ${requestId}`);
    let spans: ApiSpan[] = [];
    try {
      spans = await scene.poll(async () => {
        const found = await scene.spansOf(traceId as string);
        spans = found;
        return found.length >= 9 ? found : undefined;
      }, `9 spans in trace ${traceId}`);
    } catch (err) {
      throw new Error(`${String(err)}; spans seen:\n  ${describeSpans(spans)}`);
    }

    // Every proxy span of the trace, by who made it: exactly one client and one server span per hop.
    const proxySpans = spans.filter(isProxySpan).map((s) => `${s.serviceName} ${s.kind} ${String(s.attributes['tracemesh.direction'])}`);
    expect(proxySpans.sort(), describeSpans(spans)).toEqual(['a Client outbound', 'b Client outbound', 'b Server inbound', 'c Server inbound']);

    const aClient = one(spans, "a's proxy CLIENT span", (s) => s.serviceName === 'a' && s.kind === 'Client');
    const bServer = one(spans, "b's proxy SERVER span", (s) => s.serviceName === 'b' && s.kind === 'Server');
    const webServer = one(spans, "web's app SERVER span", (s) => s.serviceName === 'web' && s.kind === 'Server');
    const grpcApp = one(spans, "web's gRPC CLIENT span", (s) => s.serviceName === 'web' && s.kind === 'Client' && s.name === GRPC_METHOD_SPAN);
    const bClient = one(spans, "b's proxy gRPC CLIENT span", (s) => s.serviceName === 'b' && s.kind === 'Client');
    const cServer = one(spans, "c's proxy SERVER span", (s) => s.serviceName === 'c' && s.kind === 'Server');
    const ratingsApp = one(spans, "ratings' app SERVER span", (s) => s.serviceName === 'ratings' && s.kind === 'Server');
    const stockApp = one(spans, "web's STOCK client span", (s) => s.serviceName === 'web' && s.kind === 'Client' && s.name === 'STOCK');
    one(spans, "inventory's STOCK server span", (s) => s.serviceName === 'inventory' && s.kind === 'Server' && s.name === 'STOCK');

    expect(aClient.parentSpanId).toBe('');
    expect(bServer.parentSpanId).toBe(aClient.spanId);
    expect(webServer.parentSpanId).toBe(bServer.spanId);
    expect(grpcApp.parentSpanId).toBe(webServer.spanId);
    expect(bClient.parentSpanId).toBe(grpcApp.spanId);
    expect(cServer.parentSpanId).toBe(bClient.spanId);
    expect(ratingsApp.parentSpanId).toBe(cServer.spanId);
    expect(stockApp.parentSpanId).toBe(webServer.spanId);

    // The original destinations: the name and port the client used, the pod address it reached.
    expect(aClient.attributes).toMatchObject({
      'http.request.method': 'GET',
      'url.path': `/product/${PRODUCT}`,
      'http.response.status_code': 200,
      'server.address': 'b',
      'server.port': WEB_PORT,
      'network.peer.port': WEB_PORT,
      'tracemesh.protocol': 'http1',
      'tracemesh.source.service': 'a',
      'tracemesh.destination.service': 'b',
      'tracemesh.request_id': requestId,
    });
    expect(addressesOf(b)).toContain(aClient.attributes['network.peer.address']);
    expect(bServer.attributes).toMatchObject({
      'http.response.status_code': 200,
      'server.port': WEB_PORT,
      'tracemesh.source.service': 'a',
      'tracemesh.destination.service': 'b',
    });
    // Inbound went to the app on the port the caller connected to: on loopback (REDIRECT), or at
    // the captured destination, the address a's proxy connected to (TPROXY).
    expect(bServer.attributes['tracemesh.upstream.address']).toBe(mode === 'tproxy' ? endpointKey(aClient.attributes['network.peer.address'], WEB_PORT) : `127.0.0.1:${WEB_PORT}`);
    // The real client: pod a's own address (its proxy's connection, in the family it used), not a loopback or b's own.
    expect(bServer.attributes['client.address']).toBe(sameFamily(a, aClient.attributes['network.peer.address']));
    // The app sees the real client too: curl's own address, from the x-forwarded-for the proxies append.
    expect(webServer.attributes['client.address']).toBe(sameFamily(a, res.remoteIp));
    expect(bClient.attributes).toMatchObject({
      'rpc.system': 'grpc',
      'rpc.grpc.status_code': 0,
      'server.address': 'c',
      'server.port': RATINGS_PORT,
      'network.peer.port': RATINGS_PORT,
      'tracemesh.protocol': 'grpc',
      'tracemesh.source.service': 'b',
      'tracemesh.destination.service': 'c',
    });
    expect(addressesOf(c)).toContain(bClient.attributes['network.peer.address']);
    expect(cServer.attributes).toMatchObject({ 'tracemesh.source.service': 'b' });
    expect(cServer.attributes['tracemesh.upstream.address']).toBe(mode === 'tproxy' ? endpointKey(bClient.attributes['network.peer.address'], RATINGS_PORT) : `127.0.0.1:${RATINGS_PORT}`);
    expect(cServer.attributes['client.address']).toBe(sameFamily(b, bClient.attributes['network.peer.address']));

    // web → inventory is opaque TCP: a connection span on each side (their own traces), to c's address on 7070.
    const bTcp = await scene.waitForSpan('b', { 'server.port': INVENTORY_PORT }, "b's proxy TCP span to inventory");
    expect(bTcp.kind).toBe('Client');
    expect(bTcp.attributes).toMatchObject({ 'tracemesh.protocol': 'tcp', 'tracemesh.destination.service': 'inventory', 'network.peer.port': INVENTORY_PORT });
    expect(addressesOf(c)).toContain(bTcp.attributes['server.address']);
    expect(bTcp.attributes['network.peer.address']).toBe(bTcp.attributes['server.address']);
    const cTcp = await scene.waitForSpan('c', { 'server.port': INVENTORY_PORT, 'client.address': sameFamily(b, bTcp.attributes['server.address']) }, "c's proxy TCP span from b");
    expect(cTcp.kind).toBe('Server');
    expect(Number(cTcp.attributes['tracemesh.tcp.bytes_sent'])).toBeGreaterThan(0);
  });

  it('raw TCP connections from a to c, by name and over the other family: a client span in a, a server span in c, original destination and real client address', async () => {
    const a = scene.pod('a');
    const c = scene.pod('c');
    const byName = await tcp(scene.network, 'a', 'c', INVENTORY_PORT, `STOCK ${PRODUCT}`);
    const otherFamily = byName.remoteAddress === c.ipv4 ? c.ipv6 : c.ipv4;
    const byAddress = await tcp(scene.network, 'a', otherFamily, INVENTORY_PORT, `STOCK ${PRODUCT}`);
    for (const seen of [byName, byAddress]) {
      expect(seen).toMatchObject({ reply: `${PRODUCT} ${stockFor(PRODUCT)}\n`, error: '' });
      const family = seen.remoteAddress.includes(':') ? 6 : 4;
      expect(seen.remoteAddress).toBe(family === 6 ? c.ipv6 : c.ipv4);
      expect(seen.localAddress).toBe(family === 6 ? a.ipv6 : a.ipv4);
      const aTcp = await scene.waitForSpan('a', { 'server.port': INVENTORY_PORT, 'server.address': seen.remoteAddress }, `a's proxy TCP span to ${seen.remoteAddress}`);
      expect(aTcp.kind).toBe('Client');
      expect(aTcp.attributes).toMatchObject({
        'network.peer.address': seen.remoteAddress,
        'network.peer.port': INVENTORY_PORT,
        'client.address': seen.localAddress,
        'tracemesh.protocol': 'tcp',
        'tracemesh.destination.service': 'inventory',
      });
      const cTcp = await scene.waitForSpan('c', { 'server.port': INVENTORY_PORT, 'client.address': seen.localAddress }, `c's proxy TCP span from ${seen.localAddress}`);
      expect(cTcp.kind).toBe('Server');
      expect(cTcp.attributes).toMatchObject({
        'server.address': seen.remoteAddress,
        'tracemesh.upstream.address': mode === 'tproxy' ? endpointKey(seen.remoteAddress, INVENTORY_PORT) : `127.0.0.1:${INVENTORY_PORT}`,
        'tracemesh.tcp.bytes_received': `STOCK ${PRODUCT}\n`.length,
        'tracemesh.tcp.bytes_sent': `${PRODUCT} ${stockFor(PRODUCT)}\n`.length,
      });
    }
  });

  it(`the app's peer over HTTP/1, gRPC and TCP: ${mode === 'tproxy' ? "the calling pod's address (TPROXY keeps the client's source)" : 'its proxy on 127.0.0.1 (REDIRECT)'}`, async () => {
    const a = scene.pod('a');
    const c = scene.pod('c');
    const requestId = randomUUID();
    const viaHttp = await curl(scene.network, 'a', `http://c:${PEER_HTTP_PORT}/`, [`x-request-id: ${requestId}`]);
    expect(viaHttp.status, viaHttp.body).toBe(200);
    const cServer = await scene.waitForSpan('c', { 'tracemesh.request_id': requestId }, "c's proxy SERVER span of the peer app's HTTP request");
    expect(cServer.kind).toBe('Server');
    const upstream = String(cServer.attributes['tracemesh.upstream.address']);
    if (mode === 'tproxy') {
      // The app was reached at the captured destination (c's address in the family a's proxy used), from a's address of that family.
      const captured = addressesOf(c).find((address) => endpointKey(address, PEER_HTTP_PORT) === upstream);
      expect(captured, `${upstream} is c's address at ${PEER_HTTP_PORT}`).toBeDefined();
      expect(viaHttp.body).toBe(`http saw ${sameFamily(a, captured)}`);
      expect(cServer.attributes['client.address']).toBe(sameFamily(a, captured));
    } else {
      expect(upstream).toBe(`127.0.0.1:${PEER_HTTP_PORT}`);
      expect(viaHttp.body).toBe('http saw 127.0.0.1');
    }

    for (const host of ['c', c.ipv4, c.ipv6]) {
      const viaGrpc = await grpcWhoAmI(scene.network, 'a', host, PEER_GRPC_PORT);
      expect(viaGrpc.error, `gRPC to ${host}`).toBe('');
      if (mode === 'tproxy') {
        // gRPC is routed by its authority to one of peer-grpc's endpoints (either family), so any address of a's.
        expect(addressesOf(a), `gRPC to ${host}: ${viaGrpc.reply}`).toContain(viaGrpc.reply.replace(/^grpc saw /, ''));
      } else {
        expect(viaGrpc.reply).toBe('grpc saw 127.0.0.1');
      }

      const viaTcp = await tcp(scene.network, 'a', host, PEER_TCP_PORT);
      expect(viaTcp.error, `TCP to ${host}`).toBe('');
      expect(viaTcp.reply).toBe(`tcp saw ${mode === 'tproxy' ? viaTcp.localAddress : '127.0.0.1'}\n`);
      if (mode === 'tproxy') expect(addressesOf(a)).toContain(viaTcp.localAddress);
    }
  });

  it('the admin port is reachable from another pod and from the pod itself, never captured', async () => {
    const b = scene.pod('b');
    const before = await scene.listenerCounts('b');
    for (const [from, url] of [
      ['a', `http://b:${ADMIN_PORT}/ready`],
      ['infra', `http://${b.ipv4}:${ADMIN_PORT}/ready`],
      ['b', `http://127.0.0.1:${ADMIN_PORT}/ready`],
      ['b', `http://${b.ipv4}:${ADMIN_PORT}/ready`],
      ['b', `http://[${b.ipv6}]:${ADMIN_PORT}/ready`],
    ] as const) {
      const res = await curl(scene.network, from, url);
      expect(res.status, `${url} from ${from}: ${res.body}`).toBe(200);
    }
    expect(await scene.listenerCounts('b')).toEqual(before);
  });

  it('excluded ports are not captured: inbound to c, outbound from a; no proxy accepts them and no span names them', async () => {
    const a = scene.pod('a');
    const c = scene.pod('c');
    const cBefore = await scene.listenerCounts('c');
    const aBefore = await scene.listenerCounts('a');
    const inbound = await tcp(scene.network, 'infra', 'c', EXCLUDED_INBOUND_PORT);
    expect(inbound).toMatchObject({ reply: `c-excluded saw ${inbound.localAddress}\n`, error: '' });
    expect(addressesOf(scene.infra)).toContain(inbound.localAddress);
    const outbound = await tcp(scene.network, 'a', 'infra', EXCLUDED_OUTBOUND_PORT);
    expect(outbound).toMatchObject({ reply: `excluded-outbound saw ${outbound.localAddress}\n`, error: '' });
    expect(addressesOf(a)).toContain(outbound.localAddress);
    expect(await scene.listenerCounts('c')).toEqual(cBefore);
    expect(await scene.listenerCounts('a')).toEqual(aBefore);

    // A control connection through both proxies afterwards: once its spans are stored, spans of
    // the excluded connections (made earlier, by the same proxies) would be stored too.
    const control = `STOCK control-${mode}`;
    const seen = await tcp(scene.network, 'a', c.ipv4, INVENTORY_PORT, control);
    expect(seen.error).toBe('');
    const bytes = { 'tracemesh.tcp.bytes_received': control.length + 1 };
    await scene.waitForSpan('a', bytes, "a's proxy span of the control connection");
    await scene.waitForSpan('c', bytes, "c's proxy span of the control connection");
    expect(await scene.traceIds('c', { 'server.port': EXCLUDED_INBOUND_PORT })).toEqual([]);
    expect(await scene.traceIds('a', { 'server.port': EXCLUDED_OUTBOUND_PORT })).toEqual([]);
  });

  it('a destination no service claims passes through with a "passthrough" span; under registry-only it is refused', async () => {
    const a = scene.pod('a');
    const infra = scene.infra;
    const listener = scene.listeners.get('passthrough') as PodProcess;
    const allowed = await tcp(scene.network, 'a', 'infra', PASSTHROUGH_PORT);
    expect(allowed.error).toBe('');
    expect(addressesOf(infra)).toContain(allowed.remoteAddress);
    // The listener saw pod a's address: the proxy's upstream connection, not captured again.
    expect(allowed.reply).toBe(`passthrough saw ${sameFamily(a, allowed.remoteAddress)}\n`);
    const span = await scene.waitForSpan('a', { 'server.port': PASSTHROUGH_PORT }, "a's passthrough span");
    expect(span.kind).toBe('Client');
    expect(span.name).toBe('tcp passthrough');
    expect(span.attributes).toMatchObject({
      'tracemesh.destination.service': 'passthrough',
      'server.address': allowed.remoteAddress,
      'network.peer.address': allowed.remoteAddress,
      'tracemesh.response_flags': '-',
    });

    await (scene.proxies.get('a') as PodProcess).stop();
    scene.startProxy('a', 'registry-only');
    await scene.proxyReady('a');
    const connectionsBefore = listener.output('stdout').split('\n').filter((l) => l.startsWith('connection from')).length;
    const refused = await tcp(scene.network, 'a', 'infra', PASSTHROUGH_PORT);
    expect(refused.reply).toBe('');
    expect(['', 'ECONNRESET']).toContain(refused.error);
    // A known service still works under registry-only.
    expect((await curl(scene.network, 'a', `http://b:${WEB_PORT}/healthz`)).status).toBe(200);
    const connectionsAfter = listener.output('stdout').split('\n').filter((l) => l.startsWith('connection from')).length;
    expect(connectionsAfter).toBe(connectionsBefore);
    const refusal = await scene.waitForSpan('a', { 'server.port': PASSTHROUGH_PORT, 'tracemesh.response_flags': 'NR' }, "a's refusal span");
    expect(refusal.attributes).toMatchObject({ 'server.address': refused.remoteAddress, 'tracemesh.destination.service': '' });
  });

  it('the proxies (uid 1337) keep their state in --state-dir and wrote nothing into the project directory', async () => {
    for (const pod of APP_PODS) {
      const res = await fetchWithin(`${scene.admin.get(pod) as string}/config_dump`);
      expect(((await res.json()) as { stateDir: string }).stateDir).toBe(path.join(scene.dir, `state-${pod}`));
    }
    const found = execFileSync('find', [REPO, '-xdev', '-path', path.join(REPO, 'node_modules'), '-prune', '-o', '-user', String(PROXY_USER.uid), '-print'], {
      encoding: 'utf8',
    });
    expect(found.trim()).toBe('');
  });

  it('tracemesh iptables --cleanup leaves iptables-save, ip6tables-save and ip rules in every pod as they were before', async () => {
    for (const pod of APP_PODS) {
      const result = await scene.network.run(pod, { command: NODE, args: [cli(), 'iptables', '--cleanup'], timeoutMs: RUN_MS });
      expect(result.code, `cleanup in ${pod}: ${result.stderr}`).toBe(0);
      expect(await captureTables(scene.network, pod)).toBe(scene.before.get(pod));
    }
  });

  it('teardown removes every namespace, /etc/netns dir and process of the network', async () => {
    const prefix = scene.network.prefix;
    const processes = [...scene.proxies.values(), ...scene.listeners.values()];
    await scene.network.teardown();
    expect(listNamespaces().filter((name) => name.startsWith(`${prefix}-`))).toEqual([]);
    expect(existsSync('/etc/netns') ? readdirSync('/etc/netns').filter((name) => name.startsWith(`${prefix}-`)) : []).toEqual([]);
    for (const proc of processes) expect(proc.exitStatus(), proc.label).toBeDefined();
  });
});
