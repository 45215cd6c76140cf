/**
 * Shared by the query API and CLI tests (not used at run time): a chDB store in
 * a temp directory, span and edge-call rows in the layout the collector
 * writes, and a started API. Kept out of *.test.ts so tests can import it
 * without pulling another file's tests in.
 */
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createServer } from 'node:net';
import type { AddressInfo } from 'node:net';
import { PassThrough } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import type { Command, CommandIo } from '../../src/cli/command.js';
import { runCli } from '../../src/cli/run-cli.js';
import type { Attribute, SpanKindName, StatusCodeName } from '../../collector/model.js';
import { migrate } from '../../collector/storage/migrations.js';
import { openStore } from '../../collector/storage/store.js';
import type { Store } from '../../collector/storage/store.js';
import { createQueryApi } from '../../collector/api/server.js';
import type { QueryApiOptions } from '../../collector/api/server.js';

export interface TestStore {
  store: Store;
  dir: string;
  /** Closes the store and removes its directory. */
  cleanup(): Promise<void>;
}

export async function openTestStore(options: { migrate?: boolean } = {}): Promise<TestStore> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tracemesh-api-'));
  const store = openStore({ kind: 'chdb', dataDir: dir });
  if (options.migrate !== false) await migrate(store);
  return {
    store,
    dir,
    async cleanup() {
      await store.close();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

export interface TestApi {
  app: FastifyInstance;
  /** `http://127.0.0.1:PORT`, no trailing slash. */
  url: string;
}

export async function startTestApi(options: QueryApiOptions): Promise<TestApi> {
  const app = createQueryApi(options);
  await app.listen({ port: 0, host: '127.0.0.1' });
  const { port } = app.server.address() as AddressInfo;
  return { app, url: `http://127.0.0.1:${port}` };
}

/** `<seconds>.<9-digit nanos>`: how JSONEachRow takes a DateTime64(9) exactly. */
export function timestampText(nanos: bigint): string {
  const seconds = nanos / 1_000_000_000n;
  const fraction = nanos % 1_000_000_000n;
  return `${seconds}.${fraction.toString().padStart(9, '0')}`;
}

export interface SpanFixture {
  traceId: string;
  spanId: string;
  parentSpanId?: string;
  name: string;
  kind?: SpanKindName;
  service: string;
  startNanos: bigint;
  durationNanos: bigint;
  status?: StatusCodeName;
  statusMessage?: string;
  attributes?: Attribute[];
  resourceAttributes?: Attribute[];
  events?: Array<{ timeNanos: bigint; name: string; attributes?: Attribute[] }>;
  links?: Array<{ traceId: string; spanId: string; traceState?: string; attributes?: Attribute[] }>;
}

function attributeMaps(attributes: Attribute[] | undefined): { values: Record<string, string>; types: Record<string, string> } {
  // No prototype, so an attribute named `__proto__` is kept as data.
  const values = Object.create(null) as Record<string, string>;
  const types = Object.create(null) as Record<string, string>;
  for (const attribute of attributes ?? []) {
    values[attribute.key] = attribute.value;
    if (attribute.type !== 'string') types[attribute.key] = attribute.type;
  }
  return { values, types };
}

/** One otel_traces row as JSONEachRow, as the collector's writer lays it out. */
export function spanRow(span: SpanFixture): Record<string, unknown> {
  const spanAttrs = attributeMaps(span.attributes);
  const resource = attributeMaps([{ key: 'service.name', value: span.service, type: 'string' }, ...(span.resourceAttributes ?? [])]);
  const events = span.events ?? [];
  const links = span.links ?? [];
  return {
    Timestamp: timestampText(span.startNanos),
    TraceId: span.traceId,
    SpanId: span.spanId,
    ParentSpanId: span.parentSpanId ?? '',
    TraceState: '',
    SpanName: span.name,
    SpanKind: span.kind ?? 'Internal',
    ServiceName: span.service,
    ResourceAttributes: resource.values,
    ResourceAttributeTypes: resource.types,
    ScopeName: 'tracemesh-proxy',
    ScopeVersion: '0.1.0',
    SpanAttributes: spanAttrs.values,
    SpanAttributeTypes: spanAttrs.types,
    Duration: span.durationNanos.toString(),
    StatusCode: span.status ?? 'Unset',
    StatusMessage: span.statusMessage ?? '',
    'Events.Timestamp': events.map((e) => timestampText(e.timeNanos)),
    'Events.Name': events.map((e) => e.name),
    'Events.Attributes': events.map((e) => attributeMaps(e.attributes).values),
    'Events.AttributeTypes': events.map((e) => attributeMaps(e.attributes).types),
    'Links.TraceId': links.map((l) => l.traceId),
    'Links.SpanId': links.map((l) => l.spanId),
    'Links.TraceState': links.map((l) => l.traceState ?? ''),
    'Links.Attributes': links.map((l) => attributeMaps(l.attributes).values),
    'Links.AttributeTypes': links.map((l) => attributeMaps(l.attributes).types),
  };
}

function jsonEachRow(rows: ReadonlyArray<Record<string, unknown>>): Buffer {
  return Buffer.from(rows.map((row) => `${JSON.stringify(row)}\n`).join(''));
}

let insertCounter = 0;

export async function insertSpans(store: Store, spans: readonly SpanFixture[]): Promise<void> {
  insertCounter += 1;
  await store.insertJsonEachRow('otel_traces', jsonEachRow(spans.map(spanRow)), `test-spans-${process.pid}-${insertCounter}`);
}

export interface EdgeCallFixture {
  timeNanos: bigint;
  client: string;
  server: string;
  connectionType?: '' | 'user' | 'virtual';
  clientDurationNanos: bigint;
  serverDurationNanos: bigint;
  failed?: boolean;
}

export async function insertEdgeCalls(store: Store, calls: readonly EdgeCallFixture[]): Promise<void> {
  insertCounter += 1;
  const rows = calls.map((call) => ({
    Timestamp: timestampText(call.timeNanos),
    Client: call.client,
    Server: call.server,
    ConnectionType: call.connectionType ?? '',
    ClientDuration: call.clientDurationNanos.toString(),
    ServerDuration: call.serverDurationNanos.toString(),
    Failed: call.failed === true ? 1 : 0,
  }));
  await store.insertJsonEachRow('tracemesh_edge_calls', jsonEachRow(rows), `test-edges-${process.pid}-${insertCounter}`);
}

/** GET `url` and its JSON body. */
export async function getJson(url: string): Promise<{ status: number; body: unknown }> {
  const response = await fetch(url);
  const text = await response.text();
  return { status: response.status, body: text.length === 0 ? undefined : (JSON.parse(text) as unknown) };
}

export interface CapturedIo {
  io: CommandIo;
  stdout(): string;
  stderr(): string;
}

/** CommandIo over PassThrough streams, for running CLI commands in tests. */
export function captureIo(): CapturedIo {
  const out = new PassThrough();
  const err = new PassThrough();
  const outChunks: Buffer[] = [];
  const errChunks: Buffer[] = [];
  out.on('data', (chunk: Buffer) => outChunks.push(chunk));
  err.on('data', (chunk: Buffer) => errChunks.push(chunk));
  return {
    io: { stdout: out, stderr: err, stopSignal: new Promise<string>(() => undefined) },
    stdout: () => Buffer.concat(outChunks).toString('utf8'),
    stderr: () => Buffer.concat(errChunks).toString('utf8'),
  };
}

export interface CliResult {
  code: number;
  stdout: string;
  stderr: string;
}

/** Runs `tracemesh ...argv` through runCli with captured output. */
export async function runCaptured(commands: readonly Command[], argv: string[]): Promise<CliResult> {
  const captured = captureIo();
  const code = await runCli(commands, argv, captured.io);
  // PassThrough may hand the last chunks over on a later tick.
  await new Promise<void>((resolve) => setImmediate(resolve));
  return { code, stdout: captured.stdout(), stderr: captured.stderr() };
}

export const SAMPLE_TRACE_IDS = {
  checkout: '0af7651916cd43dd8448eb211c80319c',
  ratings: '000000000000000000000000000abc7f',
  worker: 'e1a2b3c4d5e6f708192a3b4c5d6e7f80',
} as const;

/**
 * Three small traces starting at `base` (newest last): a frontend -> reviews
 * call that failed, a one-span ratings trace 2 minutes later, and a worker
 * trace whose root never arrived (two orphans) 1 minute later.
 */
export function sampleTraces(base: bigint): SpanFixture[] {
  const ms = 1_000_000n;
  const { checkout, ratings, worker } = SAMPLE_TRACE_IDS;
  return [
    {
      traceId: checkout,
      spanId: 'b7ad6b7169203331',
      name: 'GET /products',
      kind: 'Server',
      service: 'frontend',
      startNanos: base,
      durationNanos: 50n * ms,
      attributes: [{ key: 'http.response.status_code', value: '200', type: 'int' }],
    },
    {
      traceId: checkout,
      spanId: 'c1ad6b7169203331',
      parentSpanId: 'b7ad6b7169203331',
      name: 'GET reviews',
      kind: 'Client',
      service: 'frontend',
      startNanos: base + ms,
      durationNanos: 30n * ms,
      status: 'Error',
      statusMessage: 'upstream returned 504',
    },
    {
      traceId: checkout,
      spanId: 'd2ad6b7169203331',
      parentSpanId: 'c1ad6b7169203331',
      name: 'GET /reviews',
      kind: 'Server',
      service: 'reviews',
      startNanos: base + 2n * ms,
      durationNanos: 25n * ms,
      status: 'Error',
      statusMessage: 'deadline exceeded',
      attributes: [{ key: 'http.response.status_code', value: '504', type: 'int' }],
    },
    {
      traceId: ratings,
      spanId: 'a1b2c3d4e5f60718',
      name: 'POST /ratings',
      kind: 'Server',
      service: 'ratings',
      startNanos: base + 120_000n * ms,
      durationNanos: 5n * ms,
      attributes: [{ key: 'http.request.method', value: 'POST', type: 'string' }],
    },
    {
      traceId: worker,
      spanId: '1111111111111111',
      parentSpanId: 'ffffffffffffffff',
      name: 'process order',
      kind: 'Consumer',
      service: 'worker',
      startNanos: base + 60_000n * ms,
      durationNanos: 20n * ms,
    },
    {
      traceId: worker,
      spanId: '2222222222222222',
      parentSpanId: '1111111111111111',
      name: 'INSERT orders',
      kind: 'Client',
      service: 'worker',
      startNanos: base + 60_005n * ms,
      durationNanos: 8n * ms,
    },
    {
      traceId: worker,
      spanId: '3333333333333333',
      parentSpanId: 'eeeeeeeeeeeeeeee',
      name: 'ack',
      kind: 'Internal',
      service: 'worker',
      startNanos: base + 60_001n * ms,
      durationNanos: 1n * ms,
    },
  ];
}

/** A port nothing listens on (bound once, then released). */
export async function closedPort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  await new Promise<void>((resolve) => server.close(() => resolve()));
  return port;
}
