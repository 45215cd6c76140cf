/**
 * `npm run bench:collector [-- --spans N]`: the collector's benchmark.
 *
 * One collector (embedded chDB) runs inside this process, so the runner counts
 * rows directly and its CPU time is the collector's CPU time (chDB's engine
 * threads included). The spans come from bench/collector/generator.ts in a
 * separate process over OTLP/gRPC.
 *
 *   1. start a collector in a temp dir;
 *   2. the engine's own ingest rate for the same rows: a JSONEachRow file of
 *      otel_traces rows loaded with the collector's own `INSERT ... SELECT FROM
 *      file()` (same settings), and the same rows through rawInsert;
 *   3. end to end: N spans sent by the generator, timed from the first send
 *      until count() of otel_traces reaches N; CPU time of this process over
 *      that window, also per thread;
 *   4. trace-by-id latency through the query API, as ingested;
 *   5. bytes on disk per span after OPTIMIZE ... FINAL, per table and column;
 *   6. trace-by-id latency again, after the merges;
 *   7. if a throughput goal is missed (or --profile always): a second,
 *      profiled end-to-end pass, summarised by function and area;
 *   8. bench/results/collector.md.
 *
 * Every wait has a deadline; the temp dir is removed; a failed phase exits 1.
 */
import { execFileSync, fork } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { closeSync, mkdirSync, mkdtempSync, openSync, readFileSync, readdirSync, rmSync, statSync, writeFileSync, writeSync } from 'node:fs';
import { Session } from 'node:inspector/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Collector, collectorConfig } from '../../collector/collector.js';
import { decodeTracesProto } from '../../collector/otlp/traces-proto.js';
import { DEFAULT_INGEST_OPTIONS } from '../../collector/pipeline/ingest.js';
import { RowBinaryWriter } from '../../collector/storage/row-binary.js';
import { spanRow } from '../../collector/storage/rows.js';
import { writeSpanRowBinary } from '../../collector/storage/span-row-binary.js';
import { sqlString } from '../../collector/storage/store.js';
import { ATTRIBUTES_PER_SPAN, DEFAULT_CONCURRENCY, DEFAULT_TEMPLATES, RequestFactory, SPANS_PER_REQUEST, SPANS_PER_TRACE, buildTemplates } from './generator.js';
import type { GeneratorMessage, GeneratorReport } from './generator.js';
import { summarizeProfile, summaryMarkdown } from './profile-summary.js';
import type { CpuProfile } from './profile-summary.js';

const HERE = path.dirname(fileURLToPath(import.meta.url));
/** The repository root (this file runs from dist/bench/collector/). */
const ROOT = path.resolve(HERE, '..', '..', '..');
const GENERATOR = path.join(HERE, 'generator.js');

const GOALS = {
  spansPerCoreSecond: 100_000,
  engineRatio: 0.5,
  bytesPerSpan: 60,
  traceByIdP99Ms: 50,
  minSpansForLookups: 1_000_000,
};

const COMPARISONS = [
  { system: 'Uptrace', figure: 'about 10,000 spans/s per core' },
  { system: 'Jaeger on ClickHouse', figure: 'about 50,000 spans/s' },
];

/** The tables the collector writes (directly or through materialized views). */
const TRACE_TABLES = ['otel_traces', 'otel_traces_trace_id_ts', 'tracemesh_red_1m', 'tracemesh_edges_1m'];

const ENGINE_RAW_CHUNK_ROWS = 100_000;
const POLL_MS = 100;
const READY_TIMEOUT_MS = 60_000;
const QUERY_TIMEOUT_MS = 600_000;
const LOOKUP_WARMUP = 10;

// ---------------------------------------------------------------------------
// Arguments

interface Args {
  spans: number;
  concurrency: number;
  engineRows: number;
  lookups: number;
  profile: 'auto' | 'always' | 'never';
  profileSpans: number;
  out: string;
}

function usage(): string {
  return [
    'usage: npm run bench:collector -- [options]',
    `  --spans N           spans sent end to end (default 2000000; trace-by-id goal needs >= ${GOALS.minSpansForLookups})`,
    `  --concurrency N     generator calls in flight (default ${DEFAULT_CONCURRENCY})`,
    '  --engine-rows N     rows in the engine-rate file (default 500000)',
    '  --lookups N         trace-by-id lookups per pass (default 500)',
    '  --profile MODE      auto (when a throughput goal is missed) | always | never (default auto)',
    '  --profile-spans N   spans in the profiled pass (default 500000)',
    '  --out FILE          results file (default bench/results/collector.md)',
  ].join('\n');
}

class UsageError extends Error {}

function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    spans: 2_000_000,
    concurrency: DEFAULT_CONCURRENCY,
    engineRows: 500_000,
    lookups: 500,
    profile: 'auto',
    profileSpans: 500_000,
    out: path.join(ROOT, 'bench', 'results', 'collector.md'),
  };
  for (let i = 0; i < argv.length; i += 2) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') throw new UsageError(usage());
    const value = argv[i + 1];
    if (value === undefined) throw new UsageError(`${flag}: missing value`);
    const positive = (): number => {
      const n = Number(value.replace(/_/g, ''));
      if (!Number.isSafeInteger(n) || n <= 0) throw new UsageError(`${flag}: expected a positive integer, got ${value}`);
      return n;
    };
    switch (flag) {
      case '--spans':
        args.spans = positive();
        break;
      case '--concurrency':
        args.concurrency = positive();
        break;
      case '--engine-rows':
        args.engineRows = positive();
        break;
      case '--lookups':
        args.lookups = positive();
        break;
      case '--profile-spans':
        args.profileSpans = positive();
        break;
      case '--profile':
        if (value !== 'auto' && value !== 'always' && value !== 'never') throw new UsageError(`--profile: expected auto, always or never, got ${value}`);
        args.profile = value;
        break;
      case '--out':
        args.out = path.resolve(value);
        break;
      default:
        throw new UsageError(`unknown flag ${flag}\n${usage()}`);
    }
  }
  return args;
}

// ---------------------------------------------------------------------------
// Small helpers

function log(message: string): void {
  process.stderr.write(`[bench] ${message}\n`);
}

