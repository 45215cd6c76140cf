import { mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { captureIo, runCaptured } from '../../../test/support/api-fixtures.js';
import { runCli } from '../run-cli.js';
import { commands } from './index.js';
import { collectorUrlFlag } from './proxy.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-proxy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

async function pollUntil<T>(probe: () => T | undefined, what: string, context: () => string, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}; stderr: ${context()}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('tracemesh proxy flags', () => {
  const required = ['--service', 'web', '--app-port', '8080'];
  const bad: Array<[string[], string]> = [
    [['--app-port', '8080'], '--service is required'],
    [['--service', 'web'], '--app-port is required in explicit mode'],
    [[...required, '--capture', 'tproxy'], '--capture applies to --mode transparent only'],
    [[...required, '--outbound-policy', 'registry-only'], '--outbound-policy applies to --mode transparent only'],
    [['--service', 'web', '--mode', 'transparent', '--capture', 'nat'], "--capture: 'nat' is not redirect or tproxy"],
    [['--service', 'web', '--mode', 'transparent', '--outbound-policy', 'deny'], "--outbound-policy: 'deny' is not allow-any or registry-only"],
    [[...required, '--tproxy-mark', '0x539'], '--tproxy-mark applies to --mode transparent --capture tproxy only'],
    [['--service', 'web', '--mode', 'transparent', '--tproxy-mark', '0x539'], '--tproxy-mark applies to --mode transparent --capture tproxy only'],
    [['--service', 'web', '--mode', 'transparent', '--capture', 'tproxy', '--tproxy-mark', '0'], "--tproxy-mark: '0' is not a mark (1-0xffffffff)"],
    [['--service', 'web', '--mode', 'transparent', '--capture', 'tproxy', '--tproxy-mark', '0x100000000'], "--tproxy-mark: '0x100000000' is not a mark (1-0xffffffff)"],
    [['--service', 'web', '--mode', 'transparent', '--capture', 'tproxy', '--tproxy-mark', 'fwmark'], "--tproxy-mark: 'fwmark' is not a mark (1-0xffffffff)"],
    [['--service', 'web', '--mode', 'transparent', '--capture', 'tproxy', '--tproxy-mark', '1.5'], "--tproxy-mark: '1.5' is not a mark (1-0xffffffff)"],
    [['--service', 'Web_1', '--app-port', '8080'], "--service: 'Web_1' is not a name"],
    [[...required, '--namespace', 'a.b'], "--namespace: 'a.b' is not a name"],
    [['--service', 'web', '--app-port', '0'], "--app-port: '0' is not a port the app can listen on"],
    [['--service', 'web', '--app-port', 'x'], "--app-port: 'x' is not a port (0-65535)"],
    [[...required, '--inbound-port', '99999'], "--inbound-port: '99999' is not a port (0-65535)"],
    [[...required, '--mode', 'magic'], "--mode: 'magic' is not explicit or transparent"],
    [[...required, '--collector', 'ftp://x:1'], "--collector: 'ftp://x:1' is not HOST:PORT"],
    [[...required, '--collector', 'collector'], "--collector: 'collector' is not HOST:PORT"],
    [[...required, '--request-timeout', 'soon'], "--request-timeout: 'soon' is not a duration"],
    [[...required, '--max-connections', '0'], "--max-connections: '0' is not a whole number from 1 to 1000000"],
    [[...required, '--span-exporter', 'zipkin'], "--span-exporter: 'zipkin' is not otel or lean"],
    [[...required, '--bogus'], 'unknown flag --bogus'],
  ];
  for (const [args, message] of bad) {
    it(`proxy ${args.join(' ')}: one line naming it, exit 2`, async () => {
      const res = await runCaptured(commands, ['proxy', ...args]);
      expect(res.stderr).toContain(message);
      expect(res.code).toBe(2);
      expect(res.stderr.split('\n')).toHaveLength(2);
    });
  }

  it('reports every problem of a bad --config file, with file and field, and exits 1', async () => {
    const file = path.join(dir, 'bad.yaml');
    writeFileSync(
      file,
      'apiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: { name: reviews }\nspec:\n  ports: [{ name: http, port: 70000, protocol: http }]\n---\napiVersion: tracemesh.dev/v1\nkind: Service\nmetadata: { name: ratings }\nspec:\n  ports: [{ name: grpc, port: 50051, protocol: carrier-pigeon }]\n',
    );
    const res = await runCaptured(commands, ['proxy', ...required, '--config', file, '--collector', 'none']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('bad.yaml');
    expect(res.stderr).toContain('spec.ports[0].port');
    expect(res.stderr).toContain('spec.ports[0].protocol');
  });

  it('--mode transparent starts without --app-port, says how it captures, and shows it in /config_dump', async () => {
    const captured = captureIo();
    let stop: (signal: string) => void = () => {};
    const io = { ...captured.io, stopSignal: new Promise<string>((resolve) => (stop = resolve)) };
    const stateDir = path.join(dir, 'state', 'web');
    const argv = ['proxy', '--service', 'web', '--mode', 'transparent', '--outbound-policy', 'registry-only', '--state-dir', stateDir];
    const running = runCli(commands, [...argv, '--collector', 'none', '--host', '127.0.0.1', '--inbound-port', '0', '--outbound-port', '0', '--admin-port', '0'], io);
    const ready = await pollUntil(() => captured.stdout().match(/admin :(\d+)/)?.[1], 'the ready line', () => captured.stderr());
    expect(captured.stdout()).toContain('outbound :');
    expect(captured.stdout()).toContain('(transparent, registry-only)');
    const dump = (await (await fetch(`http://127.0.0.1:${ready}/config_dump`)).json()) as Record<string, unknown>;
    expect(dump).toMatchObject({ mode: 'transparent', inboundCapture: 'redirect', outboundPolicy: 'registry-only', stateDir });
    expect(statSync(stateDir).isDirectory()).toBe(true);
    stop('SIGTERM');
    expect(await running).toBe(0);
  });

  it('--capture tproxy --tproxy-mark: the mark in the ready line and /config_dump (unprivileged: the EPERM of IP_TRANSPARENT, named)', async () => {
    const captured = captureIo();
    let stop: (signal: string) => void = () => {};
    const io = { ...captured.io, stopSignal: new Promise<string>((resolve) => (stop = resolve)) };
    const argv = ['proxy', '--service', 'web', '--mode', 'transparent', '--capture', 'tproxy', '--tproxy-mark', '1536', '--state-dir', path.join(dir, 'state', 'tproxy')];
    const running = runCli(commands, [...argv, '--collector', 'none', '--host', '127.0.0.1', '--inbound-port', '0', '--outbound-port', '0', '--admin-port', '0'], io);
    if (process.getuid?.() !== 0) {
      expect(await running).toBe(1);
      expect(captured.stderr()).toContain('Operation not permitted (EPERM)');
      return;
    }
    const ready = await pollUntil(() => captured.stdout().match(/admin :(\d+)/)?.[1], 'the ready line', () => captured.stderr());
    expect(captured.stdout()).toContain("from the client's address (tproxy, mark 0x600)");
    const dump = (await (await fetch(`http://127.0.0.1:${ready}/config_dump`)).json()) as Record<string, unknown>;
    expect(dump).toMatchObject({ mode: 'transparent', inboundCapture: 'tproxy', tproxyMark: '0x600' });
    stop('SIGTERM');
    expect(await running).toBe(0);
  });

  it('a --state-dir it cannot write: exit 1 naming it', async () => {
    const file = path.join(dir, 'not-a-dir');
    writeFileSync(file, 'x');
    const res = await runCaptured(commands, ['proxy', ...required, '--state-dir', path.join(file, 'state'), '--collector', 'none', '--inbound-port', '0', '--outbound-port', '0', '--admin-port', '0']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`--state-dir ${path.join(file, 'state')} is not a directory this proxy can write`);
  });

  it('reads --collector as HOST:PORT, a URL, or none', () => {
    expect(collectorUrlFlag('127.0.0.1:4317')).toBe('http://127.0.0.1:4317');
    expect(collectorUrlFlag('http://collector:4317')).toBe('http://collector:4317');
    expect(collectorUrlFlag('none')).toBeUndefined();
  });
});
