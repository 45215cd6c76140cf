/**
 * The benchmark's span generator: a separate process that sends OTLP/gRPC
 * trace exports to a collector as fast as a bounded number of calls in flight
 * allows.
 *
 * Encoding is done once: a few dozen ExportTraceServiceRequest templates of
 * 512 spans each (64 traces of 8 spans over 4 services, SERVER/CLIENT pairs,
 * 10 attributes per span), with the byte offsets of every trace id, span id,
 * parent span id and timestamp recorded. Each send copies a template and
 * patches fresh random ids and current times into it, so ids are unique and
 * times advance as in production while the generator spends almost nothing
 * per request.
 *
 * Forked by bench/collector/run.ts (IPC: `ready` → `go` → `done`), or run by
 * hand, in which case it starts at once and prints its report as JSON:
 *
 *   node dist/bench/collector/generator.js --address 127.0.0.1:4317 --spans 200000 [--concurrency 16] [--templates 32]
 */
import { randomFillSync } from 'node:crypto';
import { realpathSync } from 'node:fs';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import * as grpc from '@grpc/grpc-js';
import { ProtoReader, ProtoWriter, WIRE_FIXED64, WIRE_LEN, WIRE_VARINT } from '../../collector/otlp/wire.js';

export const SPANS_PER_TRACE = 8;
export const TRACES_PER_REQUEST = 64;
export const SPANS_PER_REQUEST = SPANS_PER_TRACE * TRACES_PER_REQUEST;
export const ATTRIBUTES_PER_SPAN = 10;
export const DEFAULT_TEMPLATES = 32;
export const DEFAULT_CONCURRENCY = 16;
export const EXPORT_PATH = '/opentelemetry.proto.collector.trace.v1.TraceService/Export';

const TRACE_ID_BYTES = 16;
const SPAN_ID_BYTES = 8;
const ID_BYTES = TRACES_PER_REQUEST * TRACE_ID_BYTES + SPANS_PER_REQUEST * SPAN_ID_BYTES;
const TWO_POW_32 = 4294967296;
const NANOS_PER_MS = 1_000_000;

/** Retries of one request refused as UNAVAILABLE before the run fails. */
const MAX_ATTEMPTS = 600;
const RETRY_DELAY_MS = 50;
const CALL_DEADLINE_MS = 30_000;

// ---------------------------------------------------------------------------
// Encoding with recorded patch offsets

const PATCH_TRACE_ID = 0;
const PATCH_SPAN_ID = 1;
const PATCH_TIME = 2;

interface Patch {
  at: number;
  kind: number;
  /** Trace index, span index, or the time relative to the request's base in nanoseconds. */
  value: number;
}

/** Encoded bytes plus the places in them that are filled in per send. */
class Piece {
  constructor(
    readonly bytes: Buffer,
    readonly patches: Patch[],
  ) {}

  static of(bytes: Uint8Array): Piece {
    return new Piece(Buffer.from(bytes), []);
  }

  static concat(pieces: readonly Piece[]): Piece {
    const patches: Patch[] = [];
    let offset = 0;
    for (const piece of pieces) {
      for (const p of piece.patches) patches.push({ at: p.at + offset, kind: p.kind, value: p.value });
      offset += piece.bytes.length;
    }
    return new Piece(Buffer.concat(pieces.map((piece) => piece.bytes)), patches);
  }

  /** This piece as the content of length-delimited field `field`. */
  wrap(field: number): Piece {
    const prefix = new ProtoWriter(16).tag(field, WIRE_LEN).varint(this.bytes.length).finish();
    return Piece.concat([Piece.of(prefix), this]);
  }
}

/** A pre-encoded ExportTraceServiceRequest and where its ids and times go. */
export interface Template {
  body: Buffer;
  traceIdAt: Int32Array;
  traceIdOf: Int32Array;
  spanIdAt: Int32Array;
  spanIdOf: Int32Array;
  timeAt: Int32Array;
  timeRelNanos: Float64Array;
}

