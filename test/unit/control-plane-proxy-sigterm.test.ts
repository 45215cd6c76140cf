/**
 * A real `tracemesh proxy --control-plane URL` process (the CLI compiled
 * from today's sources) stops cleanly on SIGTERM: exit code 0 within a
 * deadline. It used to exit 13 (Node's "unsettled top-level await"): with
 * a live collector the proxy's OTLP session is open, idle and unref'd, and
 * closing it gracefully waited on nothing that held the event loop, so the
 * loop emptied in the middle of `proxy.stop()`. The collector here is a
 * minimal OTLP/gRPC endpoint (every call answered OK) so that the session
 * exists, as in the demo, and the proxy holds its discovery stream and has
 * ACKed the control plane's snapshot before it is signalled.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import http2 from 'node:http2';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';
import { startTestControlPlane, type TestControlPlane } from '../support/control-plane.js';
import { unusedPort } from '../support/sidecar.js';

const WAIT_MS = 20_000;
/** The proxy's whole stop path (flushes bounded by a few seconds) fits well inside this. */
const STOP_DEADLINE_MS = 15_000;

let buildDir = '';
let root = '';
let controlPlane: TestControlPlane | undefined;
let collector: http2.Http2Server | undefined;
let collectorCalls = 0;
let child: ChildProcess | undefined;

async function until(probe: () => boolean, what: string, context: () => string): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  while (!probe()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${WAIT_MS} ms waiting for ${what}; ${context()}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

beforeAll(async () => {
  buildDir = compileTracemesh();
  root = mkdtempSync(path.join(tmpdir(), 'tracemesh-cp-sigterm-'));
  controlPlane = await startTestControlPlane();
  collector = http2.createServer();
  collector.on('stream', (stream) => {
    collectorCalls++;
    stream.resume();
    stream.on('end', () => {
      stream.respond({ ':status': 200, 'content-type': 'application/grpc' }, { waitForTrailers: true });
      stream.on('wantTrailers', () => stream.sendTrailers({ 'grpc-status': '0' }));
      stream.end();
    });
  });
  await new Promise<void>((resolve) => collector!.listen(0, '127.0.0.1', resolve));
}, 120_000);

afterAll(async () => {
  if (child !== undefined && child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await controlPlane?.stop();
  await new Promise<void>((resolve) => (collector === undefined ? resolve() : collector.close(() => resolve())));
  if (root !== '') rmSync(root, { recursive: true, force: true });
  if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
});

describe('tracemesh proxy with a control plane', () => {
  it('exits 0 on SIGTERM, within the deadline, after it has ACKed a snapshot and exported to the collector', async () => {
    const cp = controlPlane!;
    const collectorPort = (collector!.address() as AddressInfo).port;
    const args = [path.join(buildDir, 'src/cli/main.js'), 'proxy', '--service', 'sigterm-probe', '--app-port', String(await unusedPort())];
    args.push('--host', '127.0.0.1', '--inbound-port', '0', '--outbound-port', '0', '--admin-port', '0');
    args.push('--collector', `127.0.0.1:${collectorPort}`, '--metrics-interval', '200ms', '--control-plane', cp.url, '--state-dir', path.join(root, 'state'));
    const proxy = spawn(process.execPath, args, { env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: root }, stdio: ['ignore', 'pipe', 'pipe'] });
    child = proxy;
    let output = '';
    proxy.stderr?.on('data', (chunk: Buffer) => (output = (output + chunk.toString('utf8')).slice(-20_000)));
    let ready = false;
    createInterface({ input: proxy.stdout! }).on('line', (line) => {
      output += `${line}\n`;
      if (line.startsWith('tracemesh proxy ready:')) ready = true;
    });
    const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proxy.once('exit', (code, signal) => resolve({ code, signal })));
    const context = (): string => `exit ${String(proxy.exitCode)}; proxies: ${JSON.stringify(cp.controlPlane.distributor.status())}; output:\n${output}`;

    await until(() => ready, 'the ready line', context);
    await until(() => cp.controlPlane.distributor.status().some((s) => s.state === 'acked'), 'the proxy to ACK the snapshot', context);
    // The metrics bridge has exported: the OTLP session is open (and idle between exports).
    await until(() => collectorCalls > 0, 'an export to the collector', context);

    const signalledAt = Date.now();
    proxy.kill('SIGTERM');
    const deadline = new Promise<'deadline'>((resolve) => setTimeout(() => resolve('deadline'), STOP_DEADLINE_MS).unref());
    const outcome = await Promise.race([exited, deadline]);
    expect(outcome, `no exit within ${STOP_DEADLINE_MS} ms of SIGTERM; ${context()}`).not.toBe('deadline');
    expect(outcome, context()).toEqual({ code: 0, signal: null });
    expect(Date.now() - signalledAt).toBeLessThan(STOP_DEADLINE_MS);
    // It deregistered on the way out.
    await until(() => cp.controlPlane.registry.list().length === 0, 'the registration to be removed', context);
  }, 60_000);
});