function withTimeout<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what} did not finish within ${ms} ms`)), ms);
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

const sleep = (ms: number): Promise<void> => new Promise((resolve) => setTimeout(resolve, ms));

function fmt(n: number, digits = 0): string {
  return n.toLocaleString('en-US', { minimumFractionDigits: digits, maximumFractionDigits: digits });
}

function mib(bytes: number): string {
  return `${fmt(bytes / 1024 / 1024, 1)} MiB`;
}

function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1))]!;
}

function cpuSeconds(usage: NodeJS.CpuUsage): number {
  return (usage.user + usage.system) / 1e6;
}

function dirtyBytes(): number {
  try {
    const match = /^Dirty:\s+(\d+) kB/m.exec(readFileSync('/proc/meminfo', 'utf8'));
    return match?.[1] !== undefined ? Number(match[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

/**
 * Flushes dirty pages left by the previous step (the engine phase writes GBs)
 * so that a timed step does not pay for its predecessor's writeback: on ext4,
 * every fsync (the spool syncs each segment) waits for a journal commit that
 * can include other files' data.
 */
function settleDisk(): void {
  const before = dirtyBytes();
  const t0 = performance.now();
  try {
    execFileSync('sync', [], { timeout: 120_000 });
  } catch (err) {
    log(`sync failed: ${err instanceof Error ? err.message : String(err)}`);
  }
  const ms = performance.now() - t0;
  if (ms > 500) log(`disk: flushed ${mib(before)} of dirty pages in ${(ms / 1000).toFixed(1)} s before the next timed step`);
}

async function count(collector: Collector, table = 'otel_traces'): Promise<number> {
  const rows = await collector.store.query<{ n: string }>(`SELECT count() AS n FROM ${table}`);
  return Number(rows[0]?.n ?? 0);
}

// ---------------------------------------------------------------------------
// Per-thread CPU time from /proc (chDB's engine threads are invisible to a JS profile)

const CLOCK_TICKS = ((): number => {
  try {
    return Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;
  } catch {
    return 100;
  }
})();

/** CPU seconds all processes on the machine spent busy so far (/proc/stat), to tell how much else ran during a window. */
function machineBusySeconds(): number {
  try {
    const line = readFileSync('/proc/stat', 'utf8').split('\n', 1)[0] ?? '';
    const f = line.trim().split(/\s+/).slice(1).map(Number);
    // user nice system idle iowait irq softirq steal
    const busy = (f[0] ?? 0) + (f[1] ?? 0) + (f[2] ?? 0) + (f[5] ?? 0) + (f[6] ?? 0) + (f[7] ?? 0);
    return busy / CLOCK_TICKS;
  } catch {
    return Number.NaN;
  }
}

type ThreadTimes = Map<number, { name: string; seconds: number }>;

function threadTimes(): ThreadTimes {
  const out: ThreadTimes = new Map();
  let tids: string[];
  try {
    tids = readdirSync('/proc/self/task');
  } catch {
    return out;
  }
  for (const tid of tids) {
    try {
      const stat = readFileSync(`/proc/self/task/${tid}/stat`, 'utf8');
      const close = stat.lastIndexOf(')');
      const name = stat.slice(stat.indexOf('(') + 1, close);
      const fields = stat.slice(close + 2).split(' ');
      // Fields 14 and 15 of stat (utime, stime); fields[0] is field 3.
      const ticks = Number(fields[11]) + Number(fields[12]);
      out.set(Number(tid), { name, seconds: ticks / CLOCK_TICKS });
    } catch {
      // the thread exited between readdir and read
    }
  }
  return out;
}

/** What the thread names seen in this process are (Node names its helpers `node`; ClickHouse names threads by pool). */
const THREAD_ROLES: ReadonlyMap<string, string> = new Map([
  ['node', 'node: V8 platform workers (concurrent GC, compiler) and the libuv pool (fs writes, fsync)'],
  ['ThreadPool', 'ThreadPool: ClickHouse global pool (INSERT parsing, views, part writing, queries)'],
  ['QueryPipelineEx', 'QueryPipelineEx: ClickHouse query pipeline'],
  ['BgSchPool', 'BgSchPool: ClickHouse background schedule pool'],
  ['MergeMutate', 'MergeMutate: ClickHouse background merges'],
  ['MemoryWorker', 'MemoryWorker: ClickHouse memory tracker'],
  ['v8:ProfEvntProc', 'v8:ProfEvntProc: the CPU profiler itself'],
]);

interface ThreadGroup {
  name: string;
  threads: number;
  seconds: number;
}

/** CPU seconds per thread name over a window; what threads that exited used is the remainder of the process total. */
function threadDelta(before: ThreadTimes, after: ThreadTimes, processSeconds: number): ThreadGroup[] {
  const groups = new Map<string, ThreadGroup>();
  let sum = 0;
  for (const [tid, now] of after) {
    const seconds = now.seconds - (before.get(tid)?.seconds ?? 0);
    if (seconds <= 0) continue;
    sum += seconds;
    // Group pools: "QueryPipelineEx", "node", "V8 DefaultWorke" ... digits vary per thread.
    const base = now.name.replace(/[\d_-]+$/, '') || now.name;
    const name = tid === process.pid ? 'main (JavaScript, libuv loop)' : (THREAD_ROLES.get(base) ?? base);
    const group = groups.get(name) ?? { name, threads: 0, seconds: 0 };
    group.threads++;
    group.seconds += seconds;
    groups.set(name, group);
  }
  const rest = processSeconds - sum;
  if (rest > 0.05) groups.set('(threads that exited, and rounding)', { name: '(threads that exited, and rounding)', threads: 0, seconds: rest });
  return [...groups.values()].sort((a, b) => b.seconds - a.seconds);
}

// ---------------------------------------------------------------------------
// Machine

interface Machine {
  cpu: string;
  cores: number;
  memory: string;
  kernel: string;
  node: string;
  chdb: string;
  clickhouse: string;
  grpc: string;
}

function packageVersion(name: string): string {
  try {
    const require = createRequire(import.meta.url);
    let dir = path.dirname(require.resolve(name));
    for (let i = 0; i < 5; i++) {
      try {
        const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string; version?: string };
        if (pkg.name === name && pkg.version !== undefined) return pkg.version;
      } catch {
        // keep walking up
      }
      dir = path.dirname(dir);
    }
  } catch {
    // not resolvable
  }
  return 'unknown';
}

async function machine(collector: Collector): Promise<Machine> {
  let cpu = os.cpus()[0]?.model ?? 'unknown';
  try {
    const model = /^model name\s*:\s*(.+)$/m.exec(readFileSync('/proc/cpuinfo', 'utf8'));
    if (model?.[1] !== undefined) cpu = model[1].trim();
  } catch {
    // not Linux
  }
  const version = await collector.store.query<{ v: string }>('SELECT version() AS v');
  return {
    cpu,
    cores: os.availableParallelism(),
    memory: `${fmt(os.totalmem() / 1024 ** 3, 1)} GiB`,
    kernel: `${os.type()} ${os.release()}`,
    node: process.version,
    chdb: packageVersion('chdb'),
    clickhouse: version[0]?.v ?? 'unknown',
    grpc: packageVersion('@grpc/grpc-js'),
  };
}

// ---------------------------------------------------------------------------
// Phase 2: the engine's own rate

interface EngineVariant {
  /** What was loaded and how. */
  label: string;
  format: string;
  table: string;
  fileBytes: number;
  seconds: number;
  cpuSeconds: number;
}

interface EngineResult {
  rows: number;
  buildSeconds: number;
  /** The collector's own path: the headline limit the end-to-end rate is compared with. */
  file: EngineVariant;
  raw: EngineVariant & { chunks: number };
  /** Same rows, other tables or formats: what the write path could reach. */
  variants: EngineVariant[];
}

async function truncateTraceTables(collector: Collector): Promise<void> {
  for (const table of TRACE_TABLES) await collector.store.command(`TRUNCATE TABLE ${table}`);
}

/** The empty Events/Links columns every span without events or links carries in its JSON row. */
const EMPTY_NESTED =
  /,"Events\.Timestamp":\[\],"Events\.Name":\[\],"Events\.Attributes":\[\],"Events\.AttributeTypes":\[\],"Links\.TraceId":\[\],"Links\.SpanId":\[\],"Links\.TraceState":\[\],"Links\.Attributes":\[\],"Links\.AttributeTypes":\[\]/g;

/** `INSERT ... SELECT FROM file()` with the settings store.insertFile uses, for formats and tables it does not cover. */
async function insertFile(collector: Collector, table: string, file: string, format: string, token: string): Promise<void> {
  await collector.store.command(
    `INSERT INTO ${table} SETTINGS insert_deduplication_token = ${sqlString(token)}, deduplicate_blocks_in_dependent_materialized_views = 1, ` +
      `input_format_skip_unknown_fields = 0, use_structure_from_insertion_table_in_table_functions = 1 ` +
      `SELECT * FROM file(${sqlString(file)}, ${format})`,
  );
}

async function timed(what: string, run: () => Promise<void>): Promise<{ seconds: number; cpuSeconds: number }> {
  const cpu0 = process.cpuUsage();
  const t0 = performance.now();
  await withTimeout(run(), QUERY_TIMEOUT_MS, what);
  return { seconds: (performance.now() - t0) / 1000, cpuSeconds: cpuSeconds(process.cpuUsage(cpu0)) };
}

async function expectRows(collector: Collector, table: string, rows: number, what: string): Promise<void> {
  const n = await count(collector, table);
  if (n !== rows) throw new Error(`${what}: expected ${rows} rows in ${table}, found ${n}`);
}

function fileSize(file: string): number {
  return statSync(file).size;
}

async function engineRate(collector: Collector, dir: string, requestedRows: number): Promise<EngineResult> {
  const requests = Math.ceil(requestedRows / SPANS_PER_REQUEST);
  const rows = requests * SPANS_PER_REQUEST;
  const spoolFile = path.join(dir, 'engine-rows.spool.rowbinary');
  const jsonFile = path.join(dir, 'engine-rows.jsonl');
  const trimmedFile = path.join(dir, 'engine-rows-trimmed.jsonl');
  const t0 = performance.now();
  const templates = buildTemplates(DEFAULT_TEMPLATES);
  const factory = new RequestFactory();
  const spoolFd = openSync(spoolFile, 'w');
  const writer = new RowBinaryWriter();
  const fd = openSync(jsonFile, 'w');
  const trimmedFd = openSync(trimmedFile, 'w');
  const rawChunks: Buffer[] = [];
  let pending: Buffer[] = [];
  let pendingRows = 0;
  const baseMs = Date.now() - 60_000;
  try {
    for (let i = 0; i < requests; i++) {
      const decoded = decodeTracesProto(factory.next(templates[i % templates.length]!, baseMs + i));
      if (decoded.rejected !== 0 || decoded.items.length !== SPANS_PER_REQUEST) {
        throw new Error(`engine rows: request ${i} decoded to ${decoded.items.length} spans, ${decoded.rejected} rejected: ${decoded.errors.join('; ')}`);
      }
      for (const span of decoded.items) writeSpanRowBinary(writer, span);
      writeSync(spoolFd, writer.take());
      let chunk = '';
      for (const span of decoded.items) chunk += spanRow(span);
      const buffer = Buffer.from(chunk, 'utf8');
      writeSync(fd, buffer);
      writeSync(trimmedFd, chunk.replace(EMPTY_NESTED, ''));
      pending.push(buffer);
      pendingRows += SPANS_PER_REQUEST;
      if (pendingRows >= ENGINE_RAW_CHUNK_ROWS || i === requests - 1) {
        rawChunks.push(Buffer.concat(pending));
        pending = [];
        pendingRows = 0;
      }
    }
  } finally {
    closeSync(spoolFd);
    closeSync(fd);
    closeSync(trimmedFd);
  }
  const buildSeconds = (performance.now() - t0) / 1000;
  log(`engine: ${fmt(rows)} rows, ${mib(fileSize(spoolFile))} of the spool's RowBinary and ${mib(fileSize(jsonFile))} of JSONEachRow built in ${buildSeconds.toFixed(1)} s`);
  const token = randomBytes(8).toString('hex');
  const report = (v: EngineVariant): EngineVariant => {
    log(`engine: ${v.label}: ${fmt(rows / v.seconds)} rows/s (${v.seconds.toFixed(2)} s, ${v.cpuSeconds.toFixed(2)} CPU s)`);
    return v;
  };

  // The collector's own path, through the collector's own method.
  await truncateTraceTables(collector);
  settleDisk();
  const fileTime = await timed('engine file insert', () => collector.store.insertFile('otel_traces', spoolFile, `bench-engine-file-${token}`));
  await expectRows(collector, 'otel_traces', rows, 'engine file insert');
  const file = report({ label: 'spool RowBinary file, otel_traces with its views (the collector\'s path)', format: 'RowBinary', table: 'otel_traces', fileBytes: fileSize(spoolFile), ...fileTime });

  // The same rows as the engine's binary formats, written by the engine from what it just stored.
  const rowBinaryFile = path.join(dir, 'engine-rows.rowbinary');
  const nativeFile = path.join(dir, 'engine-rows.native');
  await collector.store.command(`INSERT INTO FUNCTION file(${sqlString(rowBinaryFile)}, RowBinary) SELECT * FROM otel_traces`);
  await collector.store.command(`INSERT INTO FUNCTION file(${sqlString(nativeFile)}, Native) SELECT * FROM otel_traces`);

  await truncateTraceTables(collector);
  settleDisk();
  let t = await timed('engine rawInsert', async () => {
    for (let i = 0; i < rawChunks.length; i++) await collector.store.insertJsonEachRow('otel_traces', rawChunks[i]!, `bench-engine-raw-${token}-${i}`);
  });
  await expectRows(collector, 'otel_traces', rows, 'engine rawInsert');
  const raw = {
    ...report({ label: 'chDB rawInsert of in-memory JSONEachRow', format: 'JSONEachRow', table: 'otel_traces', fileBytes: rawChunks.reduce((n, b) => n + b.length, 0), ...t }),
    chunks: rawChunks.length,
  };
  rawChunks.length = 0;

  // Tables like otel_traces without the views, and without the views and skip indexes.
  const ddl = (await collector.store.query<{ statement: string }>('SHOW CREATE TABLE otel_traces'))[0]?.statement ?? '';
  const createAs = (name: string, withIndexes: boolean): string => {
    let sql = ddl.replace(/CREATE TABLE\s+\S*otel_traces\b/, `CREATE TABLE ${name}`);
    if (!withIndexes) sql = sql.replace(/,\s*INDEX [^\n]*?GRANULARITY \d+/g, '');
    return sql;
  };
  if (!/CREATE TABLE/.test(ddl)) throw new Error('SHOW CREATE TABLE otel_traces gave no statement');
  await collector.store.command(createAs('bench_traces_no_views', true));
  await collector.store.command(createAs('bench_traces_no_views_no_indexes', false));

  const variants: EngineVariant[] = [];
  const runVariant = async (label: string, table: string, variantFile: string, format: string): Promise<void> => {
    if (table === 'otel_traces') await truncateTraceTables(collector);
    else await collector.store.command(`TRUNCATE TABLE ${table}`);
    settleDisk();
    t = await timed(label, () => insertFile(collector, table, variantFile, format, `bench-engine-${format}-${table}-${token}`));
    await expectRows(collector, table, rows, label);
    variants.push(report({ label, format, table, fileBytes: fileSize(variantFile), ...t }));
  };
  await runVariant('JSONEachRow file, otel_traces with its views (the collector\'s earlier path)', 'otel_traces', jsonFile, 'JSONEachRow');
  await runVariant('JSONEachRow file, no views', 'bench_traces_no_views', jsonFile, 'JSONEachRow');
  await runVariant('JSONEachRow file, no views and no skip indexes', 'bench_traces_no_views_no_indexes', jsonFile, 'JSONEachRow');
  await runVariant('JSONEachRow file without the empty Events/Links arrays, otel_traces with its views', 'otel_traces', trimmedFile, 'JSONEachRow');
  await runVariant('RowBinary file, otel_traces with its views', 'otel_traces', rowBinaryFile, 'RowBinary');
  await runVariant('Native file, otel_traces with its views', 'otel_traces', nativeFile, 'Native');
  await runVariant('RowBinary file, no views and no skip indexes', 'bench_traces_no_views_no_indexes', rowBinaryFile, 'RowBinary');

  await collector.store.command('DROP TABLE bench_traces_no_views');
  await collector.store.command('DROP TABLE bench_traces_no_views_no_indexes');
  await truncateTraceTables(collector);
  for (const f of [spoolFile, jsonFile, trimmedFile, rowBinaryFile, nativeFile]) rmSync(f, { force: true });
  return { rows, buildSeconds, file, raw, variants };
}