function toTemplate(piece: Piece): Template {
  const trace = piece.patches.filter((p) => p.kind === PATCH_TRACE_ID);
  const span = piece.patches.filter((p) => p.kind === PATCH_SPAN_ID);
  const time = piece.patches.filter((p) => p.kind === PATCH_TIME);
  return {
    body: piece.bytes,
    traceIdAt: Int32Array.from(trace, (p) => p.at),
    traceIdOf: Int32Array.from(trace, (p) => p.value),
    spanIdAt: Int32Array.from(span, (p) => p.at),
    spanIdOf: Int32Array.from(span, (p) => p.value),
    timeAt: Int32Array.from(time, (p) => p.at),
    timeRelNanos: Float64Array.from(time, (p) => p.value),
  };
}

type AttributeValue = string | { int: number } | { double: number };
type Attributes = Array<readonly [string, AttributeValue]>;

function keyValue(key: string, value: AttributeValue): Uint8Array {
  const any = new ProtoWriter(64);
  if (typeof value === 'string') any.tag(1, WIRE_LEN).string(value);
  else if ('int' in value) any.tag(3, WIRE_VARINT).varint(value.int);
  else any.tag(4, WIRE_FIXED64).double(value.double);
  return new ProtoWriter(96).tag(1, WIRE_LEN).string(key).tag(2, WIRE_LEN).bytes(any.finish()).finish();
}

const SPAN_KIND_SERVER = 2;
const SPAN_KIND_CLIENT = 3;
const STATUS_ERROR = 2;

interface SpanSpec {
  trace: number;
  /** Index of the span in the request (trace * 8 + depth): which random span id it gets. */
  span: number;
  /** Index of the parent span, or -1 for a root. */
  parent: number;
  name: string;
  kind: number;
  startRelNanos: number;
  endRelNanos: number;
  attributes: Attributes;
  error: string | undefined;
}

/**
 * Span fields in field-number order, as the OpenTelemetry SDKs write them:
 * trace_id 1, span_id 2, parent_span_id 4, name 5, kind 6, start 7, end 8,
 * attributes 9, status 15, flags 16. The id and time bytes are zeros here and
 * recorded as patches.
 */
function encodeSpan(spec: SpanSpec): Piece {
  const patches: Patch[] = [];
  const head: number[] = [0x0a, TRACE_ID_BYTES];
  patches.push({ at: head.length, kind: PATCH_TRACE_ID, value: spec.trace });
  for (let i = 0; i < TRACE_ID_BYTES; i++) head.push(0);
  head.push(0x12, SPAN_ID_BYTES);
  patches.push({ at: head.length, kind: PATCH_SPAN_ID, value: spec.span });
  for (let i = 0; i < SPAN_ID_BYTES; i++) head.push(0);
  if (spec.parent >= 0) {
    head.push(0x22, SPAN_ID_BYTES);
    patches.push({ at: head.length, kind: PATCH_SPAN_ID, value: spec.parent });
    for (let i = 0; i < SPAN_ID_BYTES; i++) head.push(0);
  }
  const nameKind = new ProtoWriter(64).tag(5, WIRE_LEN).string(spec.name).tag(6, WIRE_VARINT).varint(spec.kind).finish();
  const timesAt = head.length + nameKind.length;
  patches.push({ at: timesAt + 1, kind: PATCH_TIME, value: spec.startRelNanos });
  patches.push({ at: timesAt + 10, kind: PATCH_TIME, value: spec.endRelNanos });
  const times = new Uint8Array(18);
  times[0] = 0x39; // field 7, fixed64
  times[9] = 0x41; // field 8, fixed64
  const rest = new ProtoWriter(1024);
  for (const [key, value] of spec.attributes) rest.tag(9, WIRE_LEN).bytes(keyValue(key, value));
  if (spec.error !== undefined) {
    rest.tag(15, WIRE_LEN).bytes(new ProtoWriter(64).tag(2, WIRE_LEN).string(spec.error).tag(3, WIRE_VARINT).varint(STATUS_ERROR).finish());
  }
  rest.tag(16, 5).fixed32(1); // flags: sampled
  const bytes = Buffer.concat([Uint8Array.from(head), nameKind, times, rest.finish()]);
  return new Piece(bytes, patches);
}

