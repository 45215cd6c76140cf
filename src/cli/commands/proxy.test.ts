import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { runCaptured } from '../../../test/support/api-fixtures.js';
import { commands } from './index.js';
import { collectorUrlFlag } from './proxy.js';

const dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-proxy-cli-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('tracemesh proxy flags', () => {
  const required = ['--service', 'web', '--app-port', '8080'];
  const bad: Array<[string[], string]> = [
    [['--app-port', '8080'], '--service is required'],
    [['--service', 'web'], '--app-port is required'],
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

  it('refuses --mode transparent with the reason', async () => {
    const res = await runCaptured(commands, ['proxy', ...required, '--mode', 'transparent', '--collector', 'none', '--inbound-port', '0', '--outbound-port', '0', '--admin-port', '0']);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('--mode transparent needs');
  });

  it('reads --collector as HOST:PORT, a URL, or none', () => {
    expect(collectorUrlFlag('127.0.0.1:4317')).toBe('http://127.0.0.1:4317');
    expect(collectorUrlFlag('http://collector:4317')).toBe('http://collector:4317');
    expect(collectorUrlFlag('none')).toBeUndefined();
  });
});