// ---------------------------------------------------------------------------
// Phase 3: end to end

interface EndToEndResult {
  spans: number;
  storedBefore: number;
  wallSeconds: number;
  cpuSeconds: number;
  ackSeconds: number;
  generator: GeneratorReport;
  requestBytes: number;
  threads: ThreadGroup[];
  /** CPU seconds the machine spent busy outside the collector and generator processes during the window (/proc/stat): other processes, and kernel work such as writeback, journaling and loopback softirqs. */
  otherCpuSeconds: number;
  peakSpoolFiles: number;
  peakSpoolBytes: number;
  refusedBefore: number;
  refusedAfter: number;
  segmentsSealed: number;
  loadedFiles: number;
  loaderFailures: number;
  profile: CpuProfile | undefined;
}

class GeneratorProcess {
  readonly child: ChildProcess;
  readonly #messages: GeneratorMessage[] = [];
  #exit: { code: number | null; signal: NodeJS.Signals | null } | undefined;
  #wake: (() => void) | undefined;

  constructor(address: string, spans: number, concurrency: number) {
    this.child = fork(GENERATOR, ['--address', address, '--spans', String(spans), '--concurrency', String(concurrency)], {
      // Not the runner's flags (--cpu-prof would profile the generator too).
      execArgv: [],
      stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
    });
    this.child.on('message', (message: GeneratorMessage) => {
      this.#messages.push(message);
      this.#wake?.();
    });
    this.child.on('exit', (code, signal) => {
      this.#exit = { code, signal };
      this.#wake?.();
    });
  }

