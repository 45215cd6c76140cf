import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { parseAllDocuments } from 'yaml';
import { validateMeshConfigText } from '../../src/config/load.js';
import { SERVER_HOST_HEADER, haproxyConfig, meshConfig, nginxConfig } from './configs.js';
import { findExecutable } from './tools.js';

const ports = { listenPort: 18001, upstreamPort: 18002 };
const haproxy = findExecutable('haproxy');
const nginx = findExecutable('nginx');

describe('proxy configs', () => {
  let dir: string | undefined;
  afterEach(() => {
    if (dir !== undefined) rmSync(dir, { recursive: true, force: true });
    dir = undefined;
  });

  it('HAProxy: one thread, HTTP mode, server connections reused, the ports given', () => {
    const text = haproxyConfig(ports);
    expect(text).toMatch(/nbthread 1\n/);
    expect(text).toMatch(/mode http\n/);
    expect(text).toMatch(/http-reuse always\n/);
    expect(text).toContain('bind 127.0.0.1:18001');
    expect(text).toContain('server app 127.0.0.1:18002');
  });

  it('HAProxy accepts its config (haproxy -c)', () => {
    expect(haproxy, 'haproxy is not installed (apt-get install haproxy; .ci/run does)').toBeDefined();
    dir = mkdtempSync(path.join(tmpdir(), 'bench-proxy-test-'));
    const file = path.join(dir, 'haproxy.cfg');
    writeFileSync(file, haproxyConfig(ports));
    const check = spawnSync(haproxy!, ['-c', '-f', file], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });

  it('nginx: one worker, keep-alive to the upstream with the Connection header cleared, paths inside its dir', () => {
    const text = nginxConfig(ports, '/tmp/x');
    expect(text).toMatch(/worker_processes 1;/);
    expect(text).toMatch(/keepalive 64;/);
    expect(text).toMatch(/proxy_http_version 1\.1;/);
    expect(text).toContain('proxy_set_header Connection "";');
    expect(text).toContain('listen 127.0.0.1:18001');
    expect(text).toContain('server 127.0.0.1:18002;');
    expect(text).toContain('pid /tmp/x/nginx.pid;');
  });

  it('nginx accepts its config (nginx -t)', () => {
    expect(nginx, 'nginx is not installed (apt-get install nginx; .ci/run does)').toBeDefined();
    dir = mkdtempSync(path.join(tmpdir(), 'bench-proxy-test-'));
    const file = path.join(dir, 'nginx.conf');
    writeFileSync(file, nginxConfig(ports, dir));
    const check = spawnSync(nginx!, ['-t', '-p', dir, '-c', file, '-e', path.join(dir, 'error.log')], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });

  it('mesh config: two Service documents, bench-server pointing at the server sidecar inbound port', () => {
    const docs = parseAllDocuments(meshConfig(25006)).map((d) => d.toJS() as { kind: string; metadata: { name: string }; spec: { ports: unknown[]; endpoints?: unknown[] } });
    expect(docs.map((d) => [d.kind, d.metadata.name])).toEqual([
      ['Service', 'bench-server'],
      ['Service', 'bench-client'],
    ]);
    expect(docs[0]!.spec.ports).toEqual([{ name: 'http', port: 8080, protocol: 'http' }]);
    expect(docs[0]!.spec.endpoints).toEqual([{ address: '127.0.0.1', port: 25006, labels: { version: 'v1' } }]);
    expect(SERVER_HOST_HEADER).toBe('bench-server:8080');
  });

  it('mesh config: valid for the proxy\'s --config loader', () => {
    const result = validateMeshConfigText(meshConfig(25006), 'bench');
    if (!result.ok) throw new Error(JSON.stringify(result.errors));
    expect(result.config.services.map((s) => [s.name, s.namespace, s.endpoints.map((e) => e.port)])).toEqual([
      ['bench-server', 'default', [25006]],
      ['bench-client', 'default', []],
    ]);
  });
});
