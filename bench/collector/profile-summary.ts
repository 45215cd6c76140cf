/**
 * Where a V8 CPU profile's time goes: self time per function and per area
 * (decoder, row serialisation, gRPC, node internals, GC...), and inclusive
 * time for the collector's own functions.
 *
 * Used by bench/collector/run.ts on the profile it takes of the end-to-end
 * phase, and by hand on a `node --cpu-prof` output:
 *
 *   node dist/bench/collector/profile-summary.js CPU.20250101.cpuprofile [--top 25]
 *
 * A V8 profile covers the JavaScript main thread only; chDB's engine threads
 * (parsing, merges) are not in it. The runner reports those per thread from
 * /proc separately.
 */
import { readFileSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

export interface CpuProfileNode {
  id: number;
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  hitCount?: number;
  children?: number[];
}

export interface CpuProfile {
  nodes: CpuProfileNode[];
  startTime: number;
  endTime: number;
  samples?: number[];
  timeDeltas?: number[];
}

export interface TimeRow {
  /** Function name, or the area's name. */
  name: string;
  /** `file:line` of the function ('' for areas and VM states). */
  where: string;
  ms: number;
  /** Of the profile's total time, 0..1. */
  share: number;
}

export interface ProfileSummary {
  totalMs: number;
  samples: number;
  /** Self time by function, highest first. */
  selfByFunction: TimeRow[];
  /** Self time by area, highest first. */
  selfByArea: TimeRow[];
  /** Inclusive time of tracemesh's own functions (collector/, src/), highest first. */
  inclusiveCollector: TimeRow[];
}

const AREAS: ReadonlyArray<readonly [RegExp, string]> = [
  [/\/collector\/otlp\//, 'collector/otlp (protobuf/JSON decode)'],
  [/\/collector\/storage\//, 'collector/storage (row serialisation, store)'],
  [/\/collector\/pipeline\//, 'collector/pipeline (ingest, segments, spool, service graph)'],
  [/\/collector\/receivers\//, 'collector/receivers'],
  [/\/collector\/api\//, 'collector/api (query API)'],
  [/\/bench\//, 'bench runner'],
  [/node_modules\/@grpc\/grpc-js\//, '@grpc/grpc-js'],
  [/node_modules\/chdb\//, 'chdb binding (JS side)'],
  [/node_modules\/@clickhouse\//, '@clickhouse/client'],
  [/node_modules\/fastify|node_modules\/find-my-way|node_modules\/light-my-request|node_modules\/avvio/, 'fastify'],
  [/node_modules\//, 'other dependencies'],
  [/^node:internal\/http2|^node:http2/, 'node http2'],
  [/^node:internal\/fs|^node:fs/, 'node fs'],
  [/^node:internal\/(streams|stream_base_commons)|^node:stream/, 'node streams'],
  [/^node:internal\/(buffer|blob)|^node:buffer/, 'node buffer'],
  [/^node:internal\/(timers|process\/task_queues)|^node:timers/, 'node timers and microtasks'],
  [/^node:/, 'node (other)'],
];

function areaOf(frame: CpuProfileNode['callFrame']): string {
  const { url, functionName } = frame;
  if (url === '') {
    if (functionName === '(garbage collector)') return 'GC';
    if (functionName === '(idle)') return 'idle (waiting: I/O, chDB, timers)';
    if (functionName === '(program)') return 'V8/native, not attributed';
    return 'V8 builtins and native functions';
  }
  for (const [pattern, name] of AREAS) if (pattern.test(url)) return name;
  return 'other';
}

function shortUrl(url: string): string {
  let u = url.startsWith('file://') ? fileURLToPath(url) : url;
  const cwd = process.cwd() + path.sep;
  if (u.startsWith(cwd)) u = u.slice(cwd.length);
  const nm = u.lastIndexOf('node_modules/');
  if (nm >= 0) u = u.slice(nm);
  return u;
}

function functionKey(frame: CpuProfileNode['callFrame']): string {
  return `${frame.functionName || '(anonymous)'}\u0000${frame.url}\u0000${frame.lineNumber}`;
}

function row(key: string, ms: number, totalMs: number): TimeRow {
  const [name = '', url = '', line = '-1'] = key.split('\u0000');
  const where = url === '' ? '' : `${shortUrl(url)}:${Number(line) + 1}`;
  return { name, where, ms, share: totalMs > 0 ? ms / totalMs : 0 };
}

function top(map: ReadonlyMap<string, number>, totalMs: number, limit: number, asArea: boolean): TimeRow[] {
  return [...map]
    .sort((a, b) => b[1] - a[1])
    .slice(0, limit)
    .map(([key, ms]) => (asArea ? { name: key, where: '', ms, share: totalMs > 0 ? ms / totalMs : 0 } : row(key, ms, totalMs)));
}

export function summarizeProfile(profile: CpuProfile, limit = 25): ProfileSummary {
  const byId = new Map<number, CpuProfileNode>();
  const parentOf = new Map<number, number>();
  for (const node of profile.nodes) {
    byId.set(node.id, node);
    for (const child of node.children ?? []) parentOf.set(child, node.id);
  }
  const samples = profile.samples ?? [];
  const deltas = profile.timeDeltas ?? [];
  // Sample i lasts until sample i + 1 (the last one gets the mean interval).
  const totalUs = profile.endTime - profile.startTime;
  const meanUs = samples.length > 0 ? totalUs / samples.length : 0;
  const selfFn = new Map<string, number>();
  const selfArea = new Map<string, number>();
  const inclusive = new Map<string, number>();
  let counted = 0;
  const seen = new Set<string>();
  for (let i = 0; i < samples.length; i++) {
    const node = byId.get(samples[i]!);
    if (node === undefined) continue;
    const us = Math.max(0, i + 1 < deltas.length ? deltas[i + 1]! : meanUs);
    const ms = us / 1000;
    counted += ms;
    // An anonymous native frame (a V8/C++ builtin) is named after its JavaScript caller, and counted in the caller's area.
    let frame = node.callFrame;
    let fk = functionKey(frame);
    if (frame.url === '' && frame.functionName === '') {
      const caller = byId.get(parentOf.get(node.id) ?? -1)?.callFrame;
      if (caller !== undefined) {
        fk = `(native, in ${caller.functionName || '(anonymous)'})\u0000${caller.url}\u0000${caller.lineNumber}`;
        frame = caller;
      }
    }
    selfFn.set(fk, (selfFn.get(fk) ?? 0) + ms);
    const area = areaOf(frame);
    selfArea.set(area, (selfArea.get(area) ?? 0) + ms);
    // Inclusive: every distinct tracemesh function on the stack, once per sample.
    seen.clear();
    for (let id: number | undefined = node.id; id !== undefined; id = parentOf.get(id)) {
      const frame = byId.get(id)?.callFrame;
      if (frame === undefined) break;
      if (!/\/(collector|src)\//.test(frame.url) || /node_modules/.test(frame.url)) continue;
      const key = functionKey(frame);
      if (seen.has(key)) continue;
      seen.add(key);
      inclusive.set(key, (inclusive.get(key) ?? 0) + ms);
    }
  }
  return {
    totalMs: counted,
    samples: samples.length,
    selfByFunction: top(selfFn, counted, limit, false),
    selfByArea: top(selfArea, counted, limit, true),
    inclusiveCollector: top(inclusive, counted, limit, false),
  };
}

function pct(share: number): string {
  return `${(share * 100).toFixed(1)} %`;
}

function table(rows: readonly TimeRow[], withWhere: boolean): string {
  const head = withWhere ? '| function | where | ms | share |\n| --- | --- | ---: | ---: |' : '| area | ms | share |\n| --- | ---: | ---: |';
  const lines = rows.map((r) =>
    withWhere
      ? `| \`${r.name || '(anonymous)'}\` | ${r.where === '' ? '' : `\`${r.where}\``} | ${r.ms.toFixed(0)} | ${pct(r.share)} |`
      : `| ${r.name} | ${r.ms.toFixed(0)} | ${pct(r.share)} |`,
  );
  return [head, ...lines].join('\n');
}

/** Markdown: areas, top self-time functions, top inclusive collector functions. */
export function summaryMarkdown(summary: ProfileSummary, limits = { areas: 15, functions: 25, inclusive: 15 }): string {
  return [
    `Main (JavaScript) thread, ${summary.samples} samples over ${(summary.totalMs / 1000).toFixed(1)} s.`,
    '',
    'Self time by area:',
    '',
    table(summary.selfByArea.slice(0, limits.areas), false),
    '',
    'Top functions by self time:',
    '',
    table(summary.selfByFunction.slice(0, limits.functions), true),
    '',
    "Inclusive time of tracemesh's own functions (callees included):",
    '',
    table(summary.inclusiveCollector.slice(0, limits.inclusive), true),
  ].join('\n');
}

function main(argv: readonly string[]): number {
  const file = argv[0];
  if (file === undefined || file.startsWith('--')) {
    process.stderr.write('usage: profile-summary FILE.cpuprofile [--top N]\n');
    return 2;
  }
  let limit = 25;
  if (argv[1] === '--top') {
    limit = Number(argv[2]);
    if (!Number.isSafeInteger(limit) || limit <= 0) {
      process.stderr.write(`--top: expected a positive integer, got ${argv[2]}\n`);
      return 2;
    }
  } else if (argv[1] !== undefined) {
    process.stderr.write(`unknown argument ${argv[1]}\n`);
    return 2;
  }
  const profile = JSON.parse(readFileSync(file, 'utf8')) as CpuProfile;
  process.stdout.write(summaryMarkdown(summarizeProfile(profile, limit), { areas: limit, functions: limit, inclusive: limit }) + '\n');
  return 0;
}

const invokedAsScript = process.argv[1] !== undefined && realpathSync(process.argv[1]) === fileURLToPath(import.meta.url);
if (invokedAsScript) process.exitCode = main(process.argv.slice(2));