  /** The next message of `type` if one has arrived; throws if the generator reported an error or died. */
  take<K extends GeneratorMessage['type']>(type: K): Extract<GeneratorMessage, { type: K }> | undefined {
    const error = this.#messages.find((m) => m.type === 'error');
    if (error !== undefined && error.type === 'error') throw new Error(`generator: ${error.message}`);
    const index = this.#messages.findIndex((m) => m.type === type);
    if (index >= 0) return this.#messages.splice(index, 1)[0] as Extract<GeneratorMessage, { type: K }>;
    if (this.#exit !== undefined) throw new Error(`generator exited (code ${this.#exit.code}, signal ${this.#exit.signal}) before '${type}'`);
    return undefined;
  }

  /** Resolves on the next message or exit, or after `ms`. */
  wait(ms: number): Promise<void> {
    return new Promise<void>((resolve) => {
      const timer = setTimeout(() => {
        this.#wake = undefined;
        resolve();
      }, ms);
      this.#wake = () => {
        this.#wake = undefined;
        clearTimeout(timer);
        resolve();
      };
    });
  }

  async waitFor<K extends GeneratorMessage['type']>(type: K, timeoutMs: number): Promise<Extract<GeneratorMessage, { type: K }>> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const message = this.take(type);
      if (message !== undefined) return message;
      if (Date.now() > deadline) throw new Error(`generator: no '${type}' within ${timeoutMs} ms`);
      await this.wait(Math.min(1_000, Math.max(1, deadline - Date.now())));
    }
  }

  go(): void {
    this.child.send({ type: 'go' });
  }

  /** Waits up to `ms` for a clean exit, then kills it. */
  async stop(ms: number): Promise<void> {
    const deadline = Date.now() + ms;
    while (this.#exit === undefined && Date.now() < deadline) await this.wait(Math.max(1, deadline - Date.now()));
    if (this.#exit === undefined) {
      this.child.kill('SIGKILL');
      await this.wait(2_000);
    }
  }
}

let liveGenerator: GeneratorProcess | undefined;

async function endToEnd(collector: Collector, spans: number, concurrency: number, profiled: boolean): Promise<EndToEndResult> {
  const storedBefore = await count(collector);
  const generator = new GeneratorProcess(`127.0.0.1:${collector.grpc.port}`, spans, concurrency);
  liveGenerator = generator;
  try {
    const ready = await generator.waitFor('ready', READY_TIMEOUT_MS);
    const planned = ready.spans;
    settleDisk();
    log(`end to end: generator ready (${ready.templates} templates of ${fmt(ready.requestBytes)} bytes, built in ${fmt(ready.buildMs)} ms); sending ${fmt(planned)} spans`);
    let session: Session | undefined;
    if (profiled) {
      session = new Session();
      session.connect();
      await session.post('Profiler.enable');
      await session.post('Profiler.setSamplingInterval', { interval: 500 });
      await session.post('Profiler.start');
    }
    const refusedBefore = collector.pipeline.stats.requestsRefused;
    const sealedBefore = collector.pipeline.stats.segmentsSealed;
    const loadedBefore = collector.loader.stats.loadedFiles;
    const failuresBefore = collector.loader.stats.failedAttempts;
    const threads0 = threadTimes();
    const busy0 = machineBusySeconds();
    const cpu0 = process.cpuUsage();
    const t0 = performance.now();
    generator.go();

    // Generous bound: 60 s plus 1 s per 2,000 spans (a collector 50x slower than the goal still finishes).
    const deadline = Date.now() + 60_000 + (planned / 2_000) * 1_000;
    let report: GeneratorReport | undefined;
    let ackSeconds = 0;
    let target = storedBefore + planned;
    let stored = storedBefore;
    let peakSpoolFiles = 0;
    let peakSpoolBytes = 0;
    let lastLog = t0;
    for (;;) {
      if (report === undefined) {
        const done = generator.take('done');
        if (done !== undefined) {
          report = done.report;
          ackSeconds = (performance.now() - t0) / 1000;
          target = storedBefore + report.spansSent - report.spansRejected;
        }
      }
      stored = await count(collector);
      peakSpoolFiles = Math.max(peakSpoolFiles, collector.spool.fileCount);
      peakSpoolBytes = Math.max(peakSpoolBytes, collector.spool.bytes);
      if (report !== undefined && stored >= target) break;
      if (stored > target) throw new Error(`otel_traces holds ${stored} rows, more than the ${target} expected`);
      if (Date.now() > deadline) throw new Error(`end to end: ${stored - storedBefore} of ${target - storedBefore} spans stored when the deadline passed`);
      const now = performance.now();
      if (now - lastLog >= 5_000) {
        lastLog = now;
        const elapsed = (now - t0) / 1000;
        log(`  ${elapsed.toFixed(0)} s: ${fmt(stored - storedBefore)} stored (${fmt((stored - storedBefore) / elapsed)}/s), spool ${collector.spool.fileCount} files`);
      }
      await sleep(POLL_MS);
    }
    const wallSeconds = (performance.now() - t0) / 1000;
    const cpu = cpuSeconds(process.cpuUsage(cpu0));
    const busy = machineBusySeconds() - busy0;
    const threads = threadDelta(threads0, threadTimes(), cpu);
    let profile: CpuProfile | undefined;
    if (session !== undefined) {
      const stopped = (await session.post('Profiler.stop')) as { profile: CpuProfile };
      profile = stopped.profile;
      await session.post('Profiler.disable');
      session.disconnect();
    }
    await generator.stop(10_000);
    return {
      spans: stored - storedBefore,
      storedBefore,
      wallSeconds,
      cpuSeconds: cpu,
      ackSeconds,
      generator: report,
      requestBytes: ready.requestBytes,
      threads,
      otherCpuSeconds: Math.max(0, busy - cpu - (report.cpuUserMs + report.cpuSystemMs) / 1000),
      peakSpoolFiles,
      peakSpoolBytes,
      refusedBefore,
      refusedAfter: collector.pipeline.stats.requestsRefused,
      segmentsSealed: collector.pipeline.stats.segmentsSealed - sealedBefore,
      loadedFiles: collector.loader.stats.loadedFiles - loadedBefore,
      loaderFailures: collector.loader.stats.failedAttempts - failuresBefore,
      profile,
    };
  } finally {
    await generator.stop(1_000);
    liveGenerator = undefined;
  }
}

