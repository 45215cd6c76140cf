import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingTelemetry } from '../../test/support/recording-telemetry.js';
import { appCluster, createStaticRegistry } from '../clusters/static-registry.js';
import type { Cluster } from '../clusters/types.js';
import { DEFAULT_LIMITS } from '../limits.js';
import { startListener, type Listener } from '../listeners/listener.js';
import { createDestination, DEFAULT_TRAFFIC_POLICY } from '../pipeline/destination.js';
import { TrafficState } from '../pipeline/traffic-state.js';
import { upstreamConnector, type UpstreamConnector } from '../capture/transparent-connect.js';
import type { Destination } from '../pipeline/types.js';
import { forwardTcp } from './forward.js';

const closers: Array<() => Promise<void> | void> = [];
afterEach(async () => {
  for (const close of closers.splice(0).reverse()) await close();
});

/** An echo server that answers "ECHO <line>" and reports half-closes; or speaks first when `banner` is set. */
async function upstream(banner?: string): Promise<number> {
  const sockets = new Set<net.Socket>();
  const server = net.createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('error', () => {});
    if (banner !== undefined) socket.write(banner);
    socket.on('data', (chunk) => socket.write(`ECHO ${chunk.toString()}`));
    socket.on('end', () => socket.end('BYE\n'));
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  closers.push(() => new Promise<void>((resolve) => {
    for (const s of sockets) s.destroy();
    server.close(() => resolve());
  }));
  return (server.address() as net.AddressInfo).port;
}

async function proxyTo(cluster: Cluster | Destination | undefined, direction: 'inbound' | 'outbound' = 'inbound', detectTimeoutMs = 50, connector?: UpstreamConnector) {
  const telemetry = recordingTelemetry({ service: 'web', namespace: 'default', version: 'v1' });
  const limits = { ...DEFAULT_LIMITS, detectTimeoutMs, connectTimeoutMs: 1_000 };
  const listener: Listener = await startListener({
    name: direction,
    host: '127.0.0.1',
    port: 0,
    detectTimeoutMs,
    maxConnections: 10,
    onConnection: (conn) => forwardTcp(conn, cluster, { direction, telemetry, limits, connector }),
  });
  closers.push(() => listener.close());
  return { port: listener.port, telemetry };
}

function collect(socket: net.Socket): Promise<string> {
  return new Promise((resolve) => {
    let text = '';
    socket.on('data', (chunk) => (text += chunk.toString()));
    socket.on('error', () => {});
    socket.on('close', () => resolve(text));
  });
}

