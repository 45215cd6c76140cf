/**
 * The discovery client against a scripted control plane on a real socket:
 * the test writes the stream's lines itself, so it can send what a real
 * control plane never would (a delta on a base the proxy does not serve,
 * one that does not make its version, malformed messages) and read the
 * ACKs and NACKs that come back. Validation is the proxy's job elsewhere
 * (test/unit/control-plane-distribution.test.ts runs the real validator);
 * here it records what it was given.
 */
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import type { MeshConfig } from '../../src/config/types.js';
import { snapshotVersion } from '../../src/control-plane/delta.js';
import { DISCOVERY_ACK_PATH, DISCOVERY_STREAM_PATH, REGISTRY_PATH, type AckRequest } from '../../src/control-plane/protocol.js';
import { CACHE_FILE } from './config-cache.js';
import { DiscoveryClient } from './discovery-client.js';

const EMPTY: MeshConfig = { services: [], routes: [], destinationPolicies: [], rateLimits: [], authorizationPolicies: [], peerAuthentications: [], circuitPolicies: [] };

const doc = (kind: string, name: string, spec: unknown = {}): unknown => ({ apiVersion: 'tracemesh.dev/v1', kind, metadata: { name, namespace: 'default' }, spec });

interface Scripted {
  readonly url: string;
  readonly acks: AckRequest[];
  /** Writes one line to the open stream. */
  send(message: unknown): void;
  /** Resolves when `count` ACKs/NACKs have arrived in all. */
  acked(count: number): Promise<AckRequest[]>;
  close(): Promise<void>;
}