// ---------------------------------------------------------------------------
// Phases 4 and 6: trace by id

interface LookupResult {
  label: string;
  storedSpans: number;
  parts: number;
  lookups: number;
  p50Ms: number;
  p99Ms: number;
  maxMs: number;
  meanMs: number;
}

async function activeParts(collector: Collector, table: string): Promise<number> {
  const rows = await collector.store.query<{ n: string }>(
    `SELECT count() AS n FROM system.parts WHERE active AND database = currentDatabase() AND table = {table:String}`,
    { table },
  );
  return Number(rows[0]?.n ?? 0);
}

async function traceLookups(collector: Collector, lookups: number, label: string): Promise<LookupResult> {
  const ids = await collector.store.query<{ TraceId: string }>(
    'SELECT TraceId FROM otel_traces_trace_id_ts GROUP BY TraceId ORDER BY rand() LIMIT {n:UInt32}',
    { n: lookups + LOOKUP_WARMUP },
  );
  if (ids.length < lookups + LOOKUP_WARMUP) throw new Error(`trace by id: only ${ids.length} trace ids stored`);
  const storedSpans = await count(collector);
  const parts = await activeParts(collector, 'otel_traces');
  const base = `http://127.0.0.1:${collector.apiPort}/api/v1/traces/`;
  const times: number[] = [];
  for (let i = 0; i < ids.length; i++) {
    const id = ids[i]!.TraceId;
    const t0 = performance.now();
    const res = await withTimeout(fetch(base + id), 30_000, `GET /api/v1/traces/${id}`);
    const text = await res.text();
    const ms = performance.now() - t0;
    if (res.status !== 200) throw new Error(`GET /api/v1/traces/${id}: ${res.status} ${text.slice(0, 200)}`);
    const body = JSON.parse(text) as { traceId: string; spans: unknown[] };
    if (body.traceId !== id || body.spans.length !== SPANS_PER_TRACE) {
      throw new Error(`GET /api/v1/traces/${id}: ${body.spans.length} spans, expected ${SPANS_PER_TRACE}`);
    }
    if (i >= LOOKUP_WARMUP) times.push(ms);
  }
  times.sort((a, b) => a - b);
  const result: LookupResult = {
    label,
    storedSpans,
    parts,
    lookups: times.length,
    p50Ms: quantile(times, 0.5),
    p99Ms: quantile(times, 0.99),
    maxMs: times[times.length - 1] ?? Number.NaN,
    meanMs: times.reduce((a, b) => a + b, 0) / times.length,
  };
  log(`trace by id (${label}): p50 ${result.p50Ms.toFixed(1)} ms, p99 ${result.p99Ms.toFixed(1)} ms, max ${result.maxMs.toFixed(1)} ms over ${result.lookups} lookups, ${parts} parts`);
  return result;
}

// ---------------------------------------------------------------------------
// Phase 5: bytes on disk

interface TableSize {
  table: string;
  rows: number;
  bytes: number;
  parts: number;
}

interface ColumnSize {
  name: string;
  compressed: number;
  uncompressed: number;
}

interface DiskResult {
  spans: number;
  optimizeSeconds: number;
  tables: TableSize[];
  traceBytes: number;
  allBytes: number;
  columns: ColumnSize[];
  indexes: ColumnSize[];
}

async function diskUsage(collector: Collector): Promise<DiskResult> {
  const tables = await collector.store.query<{ name: string }>(
    "SELECT name FROM system.tables WHERE database = currentDatabase() AND engine LIKE '%MergeTree' ORDER BY name",
  );
  const t0 = performance.now();
  for (const { name } of tables) {
    await withTimeout(collector.store.command(`OPTIMIZE TABLE ${name} FINAL`), QUERY_TIMEOUT_MS, `OPTIMIZE TABLE ${name} FINAL`);
  }
  const optimizeSeconds = (performance.now() - t0) / 1000;
  const sizes = await collector.store.query<{ table: string; rows: string; bytes: string; parts: string }>(
    `SELECT table, sum(rows) AS rows, sum(bytes_on_disk) AS bytes, count() AS parts
     FROM system.parts WHERE active AND database = currentDatabase()
     GROUP BY table ORDER BY sum(bytes_on_disk) DESC`,
  );
  const columns = await collector.store.query<{ name: string; compressed: string; uncompressed: string }>(
    `SELECT name, data_compressed_bytes AS compressed, data_uncompressed_bytes AS uncompressed
     FROM system.columns WHERE database = currentDatabase() AND table = 'otel_traces'
     ORDER BY data_compressed_bytes DESC`,
  );
  const indexes = await collector.store.query<{ name: string; compressed: string; uncompressed: string }>(
    `SELECT name, data_compressed_bytes AS compressed, data_uncompressed_bytes AS uncompressed
     FROM system.data_skipping_indices WHERE database = currentDatabase() AND table = 'otel_traces'
     ORDER BY data_compressed_bytes DESC`,
  );
  const spans = await count(collector);
  const tableSizes = sizes.map((s) => ({ table: s.table, rows: Number(s.rows), bytes: Number(s.bytes), parts: Number(s.parts) }));
  const traceBytes = tableSizes.find((s) => s.table === 'otel_traces')?.bytes ?? 0;
  const allBytes = tableSizes.reduce((sum, s) => sum + s.bytes, 0);
  log(`disk: ${fmt(traceBytes / spans, 1)} bytes/span in otel_traces, ${fmt(allBytes / spans, 1)} in all tables (OPTIMIZE FINAL took ${optimizeSeconds.toFixed(1)} s)`);
  const toSize = (c: { name: string; compressed: string; uncompressed: string }): ColumnSize => ({
    name: c.name,
    compressed: Number(c.compressed),
    uncompressed: Number(c.uncompressed),
  });
  return { spans, optimizeSeconds, tables: tableSizes, traceBytes, allBytes, columns: columns.map(toSize), indexes: indexes.map(toSize) };
}