// ---------------------------------------------------------------------------
// The workload: a bookinfo-like call chain

/** Deterministic templates (the ids and times are what varies per send). */
function mulberry32(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / TWO_POW_32;
  };
}

export const SERVICES = ['frontend', 'productpage', 'reviews', 'ratings'] as const;

/** Entry routes and the routes they call downstream. */
const ENTRY_ROUTES: ReadonlyArray<{ method: string; route: string; path: (id: number) => string; weight: number; downstream: string }> = [
  { method: 'GET', route: '/productpage', path: () => '/productpage', weight: 40, downstream: '/api/v1/products/{id}/reviews' },
  { method: 'GET', route: '/api/v1/products/{id}', path: (id) => `/api/v1/products/${id}`, weight: 25, downstream: '/api/v1/products/{id}/reviews' },
  { method: 'GET', route: '/api/v1/products/{id}/ratings', path: (id) => `/api/v1/products/${id}/ratings`, weight: 15, downstream: '/api/v1/products/{id}/reviews' },
  { method: 'POST', route: '/api/v1/products/{id}/reviews', path: (id) => `/api/v1/products/${id}/reviews`, weight: 12, downstream: '/api/v1/products/{id}/reviews' },
  { method: 'GET', route: '/login', path: () => '/login', weight: 8, downstream: '/api/v1/session' },
];
const ROUTE_WEIGHT_TOTAL = ENTRY_ROUTES.reduce((sum, r) => sum + r.weight, 0);

const POD_HASHES = ['7c9f8d5b6', '5d4b9c7f8', '6f7a8b9c4'];
const POD_SUFFIXES = ['x2k9p', 'q7w3e', 'm4n8b', 'z1c6v', 't5y2u', 'h8j3k'];

function logUniform(rng: () => number, minMs: number, maxMs: number): number {
  return Math.exp(Math.log(minMs) + rng() * (Math.log(maxMs) - Math.log(minMs)));
}

function podIp(rng: () => number): string {
  return `10.0.${1 + Math.floor(rng() * 4)}.${10 + Math.floor(rng() * 16)}`;
}

function resourcePiece(service: string, templateIndex: number, serviceIndex: number): Piece {
  const version = `v${1 + ((templateIndex + serviceIndex) % 3)}`;
  const pod = `${service}-${version}-${POD_HASHES[templateIndex % 3]}-${POD_SUFFIXES[(templateIndex + serviceIndex) % 6]}`;
  const attributes: Attributes = [
    ['service.name', service],
    ['service.version', version],
    ['service.namespace', 'bookinfo'],
    ['k8s.namespace.name', 'default'],
    ['k8s.pod.name', pod],
    ['host.name', pod],
    ['telemetry.sdk.name', 'opentelemetry'],
    ['telemetry.sdk.language', 'nodejs'],
    ['telemetry.sdk.version', '2.2.0'],
  ];
  const w = new ProtoWriter(1024);
  for (const [key, value] of attributes) w.tag(1, WIRE_LEN).bytes(keyValue(key, value));
  return Piece.of(w.finish());
}

const SCOPE = Piece.of(new ProtoWriter(64).tag(1, WIRE_LEN).string('tracemesh-proxy').tag(2, WIRE_LEN).string('0.1.0').finish());