async function scriptedControlPlane(): Promise<Scripted> {
  const acks: AckRequest[] = [];
  const waiters: (() => void)[] = [];
  let stream: http.ServerResponse | undefined;
  const streamOpen = new Promise<void>((resolve) => waiters.push(() => stream !== undefined && resolve()));
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
    req.on('end', () => {
      if (req.url?.startsWith(DISCOVERY_STREAM_PATH)) {
        res.writeHead(200, { 'content-type': 'application/x-ndjson' });
        res.flushHeaders();
        stream = res;
      } else if (req.url === DISCOVERY_ACK_PATH) {
        acks.push(JSON.parse(body) as AckRequest);
        res.writeHead(204).end();
      } else if (req.url?.startsWith(REGISTRY_PATH)) {
        res.writeHead(200, { 'content-type': 'application/json' }).end('{}');
      } else {
        res.writeHead(404).end();
      }
      for (const wake of waiters) wake();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    url,
    acks,
    send: (message) => {
      if (stream === undefined) throw new Error('no stream yet');
      stream.write(`${typeof message === 'string' ? message : JSON.stringify(message)}\n`);
    },
    acked: async (count) => {
      await streamOpen;
      const deadline = Date.now() + 5_000;
      while (acks.length < count) {
        if (Date.now() > deadline) throw new Error(`only ${acks.length} of ${count} ACKs/NACKs within 5 s: ${JSON.stringify(acks)}`);
        await new Promise((resolve) => setTimeout(resolve, 10));
      }
      return acks.slice(0, count);
    },
    close: async () => {
      stream?.destroy();
      server.closeAllConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

const cleanups: (() => Promise<void> | void)[] = [];
afterEach(async () => {
  for (const cleanup of cleanups.splice(0).reverse()) await cleanup();
});

async function connectedClient(): Promise<{ cp: Scripted; client: DiscoveryClient; validated: unknown[][]; stateDir: string }> {
  const cp = await scriptedControlPlane();
  cleanups.push(() => cp.close());
  const stateDir = mkdtempSync(path.join(tmpdir(), 'tracemesh-discovery-test-'));
  cleanups.push(() => rmSync(stateDir, { recursive: true, force: true }));
  const validated: unknown[][] = [];
  const client = new DiscoveryClient({
    controlPlaneUrl: cp.url,
    registration: { id: 'p1', service: 'shop', namespace: 'default', version: 'v1', labels: {}, address: '127.0.0.1', port: 1 },
    stateDir,
    validate: async (documents) => {
      validated.push([...documents]);
      return EMPTY;
    },
    apply: () => undefined,
    log: () => undefined,
    heartbeatIntervalMs: 60_000,
    silenceTimeoutMs: 60_000,
    requestTimeoutMs: 2_000,
  });
  await client.start();
  cleanups.push(() => client.stop());
  // The stream is open once the client is connected.
  const deadline = Date.now() + 5_000;
  while (!client.connected) {
    if (Date.now() > deadline) throw new Error('the client did not open its stream');
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
  return { cp, client, validated, stateDir };
}

describe('discovery client: snapshots and deltas', () => {
  const v1Docs = [doc('Route', 'r', { path: '/a' }), doc('Service', 'a')];
  const v1 = snapshotVersion(v1Docs);
  const v2Docs = [doc('Route', 'r', { path: '/b' }), doc('Service', 'a'), doc('Service', 'b')];
  const v2 = snapshotVersion(v2Docs);

  it('applies a delta to the set it serves, validates and caches the whole result, and ACKs', async () => {
    const { cp, client, validated, stateDir } = await connectedClient();
    cp.send({ type: 'config', version: v1, nonce: 'n1', documents: v1Docs });
    await cp.acked(1);
    cp.send({ type: 'delta', version: v2, nonce: 'n2', base: v1, put: [doc('Route', 'r', { path: '/b' }), doc('Service', 'b')], remove: [] });
    const acks = await cp.acked(2);
    expect(acks.map((a) => [a.version, a.nonce, a.status])).toEqual([
      [v1, 'n1', 'ACK'],
      [v2, 'n2', 'ACK'],
    ]);
    expect(validated.at(-1)).toEqual(v2Docs);
    expect(client.appliedVersion).toBe(v2);
    expect(client.updates).toEqual({ snapshots: 1, deltas: 1, nacks: 0 });
    expect(JSON.parse(readFileSync(path.join(stateDir, CACHE_FILE), 'utf8'))).toEqual({ version: v2, documents: v2Docs });
  });

  it('NACKs, naming why, a delta on another base, one that does not make its version, and malformed messages; keeps serving; a snapshot after that is ACKed', async () => {
    const { cp, client } = await connectedClient();
    cp.send({ type: 'config', version: v1, nonce: 'n1', documents: v1Docs });
    await cp.acked(1);
    cp.send({ type: 'delta', version: v2, nonce: 'n2', base: 'elsewhere', put: [], remove: [] });
    cp.send({ type: 'delta', version: 'aaaaaaaaaaaa', nonce: 'n3', base: v1, put: [doc('Service', 'b')], remove: [] });
    cp.send({ type: 'delta', version: v2, nonce: 'n4', base: v1, put: [], remove: [{ kind: 'Service', namespace: 'default', name: 'zzz' }] });
    cp.send({ type: 'delta', version: v2, nonce: 'n5', base: v1, put: 'everything', remove: [] });
    cp.send({ type: 'frobnicate', version: v2, nonce: 'n6' });
    const nacks = (await cp.acked(6)).slice(1);
    expect(nacks.map((a) => [a.nonce, a.status, a.error])).toEqual([
      ['n2', 'NACK', `delta from version elsewhere, but this proxy serves version ${v1}: send the whole snapshot`],
      ['n3', 'NACK', expect.stringMatching(new RegExp(`^the delta from version ${v1} made version [0-9a-f]{12}, not aaaaaaaaaaaa: send the whole snapshot$`))],
      ['n4', 'NACK', 'delta: remove[0] (Service default/zzz) is not in the base'],
      ['n5', 'NACK', 'discovery stream: delta message: "put" must be a list'],
      ['n6', 'NACK', 'discovery stream: unknown message type "frobnicate"'],
    ]);
    expect(client.appliedVersion).toBe(v1);
    expect(client.connected).toBe(true);
    cp.send({ type: 'config', version: v2, nonce: 'n7', documents: v2Docs });
    expect((await cp.acked(7))[6]).toMatchObject({ nonce: 'n7', status: 'ACK', version: v2 });
    // The malformed ones count as NACKs, not as deltas.
    expect(client.updates).toEqual({ snapshots: 2, deltas: 3, nacks: 5 });
  });

  it('NACKs a delta while it serves nothing', async () => {
    const { cp } = await connectedClient();
    cp.send({ type: 'delta', version: v2, nonce: 'n1', base: v1, put: [], remove: [] });
    expect((await cp.acked(1))[0]).toMatchObject({ status: 'NACK', error: `delta from version ${v1}, but this proxy serves no configuration: send the whole snapshot` });
  });
});
