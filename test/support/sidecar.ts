/** Sidecar proxies for tests: loopback, ephemeral ports, and options overridable one by one. */
import net from 'node:net';
import { DEFAULT_LIMITS } from '../../proxy/limits.js';
import { Proxy, type ProxyOptions } from '../../proxy/proxy.js';
import { defaultStateDir } from '../../proxy/state-dir.js';

/** A Proxy for `service` fronting 127.0.0.1:appPort: no collector, no access log, unless overridden. */
export function testSidecar(service: string, appPort: number, overrides: Partial<ProxyOptions> = {}): Proxy {
  return new Proxy({
    identity: { service, namespace: 'default', version: 'v1' },
    appPort,
    mode: 'explicit',
    inboundCapture: 'redirect',
    outboundPolicy: 'allow-any',
    host: '127.0.0.1',
    stateDir: defaultStateDir(service, 'default'),
    controlPlaneUrl: undefined,
    advertise: undefined,
    inboundPort: 0,
    outboundPort: 0,
    adminPort: 0,
    collectorUrl: undefined,
    spanSink: 'lean',
    metricsExportIntervalMs: 60_000,
    accessLog: undefined,
    services: [],
    limits: DEFAULT_LIMITS,
    maxConnections: 1_000,
    ...overrides,
  });
}

/** A port nothing listens on right now (bound, then released). */
export async function unusedPort(): Promise<number> {
  const server = net.createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const port = (server.address() as net.AddressInfo).port;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