/** The 8 spans of one trace, depth 0..7: frontend, productpage, reviews, ratings, each a SERVER then a CLIENT span. */
function traceSpans(rng: () => number, trace: number, traceStartNanos: number): SpanSpec[] {
  let pick = rng() * ROUTE_WEIGHT_TOTAL;
  let entry = ENTRY_ROUTES[0]!;
  for (const r of ENTRY_ROUTES) {
    pick -= r.weight;
    if (pick < 0) {
      entry = r;
      break;
    }
  }
  const userId = `user-${1 + Math.floor(rng() * 1000)}`;
  const productId = 1 + Math.floor(rng() * 200);
  const downstreamPath = entry.downstream.replace('{id}', String(productId));
  const ratingsFails = rng() < 0.02;
  const dbFails = !ratingsFails && rng() < 0.01;
  const retried = rng() < 0.03;

  // Durations bottom-up (ms), so every span encloses its children: 1 ms .. about 300 ms at the root.
  const d = new Array<number>(SPANS_PER_TRACE).fill(0);
  d[7] = logUniform(rng, 1, 40);
  d[6] = d[7] + logUniform(rng, 0.3, 15);
  d[5] = d[6] + logUniform(rng, 0.1, 1.5);
  d[4] = d[5] + logUniform(rng, 0.5, 50);
  d[3] = d[4] + logUniform(rng, 0.1, 1.5);
  d[2] = d[3] + logUniform(rng, 0.5, 80);
  d[1] = d[2] + logUniform(rng, 0.1, 1.5);
  d[0] = d[1] + logUniform(rng, 0.5, 80);
  const start = new Array<number>(SPANS_PER_TRACE).fill(0);
  start[0] = traceStartNanos;
  for (let depth = 1; depth < SPANS_PER_TRACE; depth++) {
    const slack = (d[depth - 1]! - d[depth]!) * NANOS_PER_MS;
    start[depth] = start[depth - 1]! + Math.round(slack * (0.2 + 0.6 * rng()));
  }

  const specs: SpanSpec[] = [];
  const base = trace * SPANS_PER_TRACE;
  const add = (depth: number, name: string, kind: number, attributes: Attributes, error: string | undefined): void => {
    if (attributes.length !== ATTRIBUTES_PER_SPAN) throw new Error(`span ${name} has ${attributes.length} attributes`);
    specs.push({
      trace,
      span: base + depth,
      parent: depth === 0 ? -1 : base + depth - 1,
      name,
      kind,
      startRelNanos: start[depth]!,
      endRelNanos: start[depth]! + Math.round(d[depth]! * NANOS_PER_MS),
      attributes,
      error,
    });
  };
  const serverAttributes = (service: string, method: string, route: string, path: string, status: number, source: string): Attributes => [
    ['http.request.method', method],
    ['http.route', route],
    ['url.path', path],
    ['http.response.status_code', { int: status }],
    ['server.address', `${service}.default.svc.cluster.local`],
    ['server.port', { int: 9080 }],
    ['client.address', podIp(rng)],
    ['enduser.id', userId],
    ['tracemesh.source.service', source],
    ['http.response.body.size', { int: 200 + Math.floor(rng() * 50_000) }],
  ];
  const clientAttributes = (target: string, method: string, path: string, status: number, depth: number): Attributes => [
    ['http.request.method', method],
    ['url.full', `http://${target}:9080${path}`],
    ['http.response.status_code', { int: status }],
    ['server.address', target],
    ['server.port', { int: 9080 }],
    ['network.peer.address', podIp(rng)],
    ['tracemesh.route', `${target}-default`],
    ['tracemesh.retry.attempt', { int: retried && depth === 5 ? 1 : 0 }],
    ['enduser.id', userId],
    ['tracemesh.upstream.latency_ms', { double: Math.round(d[depth]! * 1000) / 1000 }],
  ];
  const entryPath = entry.path(productId);
  const ratingsStatus = ratingsFails ? 503 : 200;
  const ratingsError = ratingsFails ? 'upstream connect error or disconnect/reset before headers. reset reason: overflow' : undefined;
  add(0, `${entry.method} ${entry.route}`, SPAN_KIND_SERVER, serverAttributes('frontend', entry.method, entry.route, entryPath, 200, 'ingress'), undefined);
  add(1, entry.method, SPAN_KIND_CLIENT, clientAttributes('productpage', entry.method, entryPath, 200, 1), undefined);
  add(2, `${entry.method} ${entry.route}`, SPAN_KIND_SERVER, serverAttributes('productpage', entry.method, entry.route, entryPath, 200, 'frontend'), undefined);
  add(3, 'GET', SPAN_KIND_CLIENT, clientAttributes('reviews', 'GET', downstreamPath, 200, 3), undefined);
  add(4, `GET ${entry.downstream}`, SPAN_KIND_SERVER, serverAttributes('reviews', 'GET', entry.downstream, downstreamPath, 200, 'productpage'), undefined);
  add(5, 'GET', SPAN_KIND_CLIENT, clientAttributes('ratings', 'GET', `/ratings/${productId}`, ratingsStatus, 5), ratingsError);
  add(6, 'GET /ratings/{id}', SPAN_KIND_SERVER, serverAttributes('ratings', 'GET', '/ratings/{id}', `/ratings/${productId}`, ratingsStatus, 'reviews'), ratingsError);
  add(
    7,
    'SELECT ratings',
    SPAN_KIND_CLIENT,
    [
      ['db.system', 'mysql'],
      ['db.name', 'ratings'],
      ['db.operation.name', 'SELECT'],
      ['db.query.text', 'SELECT stars, reviewer FROM ratings WHERE product_id = ?'],
      ['server.address', 'mysql.default.svc.cluster.local'],
      ['server.port', { int: 3306 }],
      ['peer.service', 'mysql'],
      ['network.peer.address', '10.0.9.4'],
      ['db.response.returned_rows', { int: Math.floor(rng() * 20) }],
      ['enduser.id', userId],
    ],
    dbFails ? 'Deadlock found when trying to get lock; try restarting transaction' : undefined,
  );
  return specs;
}