// ---------------------------------------------------------------------------
// Results

interface Results {
  args: Args;
  command: string;
  date: string;
  machine: Machine;
  engine: EngineResult;
  e2e: EndToEndResult;
  lookupsFresh: LookupResult;
  disk: DiskResult;
  lookupsMerged: LookupResult;
  profiled: EndToEndResult | undefined;
  profileFile: string | undefined;
  totalSeconds: number;
}

function met(ok: boolean): string {
  return ok ? '**met**' : '**not met**';
}

function threadTable(groups: readonly ThreadGroup[], wallSeconds: number, cpu: number): string {
  const lines = ['| thread (name) | threads | CPU s | share of process CPU | cores busy |', '| --- | ---: | ---: | ---: | ---: |'];
  for (const g of groups.filter((x) => x.seconds >= 0.05 || x.seconds / cpu > 0.005)) {
    lines.push(`| ${g.name} | ${g.threads} | ${g.seconds.toFixed(2)} | ${((g.seconds / cpu) * 100).toFixed(1)} % | ${(g.seconds / wallSeconds).toFixed(2)} |`);
  }
  return lines.join('\n');
}

function renderResults(r: Results): string {
  const e = r.e2e;
  const spansPerSecond = e.spans / e.wallSeconds;
  const perCore = e.spans / e.cpuSeconds;
  const engineRate = r.engine.rows / r.engine.file.seconds;
  const ratio = spansPerSecond / engineRate;
  const tracePerSpan = r.disk.traceBytes / r.disk.spans;
  const allPerSpan = r.disk.allBytes / r.disk.spans;
  const worstP99 = Math.max(r.lookupsFresh.p99Ms, r.lookupsMerged.p99Ms);
  const enoughSpans = r.lookupsFresh.storedSpans >= GOALS.minSpansForLookups;
  const g = e.generator;
  const genCpu = (g.cpuUserMs + g.cpuSystemMs) / 1000;
  const out: string[] = [];
  out.push('# Collector benchmark');
  out.push('');
  out.push(`Run on ${r.date} with \`${r.command}\` (${fmt(r.totalSeconds, 0)} s in all). Written by \`bench/collector/run.ts\`; do not edit by hand, run it again.`);
  out.push('');
  out.push('## Machine');
  out.push('');
  out.push('| | |');
  out.push('| --- | --- |');
  out.push(`| CPU | ${r.machine.cpu} |`);
  out.push(`| cores | ${r.machine.cores} |`);
  out.push(`| memory | ${r.machine.memory} |`);
  out.push(`| kernel | ${r.machine.kernel} |`);
  out.push(`| Node.js | ${r.machine.node} |`);
  out.push(`| chdb (npm) | ${r.machine.chdb}, ClickHouse engine ${r.machine.clickhouse} |`);
  out.push(`| @grpc/grpc-js | ${r.machine.grpc} |`);
  out.push('');
  out.push(
    `The machine has ${r.machine.cores} cores, and the generator (a separate Node process) and the collector share them. ` +
      'Wall-clock rates are therefore what one small box does with sender and backend on it; the per-core figure divides by the CPU time ' +
      'the collector process itself used (its JavaScript thread, libuv and V8 helper threads, and chDB\'s engine threads, all in-process), ' +
      'so it does not count the generator.',
  );
  out.push('');
  const otherCores = r.e2e.otherCpuSeconds / r.e2e.wallSeconds;
  if (otherCores > 0.6) {
    out.push(
      `**Note:** the machine spent ${otherCores.toFixed(2)} cores on average outside the collector and the generator during the end-to-end window ` +
        '(from /proc/stat): other processes were running, so the wall-clock figures are lower than this box gives on its own; the per-core figure is less affected.',
    );
    out.push('');
  }
  out.push('## Goals');
  out.push('');
  out.push('| goal (issue 2) | measured | |');
  out.push('| --- | --- | --- |');
  out.push(`| ≥ ${fmt(GOALS.spansPerCoreSecond)} spans/s per core, end to end | ${fmt(perCore)} spans per collector CPU-second | ${met(perCore >= GOALS.spansPerCoreSecond)} |`);
  out.push(`| ≥ ${GOALS.engineRatio} of the engine's own rate | ${fmt(spansPerSecond)} / ${fmt(engineRate)} rows/s = ${ratio.toFixed(2)} | ${met(ratio >= GOALS.engineRatio)} |`);
  out.push(`| ≤ ${GOALS.bytesPerSpan} bytes per span on disk after merges (all tracemesh tables) | ${fmt(allPerSpan, 1)} bytes (otel_traces alone ${fmt(tracePerSpan, 1)}) | ${met(allPerSpan <= GOALS.bytesPerSpan)} |`);
  out.push(
    `| trace-by-id p99 ≤ ${GOALS.traceByIdP99Ms} ms with ≥ ${fmt(GOALS.minSpansForLookups)} spans stored | ${worstP99.toFixed(1)} ms (worse of the two passes), ${fmt(r.lookupsFresh.storedSpans)} spans stored | ${enoughSpans ? met(worstP99 <= GOALS.traceByIdP99Ms) : '**not measured at the required size** (run without --spans or with ≥ 1000000)'} |`,
  );
  out.push('');
  out.push('Published figures for other backends, for comparison (as quoted in issue 2; different hardware and span shapes):');
  out.push('');
  for (const c of COMPARISONS) out.push(`- ${c.system}: ${c.figure}.`);
  out.push(`- tracemesh here: ${fmt(perCore)} spans/s per core, ${fmt(spansPerSecond)} spans/s on ${r.machine.cores} cores shared with the sender.`);
  out.push('');
  out.push('## Workload');
  out.push('');
  out.push(
    `OTLP/gRPC protobuf \`ExportTraceServiceRequest\`s of ${SPANS_PER_REQUEST} spans (${fmt(e.requestBytes)} bytes each, no compression), ` +
      `${DEFAULT_TEMPLATES} pre-encoded templates; every send copies one and patches in fresh random trace, span and parent ids and current timestamps. ` +
      `A request holds 64 traces of ${SPANS_PER_TRACE} spans over 4 services (frontend → productpage → reviews → ratings → mysql): ` +
      'a SERVER and a CLIENT span per service, so the service graph gets paired edges, an entry edge from `user` and a virtual `mysql` edge. ' +
      `${ATTRIBUTES_PER_SPAN} span attributes each (low-cardinality strings, ints, a double, \`enduser.id\` of cardinality 1,000), ` +
      '9 resource attributes per service, durations 1–300 ms, about 2 % of traces with error statuses. ' +
      `The generator keeps ${r.args.concurrency} calls in flight and retries UNAVAILABLE after 50 ms.`,
  );
  out.push('');
  out.push(
    `The collector runs with its defaults (\`DEFAULT_INGEST_OPTIONS\`: segments sealed every ${DEFAULT_INGEST_OPTIONS.flushIntervalMs} ms or ${fmt(DEFAULT_INGEST_OPTIONS.maxSegmentRows)} rows, spool fsync, \`INSERT … SELECT FROM file()\`), ` +
      'inside the runner process. Before every timed step the runner runs `sync`, so no step pays for the writeback of the one before it.',
  );
  out.push('');
  out.push('## 1. The engine\'s own ingest rate (same rows, no collector in the way)');
  out.push('');
  out.push(
    `${fmt(r.engine.rows)} otel_traces rows made by the collector's own encoders (\`writeSpanRowBinary\`, the spool format, and \`spanRow\` for JSON) from decoded generator requests ` +
      `(${mib(r.engine.file.fileBytes)} of the spool's RowBinary, ${fmt(r.engine.file.fileBytes / r.engine.rows)} bytes per row), ` +
      'loaded into an idle collector\'s store in one statement each. The first row is the limit the end-to-end figure is compared with: ' +
      "the collector's own `store.insertFile` (`INSERT INTO otel_traces (<columns>) SETTINGS <the collector's settings> SELECT * FROM file(…, RowBinary, <structure>)`), " +
      'into the real otel_traces, whose materialized views fill the trace id index and the RED aggregates in the same insert.',
  );
  out.push('');
  out.push('| path | bytes per row | rows/s (wall) | rows per CPU-second | time |');
  out.push('| --- | ---: | ---: | ---: | ---: |');
  const variantRow = (v: EngineVariant, label: string): string =>
    `| ${label} | ${fmt(v.fileBytes / r.engine.rows)} | ${fmt(r.engine.rows / v.seconds)} | ${fmt(r.engine.rows / v.cpuSeconds)} | ${v.seconds.toFixed(2)} s |`;
  out.push(variantRow(r.engine.file, `**${r.engine.file.label}**`));
  out.push(variantRow(r.engine.raw, `${r.engine.raw.label} (\`store.insertJsonEachRow\`, ${r.engine.raw.chunks} payload${r.engine.raw.chunks === 1 ? '' : 's'} of ≤ ${fmt(ENGINE_RAW_CHUNK_ROWS)} rows)`));
  for (const v of r.engine.variants) out.push(variantRow(v, v.label));
  out.push('');
  out.push(
    'The RowBinary and Native files were written by the engine itself (`INSERT INTO FUNCTION file(…)` from the stored rows); they show what the ' +
      'engine does with the same rows when it does not have to parse JSON. The tables without views or skip indexes are copies of otel_traces ' +
      '(same columns, codecs, ORDER BY) made for this phase and dropped after it.',
  );
  out.push('');
  out.push('## 2. End to end: OTLP/gRPC in, rows committed');
  out.push('');
  out.push('| | |');
  out.push('| --- | ---: |');
  out.push(`| spans | ${fmt(e.spans)} (${fmt(g.requests)} requests) |`);
  out.push(`| wall time, first send → count() of otel_traces reaches the total | ${e.wallSeconds.toFixed(2)} s |`);
  out.push(`| **spans/s, committed** | **${fmt(spansPerSecond)}** |`);
  out.push(`| spans/s, acknowledged to the sender (first send → last answer, ${e.ackSeconds.toFixed(2)} s) | ${fmt(e.spans / e.ackSeconds)} |`);
  out.push(`| collector process CPU over the window (all threads) | ${e.cpuSeconds.toFixed(2)} s (${(e.cpuSeconds / e.wallSeconds).toFixed(2)} cores busy) |`);
  out.push(`| **spans/s per core** (spans / collector CPU-seconds) | **${fmt(perCore)}** |`);
  out.push(`| ratio to the engine's own rate (${fmt(engineRate)} rows/s) | ${ratio.toFixed(2)} |`);
  out.push(`| generator CPU | ${genCpu.toFixed(2)} s (${(genCpu / e.wallSeconds).toFixed(2)} cores) |`);
  out.push(`| machine CPU outside both processes during the window (other processes; kernel writeback, journaling, loopback softirqs) | ${e.otherCpuSeconds.toFixed(2)} s (${(e.otherCpuSeconds / e.wallSeconds).toFixed(2)} cores) |`);
  out.push(`| export latency seen by the generator, p50 / p99 / max | ${g.latencyP50Ms.toFixed(1)} / ${g.latencyP99Ms.toFixed(1)} / ${g.latencyMaxMs.toFixed(1)} ms |`);
  out.push(`| retries after UNAVAILABLE | ${fmt(g.retries)} (collector refusals: ${fmt(e.refusedAfter - e.refusedBefore)}) |`);
  out.push(`| spans rejected (partial success) | ${fmt(g.spansRejected)} |`);
  out.push(`| segments sealed / spool files loaded / failed loads | ${fmt(e.segmentsSealed)} / ${fmt(e.loadedFiles)} / ${fmt(e.loaderFailures)} |`);
  out.push(`| peak spool backlog | ${e.peakSpoolFiles} files, ${mib(e.peakSpoolBytes)} |`);
  out.push('');
  out.push('Where the collector process spent its CPU during the window, per thread (from /proc/self/task; ClickHouse names its threads by pool):');
  out.push('');
  out.push(threadTable(e.threads, e.wallSeconds, e.cpuSeconds));
  out.push('');
  out.push('## 3. Bytes on disk per span, after merges');
  out.push('');
  out.push(`After \`OPTIMIZE TABLE … FINAL\` on every MergeTree table (${r.disk.optimizeSeconds.toFixed(1)} s), active parts in \`system.parts\`, ${fmt(r.disk.spans)} spans stored:`);
  out.push('');
  out.push('| table | rows | parts | bytes on disk | bytes per stored span |');
  out.push('| --- | ---: | ---: | ---: | ---: |');
  for (const t of r.disk.tables) out.push(`| ${t.table} | ${fmt(t.rows)} | ${t.parts} | ${fmt(t.bytes)} | ${fmt(t.bytes / r.disk.spans, 2)} |`);
  out.push(`| **otel_traces alone** | | | ${fmt(r.disk.traceBytes)} | **${fmt(tracePerSpan, 1)}** |`);
  out.push(`| **all tracemesh tables** | | | ${fmt(r.disk.allBytes)} | **${fmt(allPerSpan, 1)}** |`);
  out.push('');
  out.push('otel_traces by column (compressed bytes per span; the largest first):');
  out.push('');
  out.push('| column | compressed bytes/span | uncompressed bytes/span | ratio |');
  out.push('| --- | ---: | ---: | ---: |');
  const traceRows = r.disk.tables.find((t) => t.table === 'otel_traces')?.rows ?? r.disk.spans;
  for (const c of r.disk.columns.filter((c) => c.compressed > 0).slice(0, 16)) {
    out.push(`| ${c.name} | ${fmt(c.compressed / traceRows, 2)} | ${fmt(c.uncompressed / traceRows, 2)} | ${(c.uncompressed / Math.max(1, c.compressed)).toFixed(1)} |`);
  }
  out.push('');
  if (r.disk.indexes.length > 0) {
    out.push('otel_traces skip indexes:');
    out.push('');
    out.push('| index | compressed bytes/span |');
    out.push('| --- | ---: |');
    for (const c of r.disk.indexes) out.push(`| ${c.name} | ${fmt(c.compressed / traceRows, 2)} |`);
    out.push('');
  }
  out.push('## 4. Trace by id through the query API');
  out.push('');
  out.push(
    `\`GET /api/v1/traces/{id}\` over HTTP on loopback for random stored trace ids (each answer checked: ${SPANS_PER_TRACE} spans), one at a time, ` +
      `after ${LOOKUP_WARMUP} warm-up lookups that are not counted. Timed from the request to the last byte of the body.`,
  );
  out.push('');
  out.push('| when | spans stored | otel_traces parts | lookups | p50 | p99 | max | mean |');
  out.push('| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |');
  for (const l of [r.lookupsFresh, r.lookupsMerged]) {
    out.push(`| ${l.label} | ${fmt(l.storedSpans)} | ${l.parts} | ${l.lookups} | ${l.p50Ms.toFixed(1)} ms | ${l.p99Ms.toFixed(1)} ms | ${l.maxMs.toFixed(1)} ms | ${l.meanMs.toFixed(1)} ms |`);
  }
  out.push('');
  if (r.profiled !== undefined) {
    const p = r.profiled;
    out.push('## 5. Where the time goes (profile)');
    out.push('');
    out.push(
      `A second end-to-end pass of ${fmt(p.spans)} spans with the V8 sampling profiler on the collector's main thread ` +
        `(${fmt(p.spans / p.wallSeconds)} spans/s, ${fmt(p.spans / p.cpuSeconds)} spans per CPU-second with the profiler's overhead; ` +
        `${r.profileFile !== undefined ? `profile in \`${path.relative(ROOT, r.profileFile)}\`, not committed` : 'profile not kept'}).`,
    );
    out.push('');
    out.push('CPU per thread in that pass:');
    out.push('');
    out.push(threadTable(p.threads, p.wallSeconds, p.cpuSeconds));
    out.push('');
    if (p.profile !== undefined) out.push(summaryMarkdown(summarizeProfile(p.profile, 25)));
    out.push('');
  }
  return out.join('\n') + '\n';
}

// ---------------------------------------------------------------------------

function commandLine(argv: readonly string[]): string {
  const quoted = argv.map((a) => (/^[\w./=:-]+$/.test(a) ? a : `'${a.replace(/'/g, "'\\''")}'`)).join(' ');
  if (process.env.npm_lifecycle_event === 'bench:collector') return `npm run bench:collector${quoted === '' ? '' : ` -- ${quoted}`}`;
  const flags = process.execArgv.length > 0 ? `${process.execArgv.join(' ')} ` : '';
  return `node ${flags}${path.relative(process.cwd(), fileURLToPath(import.meta.url))}${quoted === '' ? '' : ` ${quoted}`}`;
}

