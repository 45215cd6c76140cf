import net from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { recordingTelemetry } from '../../test/support/recording-telemetry.js';
import { appCluster, createStaticRegistry } from '../clusters/static-registry.js';
import type { Cluster } from '../clusters/types.js';
import { DEFAULT_LIMITS } from '../limits.js';
import { startListener, type Listener } from '../listeners/listener.js';
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

async function proxyTo(cluster: Cluster | undefined, direction: 'inbound' | 'outbound' = 'inbound', detectTimeoutMs = 50) {
  const telemetry = recordingTelemetry({ service: 'web', namespace: 'default', version: 'v1' });
  const limits = { ...DEFAULT_LIMITS, detectTimeoutMs, connectTimeoutMs: 1_000 };
  const listener: Listener = await startListener({
    name: direction,
    host: '127.0.0.1',
    port: 0,
    detectTimeoutMs,
    maxConnections: 10,
    onConnection: (conn) => forwardTcp(conn, cluster, { direction, telemetry, limits }),
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