/** One template: 64 traces starting within one second, grouped into one ResourceSpans per service. */
export function buildTemplate(index: number): Template {
  const rng = mulberry32(0x7ace + index * 7919);
  const perService: Piece[][] = SERVICES.map(() => []);
  for (let trace = 0; trace < TRACES_PER_REQUEST; trace++) {
    const traceStart = Math.round(rng() * 1e9);
    for (const spec of traceSpans(rng, trace, traceStart)) {
      const depth = spec.span - trace * SPANS_PER_TRACE;
      perService[depth >> 1]!.push(encodeSpan(spec).wrap(2));
    }
  }
  const resourceSpans = SERVICES.map((service, s) => {
    const scopeSpans = Piece.concat([SCOPE.wrap(1), ...perService[s]!]).wrap(2);
    return Piece.concat([resourcePiece(service, index, s).wrap(1), scopeSpans]).wrap(1);
  });
  const template = toTemplate(Piece.concat(resourceSpans));
  if (template.traceIdAt.length !== SPANS_PER_REQUEST || template.timeAt.length !== 2 * SPANS_PER_REQUEST) {
    throw new Error(`template ${index}: ${template.traceIdAt.length} trace ids, ${template.timeAt.length} times`);
  }
  return template;
}

export function buildTemplates(count: number): Template[] {
  const templates: Template[] = [];
  for (let i = 0; i < count; i++) templates.push(buildTemplate(i));
  return templates;
}

/**
 * Turns templates into requests: a copy of the template with fresh random ids
 * (one draw of 5 KiB per request) and times shifted to `baseMs`.
 */
export class RequestFactory {
  readonly #ids = Buffer.allocUnsafe(ID_BYTES);

  next(template: Template, baseMs: number): Buffer {
    const body = Buffer.allocUnsafe(template.body.length);
    template.body.copy(body);
    const ids = this.#ids;
    randomFillSync(ids);
    const traceAt = template.traceIdAt;
    const traceOf = template.traceIdOf;
    for (let i = 0; i < traceAt.length; i++) {
      const from = traceOf[i]! * TRACE_ID_BYTES;
      ids.copy(body, traceAt[i]!, from, from + TRACE_ID_BYTES);
    }
    const spanAt = template.spanIdAt;
    const spanOf = template.spanIdOf;
    const spanBase = TRACES_PER_REQUEST * TRACE_ID_BYTES;
    for (let i = 0; i < spanAt.length; i++) {
      const from = spanBase + spanOf[i]! * SPAN_ID_BYTES;
      ids.copy(body, spanAt[i]!, from, from + SPAN_ID_BYTES);
    }
    // base + relative time in two 32-bit halves: no bigint per span.
    const baseNanos = BigInt(baseMs) * 1_000_000n;
    const baseHi = Number(baseNanos >> 32n);
    const baseLo = Number(baseNanos & 0xffffffffn);
    const timeAt = template.timeAt;
    const rel = template.timeRelNanos;
    for (let i = 0; i < timeAt.length; i++) {
      const lo = baseLo + rel[i]!;
      const carry = Math.floor(lo / TWO_POW_32);
      body.writeUInt32LE(lo - carry * TWO_POW_32, timeAt[i]!);
      body.writeUInt32LE(baseHi + carry, timeAt[i]! + 4);
    }
    return body;
  }
}