async function main(): Promise<number> {
  let args: Args;
  try {
    args = parseArgs(process.argv.slice(2));
  } catch (err) {
    if (err instanceof UsageError) {
      process.stderr.write(err.message + '\n');
      return 2;
    }
    throw err;
  }
  const started = performance.now();
  const command = commandLine(process.argv.slice(2));
  const dir = mkdtempSync(path.join(os.tmpdir(), 'tracemesh-bench-'));
  const collectorLog: string[] = [];
  let collector: Collector | undefined;
  const cleanup = (): void => {
    liveGenerator?.child.kill('SIGKILL');
    rmSync(dir, { recursive: true, force: true });
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    log(`${signal}: cleaning up`);
    cleanup();
    process.exit(130);
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  let phase = 'start the collector';
  try {
    collector = new Collector(
      collectorConfig({
        store: { kind: 'chdb', dataDir: path.join(dir, 'clickhouse') },
        spoolDir: path.join(dir, 'spool'),
        host: '127.0.0.1',
        otlpGrpcPort: 0,
        otlpHttpPort: 0,
        apiPort: 0,
        ingest: { ...DEFAULT_INGEST_OPTIONS },
        log: (message) => {
          if (collectorLog.length < 1_000) collectorLog.push(message);
          process.stderr.write(`[collector] ${message}\n`);
        },
      }),
    );
    await withTimeout(collector.start(), 120_000, 'collector start');
    const machineInfo = await machine(collector);
    log(`collector on gRPC :${collector.grpc.port}, API :${collector.apiPort}, data in ${dir}; ${machineInfo.cpu}, ${machineInfo.cores} cores`);

    phase = "engine's own rate";
    const engine = await engineRate(collector, dir, args.engineRows);

    phase = 'end to end';
    const e2e = await endToEnd(collector, args.spans, args.concurrency, false);
    log(
      `end to end: ${(e2e.otherCpuSeconds / e2e.wallSeconds).toFixed(2)} cores busy outside the two processes; ${fmt(e2e.spans)} spans in ${e2e.wallSeconds.toFixed(2)} s = ${fmt(e2e.spans / e2e.wallSeconds)} spans/s; ` +
        `${e2e.cpuSeconds.toFixed(2)} CPU s = ${fmt(e2e.spans / e2e.cpuSeconds)} spans/s per core`,
    );

    phase = 'trace by id (as ingested)';
    const lookupsFresh = await traceLookups(collector, args.lookups, 'as ingested (background merges running)');

    phase = 'bytes on disk';
    const disk = await diskUsage(collector);

    phase = 'trace by id (after merges)';
    const lookupsMerged = await traceLookups(collector, args.lookups, 'after OPTIMIZE FINAL');

    const throughputShort =
      e2e.spans / e2e.cpuSeconds < GOALS.spansPerCoreSecond || e2e.spans / e2e.wallSeconds / (engine.rows / engine.file.seconds) < GOALS.engineRatio;
    let profiled: EndToEndResult | undefined;
    let profileFile: string | undefined;
    if (args.profile === 'always' || (args.profile === 'auto' && throughputShort)) {
      phase = 'profiled end to end';
      log(`profiling a second end-to-end pass of ${fmt(args.profileSpans)} spans`);
      profiled = await endToEnd(collector, args.profileSpans, args.concurrency, true);
      if (profiled.profile !== undefined) {
        const profileDir = path.join(ROOT, 'bench', 'tmp');
        mkdirSync(profileDir, { recursive: true });
        profileFile = path.join(profileDir, 'collector.cpuprofile');
        writeFileSync(profileFile, JSON.stringify(profiled.profile));
      }
    }

    phase = 'write results';
    const results: Results = {
      args,
      command,
      date: new Date().toISOString().replace('T', ' ').replace(/\.\d+Z$/, ' UTC'),
      machine: machineInfo,
      engine,
      e2e,
      lookupsFresh,
      disk,
      lookupsMerged,
      profiled,
      profileFile,
      totalSeconds: (performance.now() - started) / 1000,
    };
    const markdown = renderResults(results);
    mkdirSync(path.dirname(args.out), { recursive: true });
    writeFileSync(args.out, markdown);
    process.stdout.write(markdown);
    log(`results written to ${path.relative(process.cwd(), args.out)}`);
    return 0;
  } catch (err) {
    log(`FAILED in phase '${phase}': ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    if (collector !== undefined) {
      log(`pipeline ${JSON.stringify(collector.pipeline.stats)}, loader ${JSON.stringify(collector.loader.stats)}, spool ${collector.spool.fileCount} files`);
    }
    return 1;
  } finally {
    try {
      if (collector !== undefined) await withTimeout(collector.shutdown(2_000), 60_000, 'collector shutdown');
    } catch (err) {
      log(`collector shutdown: ${err instanceof Error ? err.message : String(err)}`);
    }
    cleanup();
  }
}

main().then(
  (code) => process.exit(code),
  (err: unknown) => {
    log(`FAILED: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}`);
    process.exit(1);
  },
);
