import http from 'node:http';
import http2 from 'node:http2';
import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingTelemetry } from '../test/support/recording-telemetry.js';
import { upstreamConnector, type UpstreamConnector, type UpstreamTarget } from './capture/transparent-connect.js';
import { appCluster } from './clusters/static-registry.js';
import { createInbound, type AppTarget, type TrafficSide } from './inbound.js';
import { DEFAULT_LIMITS } from './limits.js';
import { startListener } from './listeners/listener.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An HTTP app on `host`:`port` answering `<name> saw <peer address>`. */
async function app(name: string, host: string, port: number): Promise<number> {
  const server = http.createServer((req, res) => res.end(`${name} saw ${req.socket.remoteAddress}`));
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  closers.push(() => new Promise<void>((resolve) => {
    server.closeAllConnections();
    server.close(() => resolve());
  }));
  return (server.address() as net.AddressInfo).port;
}

/** An inbound listener whose every connection was "captured" on its way to `target` (as TPROXY reports it). */
async function capturedListener(inbound: TrafficSide, target: AppTarget): Promise<number> {
  const listener = await startListener({
    name: 'inbound',
    host: '127.0.0.1',
    port: 0,
    detectTimeoutMs: 50,
    maxConnections: 10,
    destinationOf: () => target,
    onConnection: (conn) => inbound.handle(conn),
  });
  closers.push(() => listener.close());
  return listener.port;
}

async function get(port: number): Promise<{ status: number; body: string }> {
  const res = await fetch(`http://127.0.0.1:${port}/`, { signal: AbortSignal.timeout(5_000) });
  return { status: res.status, body: await res.text() };
}

function inboundFor(maxAppTargets?: number, connector?: UpstreamConnector) {
  const telemetry = recordingTelemetry({ service: 'web', namespace: 'default', version: 'v1' });
  const inbound = createInbound({
    ...(connector === undefined ? {} : { connector }),
    telemetry,
    limits: { ...DEFAULT_LIMITS, detectTimeoutMs: 50 },
    appPort: 0,
    // TPROXY's rule: the app is the captured destination itself.
    appTargetOf: (conn) => conn.target,
    appCluster: (host, port) => appCluster('web', 'default', 'v1', port, host),
    ...(maxAppTargets === undefined ? {} : { maxAppTargets }),
  });
  closers.push(() => inbound.close());
  return { inbound, telemetry };
}

describe('inbound app targets', () => {
  it('keys the app by address and port: two addresses at one port reach two apps, each with its own pool', async () => {
    const port = await app('first', '127.0.0.1', 0);
    await app('second', '127.0.0.2', port);
    const { inbound, telemetry } = inboundFor();
    const toFirst = await capturedListener(inbound, { host: '127.0.0.1', port });
    const toSecond = await capturedListener(inbound, { host: '127.0.0.2', port });
    expect(await get(toSecond)).toEqual({ status: 200, body: 'second saw 127.0.0.1' });
    expect(await get(toFirst)).toEqual({ status: 200, body: 'first saw 127.0.0.1' });
    expect(await get(toSecond)).toEqual({ status: 200, body: 'second saw 127.0.0.1' });
    const upstreams = telemetry.recordedSpans.map((s) => s.attributes['tracemesh.upstream.address']);
    expect(upstreams).toEqual([`127.0.0.2:${port}`, `127.0.0.1:${port}`, `127.0.0.2:${port}`]);
    expect(Object.keys(inbound.poolStats() as Record<string, unknown>).sort()).toEqual([`127.0.0.1:${port}`, `127.0.0.2:${port}`]);
  });

  it('refuses a target past maxAppTargets with an NR span and keeps serving the ones it has', async () => {
    const port = await app('first', '127.0.0.1', 0);
    await app('second', '127.0.0.2', port);
    const { inbound, telemetry } = inboundFor(1);
    const toFirst = await capturedListener(inbound, { host: '127.0.0.1', port });
    const toSecond = await capturedListener(inbound, { host: '127.0.0.2', port });
    expect(await get(toFirst)).toEqual({ status: 200, body: 'first saw 127.0.0.1' });
    await expect(get(toSecond)).rejects.toThrow();
    expect(await get(toFirst)).toEqual({ status: 200, body: 'first saw 127.0.0.1' });
    const flags = telemetry.recordedSpans.map((s) => s.attributes['tracemesh.response_flags']);
    expect(flags.sort()).toEqual(['-', '-', 'NR']);
  });

  it('a connection with no app target (uncaptured, no --app-port) is refused with NR', async () => {
    const telemetry = recordingTelemetry();
    const inbound = createInbound({
      telemetry,
      limits: { ...DEFAULT_LIMITS, detectTimeoutMs: 50 },
      appPort: 0,
      appTargetOf: () => undefined,
      appCluster: (host, port) => appCluster('web', 'default', 'v1', port, host),
    });
    closers.push(() => inbound.close());
    const listener = await startListener({ name: 'inbound', host: '127.0.0.1', port: 0, detectTimeoutMs: 50, maxConnections: 10, onConnection: (conn) => inbound.handle(conn) });
    closers.push(() => listener.close());
    await expect(get(listener.port)).rejects.toThrow();
    expect(telemetry.recordedSpans.map((s) => s.attributes['tracemesh.response_flags'])).toEqual(['NR']);
  });
});