/** `partial_success.rejected_spans` of an ExportTraceServiceResponse (0 when absent). */
export function rejectedSpans(response: Buffer | undefined): number {
  if (response === undefined || response.length === 0) return 0;
  const r = new ProtoReader(response);
  const end = response.length;
  let rejected = 0;
  while (r.pos < end) {
    const field = r.tag(end);
    const wireType: number = r.wireType;
    if (field === 1 && wireType === WIRE_LEN) {
      const inner = r.lengthDelimited(end);
      while (r.pos < inner) {
        const innerField = r.tag(inner);
        const innerWireType: number = r.wireType;
        if (innerField === 1 && innerWireType === WIRE_VARINT) rejected += r.varint(inner);
        else r.skip(inner);
      }
    } else r.skip(end);
  }
  return rejected;
}

// ---------------------------------------------------------------------------
// Sending

export interface GeneratorOptions {
  address: string;
  spans: number;
  concurrency: number;
  templates: number;
}

export interface GeneratorReport {
  requests: number;
  spansSent: number;
  spansRejected: number;
  retries: number;
  wallMs: number;
  cpuUserMs: number;
  cpuSystemMs: number;
  requestBytes: number;
  latencyP50Ms: number;
  latencyP99Ms: number;
  latencyMaxMs: number;
}

export type GeneratorMessage =
  | { type: 'ready'; templates: number; buildMs: number; requestBytes: number; requests: number; spans: number }
  | { type: 'done'; report: GeneratorReport }
  | { type: 'error'; message: string };

const identity = (bytes: Buffer): Buffer => bytes;

function quantile(sorted: Float64Array, q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.ceil(q * sorted.length) - 1)] ?? 0;
}

/** Sends `requests` exports with at most `concurrency` in flight; rejects on the first error that is not UNAVAILABLE. */
function sendAll(client: grpc.Client, templates: readonly Template[], requests: number, concurrency: number): Promise<GeneratorReport> {
  return new Promise<GeneratorReport>((resolve, reject) => {
    const factory = new RequestFactory();
    const latencies = new Float64Array(requests);
    let next = 0;
    let completed = 0;
    let inFlight = 0;
    let rejected = 0;
    let retries = 0;
    let bytes = 0;
    let failed = false;
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();

    const finish = (): void => {
      const cpu = process.cpuUsage(cpu0);
      latencies.sort();
      resolve({
        requests,
        spansSent: requests * SPANS_PER_REQUEST,
        spansRejected: rejected,
        retries,
        wallMs: performance.now() - t0,
        cpuUserMs: cpu.user / 1000,
        cpuSystemMs: cpu.system / 1000,
        requestBytes: bytes,
        latencyP50Ms: quantile(latencies, 0.5),
        latencyP99Ms: quantile(latencies, 0.99),
        latencyMaxMs: latencies[latencies.length - 1] ?? 0,
      });
    };

    const attempt = (index: number, body: Buffer, tries: number, startedAt: number): void => {
      client.makeUnaryRequest(
        EXPORT_PATH,
        identity,
        identity,
        body,
        new grpc.Metadata(),
        { deadline: Date.now() + CALL_DEADLINE_MS },
        (err: grpc.ServiceError | null, response?: Buffer) => {
          if (failed) return;
          if (err !== null) {
            if (err.code === grpc.status.UNAVAILABLE && tries + 1 < MAX_ATTEMPTS) {
              retries++;
              setTimeout(() => attempt(index, body, tries + 1, startedAt), RETRY_DELAY_MS);
              return;
            }
            failed = true;
            reject(new Error(`export ${index} failed after ${tries + 1} attempt(s): ${grpc.status[err.code]} ${err.details}`));
            return;
          }
          latencies[index] = performance.now() - startedAt;
          rejected += rejectedSpans(response);
          inFlight--;
          completed++;
          if (completed === requests) finish();
          else launch();
        },
      );
    };

    const launch = (): void => {
      while (inFlight < concurrency && next < requests) {
        const index = next++;
        inFlight++;
        // Times end up to about 1.3 s after the base: put the base in the past, as spans are exported after they end.
        const body = factory.next(templates[index % templates.length]!, Date.now() - 2_000);
        bytes += body.length;
        attempt(index, body, 0, performance.now());
      }
    };

    if (requests === 0) finish();
    else launch();
  });
}

