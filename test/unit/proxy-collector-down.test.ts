/**
 * Telemetry never blocks the traffic it observes: with the collector down the
 * sidecar answers every request, and the spans it could not deliver are
 * counted in its own metrics.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import net from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Proxy } from '../../proxy/proxy.js';
import { eventually } from '../support/collector-harness.js';
import { testSidecar, unusedPort } from '../support/sidecar.js';

let app: http.Server;
let proxy: Proxy;
const dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-collector-down-'));
const accessLog = path.join(dir, 'access.log');


beforeAll(async () => {
  app = http.createServer((_req, res) => res.end('ok'));
  await new Promise<void>((resolve) => app.listen(0, '127.0.0.1', resolve));
  proxy = testSidecar('lonely', (app.address() as net.AddressInfo).port, {
    collectorUrl: `http://127.0.0.1:${await unusedPort()}`,
    spanSink: 'otel',
    accessLog,
  });
  await proxy.start();
});

afterAll(async () => {
  await proxy?.stop();
  await new Promise<void>((resolve) => app?.close(() => resolve()));
  rmSync(dir, { recursive: true, force: true });
});

describe('collector down', () => {
  it('serves every request and counts every undelivered span', async () => {
    const agent = new http.Agent({ keepAlive: true, maxSockets: 8 });
    const statuses = await Promise.all(
      Array.from({ length: 300 }, () =>
        new Promise<number>((resolve, reject) => {
          http
            .get({ host: '127.0.0.1', port: proxy.inboundPort, path: '/', agent }, (res) => {
              res.resume();
              res.on('end', () => resolve(res.statusCode ?? 0));
            })
            .on('error', reject);
        }),
      ),
    );
    agent.destroy();
    expect(statuses.filter((s) => s === 200)).toHaveLength(300);
    const dropped = await eventually(async () => {
      const text = await (await fetch(`http://127.0.0.1:${proxy.adminPort}/stats/prometheus`)).text();
      const value = Number(/^tracemesh_spans_dropped_total (\d+)/m.exec(text)?.[1] ?? '0');
      return value >= 300 ? value : undefined;
    }, 'all 300 spans counted as dropped');
    expect(dropped).toBe(300);
  });

  it('writes one JSON access-log line per request (flushed on stop)', async () => {
    await proxy.stop();
    const lines = readFileSync(accessLog, 'utf8').trim().split('\n').map((line) => JSON.parse(line) as Record<string, unknown>);
    expect(lines).toHaveLength(300);
    expect(lines[0]).toMatchObject({ direction: 'inbound', protocol: 'http1', method: 'GET', path: '/', response_code: 200, response_flags: '-', destination_service: 'lonely' });
    expect(lines[0]!['trace_id']).toMatch(/^[0-9a-f]{32}$/);
  });
});
