import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { eventually, getJson, startCollector } from '../support/collector-harness.js';
import type { RunningCollector } from '../support/collector-harness.js';
import { createVethNamespace } from '../support/netns.js';
import type { VethNamespace } from '../support/netns.js';

// Asynchronous on purpose: the collector runs in this process and must keep serving while the child sends.
const execFileAsync = promisify(execFile);

let ns: VethNamespace;
let running: RunningCollector;

beforeAll(async () => {
  ns = createVethNamespace('tmc', 1);
  // The collector listens only on the host end of the veth pair: the sender must cross it.
  running = await startCollector({ host: ns.hostAddress });
});

afterAll(async () => {
  await running?.stop();
  ns?.remove();
});

describe('a workload in its own network namespace', () => {
  it('sends spans across a veth pair to the collector with the SDK exporter', async () => {
    const script = path.join(import.meta.dirname, 'fixtures', 'send-spans.mjs');
    const url = `http://${ns.hostAddress}:${running.collector.grpc.port}`;
    const { stdout } = await execFileAsync('ip', ['netns', 'exec', ns.name, process.execPath, script, url, '25', 'netns-svc'], {
      encoding: 'utf8',
      cwd: process.cwd(),
      timeout: 30_000,
    });
    const traceId = stdout.trim();
    expect(traceId).toMatch(/^[0-9a-f]{32}$/);
    const apiUrl = `http://${ns.hostAddress}:${running.collector.apiPort}`;
    const trace = await eventually(async () => {
      const res = await getJson<{ spans: Array<{ serviceName: string }> }>(`${apiUrl}/api/v1/traces/${traceId}`);
      return res.status === 200 && res.body.spans.length === 25 ? res.body : undefined;
    }, 'the trace sent from the namespace');
    expect(new Set(trace.spans.map((s) => s.serviceName))).toEqual(new Set(['netns-svc']));
  });

  it('is not reachable from the namespace on an address it does not listen on', async () => {
    const probe = `require('net').connect(${running.collector.grpc.port}, '${ns.nsAddress}').on('connect', () => process.exit(0)).on('error', () => process.exit(3))`;
    let code: unknown = 0;
    try {
      await execFileAsync('ip', ['netns', 'exec', ns.name, process.execPath, '-e', probe], { timeout: 10_000 });
    } catch (err) {
      code = (err as { code?: unknown }).code;
    }
    expect(code).toBe(3);
  });
});