function waitForReady(client: grpc.Client, timeoutMs: number): Promise<void> {
  return new Promise<void>((resolve, reject) => {
    client.waitForReady(Date.now() + timeoutMs, (err) => (err === undefined || err === null ? resolve() : reject(err)));
  });
}

function parseArgs(argv: readonly string[]): GeneratorOptions {
  const options: GeneratorOptions = { address: '', spans: 0, concurrency: DEFAULT_CONCURRENCY, templates: DEFAULT_TEMPLATES };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i];
    const value = argv[i + 1];
    if (value === undefined) throw new Error(`${flag}: missing value`);
    const positive = (): number => {
      const n = Number(value);
      if (!Number.isSafeInteger(n) || n <= 0) throw new Error(`${flag}: expected a positive integer, got ${value}`);
      return n;
    };
    switch (flag) {
      case '--address':
        options.address = value;
        break;
      case '--spans':
        options.spans = positive();
        break;
      case '--concurrency':
        options.concurrency = positive();
        break;
      case '--templates':
        options.templates = positive();
        break;
      default:
        throw new Error(`unknown flag ${flag}`);
    }
  }
  if (options.address === '') throw new Error('--address is required');
  if (options.spans === 0) throw new Error('--spans is required');
  return options;
}

/** To the parent over IPC when forked, else as a JSON line on stdout. Resolves once the message is handed over. */
function report(message: GeneratorMessage): Promise<void> {
  return new Promise<void>((resolve) => {
    if (process.send !== undefined) process.send(message, undefined, {}, () => resolve());
    else process.stdout.write(JSON.stringify(message) + '\n', () => resolve());
  });
}

function waitForGo(): Promise<void> {
  if (process.send === undefined) return Promise.resolve();
  return new Promise<void>((resolve) => {
    const onMessage = (message: unknown): void => {
      if (typeof message === 'object' && message !== null && (message as { type?: unknown }).type === 'go') {
        process.off('message', onMessage);
        resolve();
      }
    };
    process.on('message', onMessage);
  });
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const requests = Math.ceil(options.spans / SPANS_PER_REQUEST);
  const t0 = performance.now();
  const templates = buildTemplates(options.templates);
  const buildMs = performance.now() - t0;
  const client = new grpc.Client(options.address, grpc.credentials.createInsecure(), {
    'grpc.max_send_message_length': 64 * 1024 * 1024,
    'grpc.max_receive_message_length': 4 * 1024 * 1024,
  });
  try {
    await waitForReady(client, 10_000);
    await report({
      type: 'ready',
      templates: templates.length,
      buildMs,
      requestBytes: templates[0]!.body.length,
      requests,
      spans: requests * SPANS_PER_REQUEST,
    });
    await waitForGo();
    const result = await sendAll(client, templates, requests, options.concurrency);
    await report({ type: 'done', report: result });
  } finally {
    client.close();
  }
}

const invokedAsScript = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsScript) {
  main().then(
    () => {
      process.disconnect?.();
    },
    async (err: unknown) => {
      process.exitCode = 1;
      await report({ type: 'error', message: err instanceof Error ? err.message : String(err) });
      process.disconnect?.();
    },
  );
}