/**
 * A connector that keeps client addresses as TPROXY's does (sourceKey = the client), recording
 * each connection asked of it, and connecting from the proxy's own address (no CAP_NET_ADMIN
 * here: the netns system tests prove the real source address).
 */
function recordingConnector(): { connector: UpstreamConnector; calls: string[] } {
  const plain = upstreamConnector('redirect');
  const calls: string[] = [];
  const connector: UpstreamConnector = {
    keepsClientAddress: true,
    sourceKey: (_target: UpstreamTarget, client: string | undefined) => client ?? '',
    connect(target, client, options) {
      calls.push(`${String(client)} -> ${target.host}:${target.port}`);
      return plain.connect(target, client, options);
    },
  };
  return { connector, calls };
}

describe('inbound connections to the app through the connector', () => {
  it('HTTP/1, h2c and TCP all connect through it, for the downstream client, to the captured destination', async () => {
    const httpPort = await app('http1', '127.0.0.2', 0);
    const h2 = http2.createServer((_req, res) => res.end('h2 ok'));
    await new Promise<void>((resolve) => h2.listen(0, '127.0.0.2', resolve));
    const h2Sessions = new Set<http2.ServerHttp2Session>();
    h2.on('session', (session) => h2Sessions.add(session));
    closers.push(() => new Promise<void>((resolve) => {
      for (const session of h2Sessions) session.destroy();
      h2.close(() => resolve());
    }));
    const h2Port = (h2.address() as net.AddressInfo).port;
    const tcpServer = net.createServer((socket) => {
      socket.resume();
      socket.end('tcp ok');
    });
    await new Promise<void>((resolve) => tcpServer.listen(0, '127.0.0.2', resolve));
    closers.push(() => new Promise<void>((resolve) => tcpServer.close(() => resolve())));
    const tcpPort = (tcpServer.address() as net.AddressInfo).port;

    const { connector, calls } = recordingConnector();
    const { inbound } = inboundFor(undefined, connector);

    expect(await get(await capturedListener(inbound, { host: '127.0.0.2', port: httpPort }))).toEqual({ status: 200, body: 'http1 saw 127.0.0.1' });

    const h2Listener = await capturedListener(inbound, { host: '127.0.0.2', port: h2Port });
    const client = http2.connect(`http://127.0.0.1:${h2Listener}`);
    closers.push(() => void client.destroy());
    const h2Body = await new Promise<string>((resolve, reject) => {
      const stream = client.request({ ':path': '/' });
      let text = '';
      stream.setEncoding('utf8');
      stream.on('data', (chunk: string) => (text += chunk));
      stream.on('end', () => resolve(text));
      stream.on('error', reject);
      stream.end();
    });
    expect(h2Body).toBe('h2 ok');

    const tcpListener = await capturedListener(inbound, { host: '127.0.0.2', port: tcpPort });
    const socket = net.connect(tcpListener, '127.0.0.1');
    socket.write('hello');
    const tcpReply = await new Promise<string>((resolve) => {
      let text = '';
      socket.on('data', (chunk) => (text += chunk.toString()));
      socket.on('close', () => resolve(text));
    });
    expect(tcpReply).toBe('tcp ok');

    expect(calls).toEqual([`127.0.0.1 -> 127.0.0.2:${httpPort}`, `127.0.0.1 -> 127.0.0.2:${h2Port}`, `127.0.0.1 -> 127.0.0.2:${tcpPort}`]);
  });
});
