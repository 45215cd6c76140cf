/**
 * The collector reached over a real network: a workload pod sends spans with the OpenTelemetry
 * SDK's OTLP/gRPC exporter across the mesh network's bridge (src/netns: a switch namespace and
 * pods, nothing in the host's namespace) to a collector in the infra pod that listens on the
 * infra pod's IPv4 address only. The spans are read back through the query API, forwarded to
 * this process; an address the collector does not listen on refuses the workload.
 *
 * The collector runs as `tracemesh collector` compiled from the sources into a temp dir (what
 * `npm run build` ships, without touching dist/): it has to run inside the infra pod.
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson } from '../support/collector-harness.js';
import { createMeshNetwork } from '../../src/netns/mesh-network.js';
import type { MeshNetwork, Pod } from '../../src/netns/mesh-network.js';
import { assertRoot } from '../../src/netns/root-check.js';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const NODE = process.execPath;
const OTLP_GRPC_PORT = 4317;
const API_PORT = 16686;
const COLLECTOR_READY_MS = 60_000;
const RUN_MS = 30_000;

/** The compiled CLI and the collector's data; removed in afterAll (or at exit). */
const tempDirs = new Set<string>();
process.once('exit', () => {
  for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
});
let network: MeshNetwork;
let infra: Pod;
let apiUrl = '';

function compileCli(): string {
  const dir = compileTracemesh('tracemesh-collector-netns-');
  tempDirs.add(dir);
  return dir;
}

beforeAll(async () => {
  assertRoot();
  const buildDir = compileCli();
  const dataDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-collector-netns-data-'));
  tempDirs.add(dataDir);
  network = createMeshNetwork({ base: 'tmcol', pods: [{ name: 'app' }] });
  infra = network.infra;
  const collector = network.spawn('infra', {
    command: NODE,
    // Only the infra pod's IPv4 address: the workload must cross the bridge to it, and nothing else answers.
    args: [path.join(buildDir, 'src/cli/main.js'), 'collector', '--data-dir', dataDir, '--host', infra.ipv4, '--api-port', String(API_PORT)],
    label: 'infra:collector',
  });
  await collector.waitForLine(/^tracemesh collector ready: /, COLLECTOR_READY_MS);
  apiUrl = (await network.forward('infra', API_PORT, infra.ipv4)).url;
});

afterAll(async () => {
  try {
    await network?.teardown();
  } finally {
    for (const dir of tempDirs) rmSync(dir, { recursive: true, force: true });
    tempDirs.clear();
  }
});

describe('a workload in a pod of the mesh network', () => {
  it('sends spans across the bridge to the collector in the infra pod with the SDK exporter', async () => {
    const script = path.join(import.meta.dirname, 'fixtures', 'send-spans.mjs');
    const url = `http://${infra.ipv4}:${OTLP_GRPC_PORT}`;
    const result = await network.run('app', { command: NODE, args: [script, url, '25', 'netns-svc'], cwd: REPO, timeoutMs: RUN_MS });
    expect(result.code, result.stderr).toBe(0);
    const traceId = result.stdout.trim();
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const trace = await eventually(async () => {
      const res = await getJson<{ spans: Array<{ serviceName: string }> }>(`${apiUrl}/api/v1/traces/${traceId}`);
      return res.status === 200 && res.body.spans.length === 25 ? res.body : undefined;
    }, 'the trace sent from the app pod');
    expect(new Set(trace.spans.map((s) => s.serviceName))).toEqual(new Set(['netns-svc']));
  });

  it('is not reachable from the pod on an address it does not listen on', async () => {
    const probe = (host: string): string =>
      `require('net').connect(${OTLP_GRPC_PORT}, '${host}').on('connect', () => process.exit(0)).on('error', () => process.exit(3))`;
    // The infra pod's IPv6 address: the same pod, the same port, not the address the collector bound.
    const refused = await network.run('app', { command: NODE, args: ['-e', probe(infra.ipv6)], timeoutMs: RUN_MS });
    expect(refused.code).toBe(3);
    // The control: the address it listens on accepts the same probe.
    const accepted = await network.run('app', { command: NODE, args: ['-e', probe(infra.ipv4)], timeoutMs: RUN_MS });
    expect(accepted.code).toBe(0);
  });
});