async function waitFor(predicate: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5_000;
  while (!predicate()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe('TCP forwarding', () => {
  it('pipes both ways, forwards a half-close, and reports bytes in one span', async () => {
    const appPort = await upstream();
    const { port, telemetry } = await proxyTo(appCluster('inventory', 'default', 'v2', appPort));
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const received = collect(client);
    client.write('STOCK 42\n');
    await waitFor(() => telemetry.tcpOpened.length === 1, 'the connection to open');
    client.end();
    expect(await received).toBe('ECHO STOCK 42\nBYE\n');
    await waitFor(() => telemetry.recordedSpans.length === 1, 'the span');
    const span = telemetry.recordedSpans[0]!;
    expect(span.kind).toBe('server');
    expect(span.status).toBe('unset');
    expect(span.name).toBe('tcp inventory');
    expect(span.attributes['tracemesh.tcp.bytes_received']).toBe(9);
    expect(span.attributes['tracemesh.tcp.bytes_sent']).toBe('ECHO STOCK 42\nBYE\n'.length);
    expect(span.attributes['tracemesh.destination.version']).toBe('v2');
    expect(span.attributes['network.peer.port']).toBe(appPort);
    expect(span.endTimeMs).toBeGreaterThan(span.startTimeMs);
    expect(telemetry.tcpClosed[0]).toMatchObject({ bytesReceived: 9, bytesSent: 18 });
  });

  it('does not hang a server-first protocol: the banner arrives though the client says nothing', async () => {
    const appPort = await upstream('220 smtp ready\n');
    const { port } = await proxyTo(appCluster('mail', 'default', 'v1', appPort));
    const client = net.connect(port, '127.0.0.1');
    const banner = await new Promise<string>((resolve) => client.once('data', (chunk) => resolve(chunk.toString())));
    expect(banner).toBe('220 smtp ready\n');
    client.destroy();
  });

  it('closes the client and flags UF when the upstream refuses', async () => {
    const closedPort = await upstream();
    await closers.pop()!(); // the port is now closed
    const { port, telemetry } = await proxyTo(appCluster('gone', 'default', 'v1', closedPort));
    const client = net.connect(port, '127.0.0.1');
    client.write('hello');
    expect(await collect(client)).toBe('');
    await waitFor(() => telemetry.recordedSpans.length === 1, 'the span');
    expect(telemetry.recordedSpans[0]!.attributes['tracemesh.response_flags']).toBe('UF');
    expect(telemetry.recordedSpans[0]!.status).toBe('error');
    expect(telemetry.recordedSpans[0]!.statusMessage).toContain('ECONNREFUSED');
  });

  it('flags NR when there is no destination and UH when the service has no endpoint', async () => {
    const nr = await proxyTo(undefined, 'outbound');
    const c1 = net.connect(nr.port, '127.0.0.1');
    c1.write('raw bytes');
    await collect(c1);
    await waitFor(() => nr.telemetry.recordedSpans.length === 1, 'the NR span');
    expect(nr.telemetry.recordedSpans[0]!.attributes['tracemesh.response_flags']).toBe('NR');

    const registry = createStaticRegistry([{ name: 'empty', namespace: 'default', ports: [{ name: 'tcp', port: 7000, protocol: 'tcp' }], vips: [], endpoints: [] }], 'v');
    const uh = await proxyTo(registry.resolve('empty', 7000), 'outbound');
    const c2 = net.connect(uh.port, '127.0.0.1');
    c2.write('raw bytes');
    await collect(c2);
    await waitFor(() => uh.telemetry.recordedSpans.length === 1, 'the UH span');
    const span = uh.telemetry.recordedSpans[0]!;
    expect(span.attributes['tracemesh.response_flags']).toBe('UH');
    expect(span.kind).toBe('client');
    expect(span.attributes['peer.service']).toBe('empty');
  });

  it('ends the client when the upstream dies mid-stream and says so in the span', async () => {
    const sockets: net.Socket[] = [];
    const server = net.createServer((socket) => {
      sockets.push(socket);
      socket.write('partial');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port, telemetry } = await proxyTo(appCluster('flaky', 'default', 'v1', (server.address() as net.AddressInfo).port));
    const client = net.connect(port, '127.0.0.1');
    const received = collect(client);
    client.write('x');
    await waitFor(() => sockets.length === 1, 'the upstream connection');
    sockets[0]!.resetAndDestroy();
    expect(await received).toBe('partial');
    await waitFor(() => telemetry.recordedSpans.length === 1, 'the span');
    expect(telemetry.recordedSpans[0]!.attributes['tracemesh.response_flags']).toBe('UC');
  });
});

describe('TCP forwarding through a connector', () => {
  /** The plain connector, recording what forwardTcp asked of it. */
  function recording(): { connector: UpstreamConnector; calls: Array<{ host: string; port: number; client: string | undefined; allowHalfOpen: boolean | undefined }> } {
    const plain = upstreamConnector('redirect');
    const calls: Array<{ host: string; port: number; client: string | undefined; allowHalfOpen: boolean | undefined }> = [];
    const connector: UpstreamConnector = {
      keepsClientAddress: true,
      sourceKey: (_target, client) => client ?? '',
      connect(target, client, options) {
        calls.push({ host: target.host, port: target.port, client, allowHalfOpen: options?.allowHalfOpen });
        return plain.connect(target, client, options);
      },
    };
    return { connector, calls };
  }

  it('connects through the connector to the endpoint, for the downstream peer\'s address, half-open', async () => {
    const appPort = await upstream();
    const { connector, calls } = recording();
    const { port } = await proxyTo(appCluster('inventory', 'default', 'v1', appPort), 'inbound', 50, connector);
    const client = net.connect({ port, host: '127.0.0.1', allowHalfOpen: true });
    const received = collect(client);
    client.write('STOCK 7\n');
    await waitFor(() => calls.length === 1, 'the connector to be asked');
    client.end();
    expect(await received).toBe('ECHO STOCK 7\nBYE\n');
    expect(calls).toEqual([{ host: '127.0.0.1', port: appPort, client: '127.0.0.1', allowHalfOpen: true }]);
  });

  it('a connector that throws (arguments it cannot use) fails the connection with UF, closes the client and keeps serving', async () => {
    const appPort = await upstream();
    let calls = 0;
    const throwing: UpstreamConnector = {
      keepsClientAddress: true,
      sourceKey: () => '',
      connect() {
        calls++;
        throw new Error('connectFrom: host 127.0.0.1 is a loopback address');
      },
    };
    const { port, telemetry } = await proxyTo(appCluster('inventory', 'default', 'v1', appPort), 'inbound', 50, throwing);
    for (let i = 1; i <= 2; i++) {
      const client = net.connect(port, '127.0.0.1');
      client.write('hello');
      expect(await collect(client)).toBe('');
      await waitFor(() => telemetry.recordedSpans.length === i, 'the span');
      const span = telemetry.recordedSpans[i - 1]!;
      expect(span.attributes['tracemesh.response_flags']).toBe('UF');
      expect(span.statusMessage).toContain('is a loopback address');
    }
    expect(calls).toBe(2);
    expect(telemetry.tcpClosed).toHaveLength(2);
  });

  it("the TPROXY connector with a loopback client connects from the proxy's own address (nothing to preserve)", async () => {
    const peers: string[] = [];
    const server = net.createServer((socket) => {
      peers.push(String(socket.remoteAddress));
      socket.resume();
      socket.end('hi\n');
    });
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    closers.push(() => new Promise<void>((resolve) => server.close(() => resolve())));
    const { port, telemetry } = await proxyTo(appCluster('app', 'default', 'v1', (server.address() as net.AddressInfo).port), 'inbound', 50, upstreamConnector('tproxy'));
    const client = net.connect(port, '127.0.0.1');
    client.write('x');
    expect(await collect(client)).toBe('hi\n');
    await waitFor(() => telemetry.recordedSpans.length === 1, 'the span');
    expect(telemetry.recordedSpans[0]!.attributes['tracemesh.response_flags']).toBe('-');
    expect(peers).toEqual(['127.0.0.1']);
  });
});

describe('TCP forwarding through a Destination', () => {
  function tcpService(ports: number[]): Cluster {
    const endpoints = ports.map((port) => ({ address: '127.0.0.1', port, labels: {} }));
    return createStaticRegistry([{ name: 'db', namespace: 'default', ports: [{ name: 'tcp', port: 5432, protocol: 'tcp' }], vips: [], endpoints }], 'v').clusters[0]!;
  }

  it('refuses a connection over maxConnections with UO and frees the slot when a connection closes', async () => {
    const appPort = await upstream();
    const policy = { ...DEFAULT_TRAFFIC_POLICY, connectionPool: { ...DEFAULT_TRAFFIC_POLICY.connectionPool, maxConnections: 1 } };
    const destination = createDestination(tcpService([appPort]), { subset: '', labels: {}, policy }, { state: new TrafficState(), random: Math.random, now: Date.now, onEjection: undefined, healthChecks: false });
    closers.push(() => destination.close());
    const { port, telemetry } = await proxyTo(destination, 'outbound');
    const first = net.connect(port, '127.0.0.1');
    const firstReceived = collect(first);
    first.write('one\n');
    await waitFor(() => destination.status().connections === 1, 'the first connection to hold its slot');
    const second = net.connect(port, '127.0.0.1');
    second.write('two\n');
    expect(await collect(second)).toBe('');
    await waitFor(() => telemetry.recordedSpans.length === 1, 'the UO span');
    expect(telemetry.recordedSpans[0]!.attributes['tracemesh.response_flags']).toBe('UO');
    first.end();
    expect(await firstReceived).toBe('ECHO one\nBYE\n');
    await waitFor(() => destination.status().connections === 0, 'the slot to be released');
    const third = net.connect(port, '127.0.0.1');
    const thirdReceived = collect(third);
    third.end('three\n');
    expect(await thirdReceived).toBe('ECHO three\nBYE\n');
  });

  it('records connect failures for outlier detection: the refusing endpoint is ejected and connections go to the other', async () => {
    const goodPort = await upstream();
    const deadPort = await upstream();
    await closers.pop()!();
    const policy = { ...DEFAULT_TRAFFIC_POLICY, outlierDetection: { consecutive5xx: 0, consecutiveGatewayErrors: 2, intervalMs: 60_000, baseEjectionTimeMs: 60_000, maxEjectionPercent: 50 } };
    const destination = createDestination(tcpService([deadPort, goodPort]), { subset: '', labels: {}, policy }, { state: new TrafficState(), random: Math.random, now: Date.now, onEjection: undefined, healthChecks: false });
    closers.push(() => destination.close());
    const { port, telemetry } = await proxyTo(destination, 'outbound');
    const flags: string[] = [];
    for (let i = 0; i < 6; i++) {
      const client = net.connect(port, '127.0.0.1');
      const received = collect(client);
      client.end('hi\n');
      await received;
      await waitFor(() => telemetry.recordedSpans.length === i + 1, 'the span');
      flags.push(String(telemetry.recordedSpans[i]!.attributes['tracemesh.response_flags']));
    }
    // Round robin: dead, good, dead (ejected now), then only good.
    expect(flags).toEqual(['UF', '-', 'UF', '-', '-', '-']);
    expect(destination.status().endpoints[0]!.ejectedUntilMs).toBeGreaterThan(Date.now());
    // The connection whose failure ejected the endpoint says so on its span, and only that one.
    const ejectedOn = telemetry.recordedSpans.map((span) => span.attributes['tracemesh.outlier.ejected'] === true);
    expect(ejectedOn).toEqual([false, false, true, false, false, false]);
    expect(telemetry.recordedSpans[2]!.attributes['tracemesh.outlier.reason']).toBe('consecutive-gateway');
    expect(telemetry.recordedSpans.some((span) => span.attributes['tracemesh.lb.panic'] !== undefined)).toBe(false);
  });
});
