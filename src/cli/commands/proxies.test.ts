import http from 'node:http';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proxy } from '../../../proxy/proxy.js';
import { closedPort, runCaptured } from '../../../test/support/api-fixtures.js';
import { serviceYaml, startTestControlPlane, type TestControlPlane } from '../../../test/support/control-plane.js';
import { testSidecar } from '../../../test/support/sidecar.js';
import { DISCOVERY_ACK_PATH, DISCOVERY_STREAM_PATH, REGISTRY_PATH, parseStreamMessage, type ConfigMessage } from '../../control-plane/protocol.js';
import { proxiesCommand, type ProxyRow } from './proxies.js';

let cp: TestControlPlane;
let sidecar: Proxy | undefined;
const stateDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-proxies-test-'));

beforeAll(async () => {
  cp = await startTestControlPlane();
});

afterAll(async () => {
  await sidecar?.stop();
  await cp?.stop();
  rmSync(stateDir, { recursive: true, force: true });
});

function proxies(...argv: string[]): ReturnType<typeof runCaptured> {
  return runCaptured([proxiesCommand], ['proxies', ...argv, '--control-plane', cp.url]);
}

async function rows(): Promise<{ version: string; proxies: ProxyRow[] }> {
  const result = await proxies('--json');
  if (result.code !== 0) throw new Error(result.stderr);
  return JSON.parse(result.stdout) as { version: string; proxies: ProxyRow[] };
}

async function until<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; proxies: ${JSON.stringify(await rows())}`);
    await new Promise((resolve) => setTimeout(resolve, 25));
  }
}

/**
 * A client speaking the real protocol that refuses every snapshot: the proxy
 * validates with the same code as the control plane, so a real sidecar has
 * no honest reason to NACK a snapshot this control plane built.
 */
async function nackingClient(id: string, reason: string): Promise<{ close(): void }> {
  const registration = { id, service: 'legacy', namespace: 'default', version: 'v0', labels: {}, address: '127.0.0.9', port: 7000 };
  const registered = await fetch(`${cp.url}${REGISTRY_PATH}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(registration) });
  expect(registered.status).toBe(200);
  const request = http.get(`${cp.url}${DISCOVERY_STREAM_PATH}?proxy=${encodeURIComponent(id)}`);
  request.on('error', () => undefined);
  request.on('response', (res) => {
    let buffered = '';
    res.setEncoding('utf8');
    res.on('error', () => undefined);
    res.on('data', (chunk: string) => {
      buffered += chunk;
      for (let nl = buffered.indexOf('\n'); nl >= 0; nl = buffered.indexOf('\n')) {
        const message = parseStreamMessage(buffered.slice(0, nl));
        buffered = buffered.slice(nl + 1);
        if (message.type !== 'config') continue;
        const { version, nonce } = message as ConfigMessage;
        void fetch(`${cp.url}${DISCOVERY_ACK_PATH}`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ proxy: id, version, nonce, status: 'NACK', error: reason }),
        });
      }
    });
  });
  return { close: () => request.destroy() };
}

describe('tracemesh proxies', () => {
  it('says when no proxy has connected', async () => {
    expect(await proxies()).toEqual({ code: 0, stderr: '', stdout: expect.stringMatching(/^config version [0-9a-f]{12}; no proxies have connected\n$/) });
  });

  it('shows a sidecar that ACKed, a client that NACKed with its reason, and one that went away', async () => {
    const applied = await fetch(`${cp.url}/api/v1/config`, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify({ sources: [{ file: 'web.yaml', text: serviceYaml('web', 8080) }] }),
    });
    expect(applied.status).toBe(200);
    sidecar = testSidecar('web', 1, { controlPlaneUrl: cp.url, stateDir });
    await sidecar.start();
    const nacking = await nackingClient('legacy-1', 'spec.retries: unknown field\nsecond line of detail');
    const gone = await nackingClient('gone-1', 'whatever');
    await until(async () => {
      const answer = await rows();
      const states = new Map(answer.proxies.map((p) => [p.proxy, p.state]));
      return states.get('legacy-1') === 'nacked' && states.get('gone-1') === 'nacked' && [...states.values()].includes('acked') ? true : undefined;
    }, 'one ACK and two NACKs');
    gone.close();
    await until(async () => ((await rows()).proxies.find((p) => p.proxy === 'gone-1')?.state === 'disconnected' ? true : undefined), 'gone-1 disconnected');

    const answer = await rows();
    const table = await proxies();
    nacking.close();
    expect(table.code).toBe(0);
    const lines = table.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe(`config version ${answer.version}`);
    expect(lines[1]).toMatch(/^PROXY +SERVICE +VERSION +ADDRESS +SENT +ACKED +STATE +NACK REASON$/);
    const cells = (id: string): string[] => (lines.find((l) => l.startsWith(id)) ?? '').split(/ {2,}/);
    expect(cells('gone-1')).toEqual(['gone-1', 'default/legacy', 'v0', '127.0.0.9:7000', expect.stringMatching(/^[0-9a-f]{12}$/), '-', 'disconnected', 'whatever']);
    expect(cells('legacy-1')).toEqual(['legacy-1', 'default/legacy', 'v0', '127.0.0.9:7000', answer.version, '-', 'NACK', 'spec.retries: unknown field…']);
    const web = cells('web.default@');
    expect(web.slice(1)).toEqual(['default/web', 'v1', `127.0.0.1:${sidecar.inboundPort}`, answer.version, answer.version, 'ACK']);
    expect(answer.proxies.find((p) => p.proxy === 'legacy-1')?.nackError).toBe('spec.retries: unknown field\nsecond line of detail');
  });

  it('says when a freshly started control plane is in its start-up grace', async () => {
    const fresh = await startTestControlPlane({ startupGraceMs: 60_000 });
    try {
      const result = await runCaptured([proxiesCommand], ['proxies', '--control-plane', fresh.url]);
      expect(result.stdout).toMatch(/^config version [0-9a-f]{12} \(start-up grace: held back from proxies that serve a configuration until workloads register again\); no proxies have connected\n$/);
    } finally {
      await fresh.stop();
    }
  });

  it('reports an unreachable control plane in one line, exit 1', async () => {
    const port = await closedPort();
    const result = await runCaptured([proxiesCommand], ['proxies', '--control-plane', `http://127.0.0.1:${port}`]);
    expect(result.code).toBe(1);
    expect(result.stderr).toMatch(/^tracemesh proxies: cannot reach the control plane at .*: connection refused/);
  });
});
