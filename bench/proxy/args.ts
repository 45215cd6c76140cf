/** The command line of `npm run bench:proxy`, and the paths it selects. */
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { LOAD_NAMES } from './results.js';
import type { LoadName } from './results.js';
import { TARGET_NAMES } from './targets.js';
import type { TargetName, TargetSpec } from './targets.js';

/** The repository root (this file runs from dist/bench/proxy/). */
export const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const DEFAULT_PROXY_MAIN = path.join(ROOT, 'dist', 'src', 'cli', 'main.js');

export interface Args {
  durationSeconds: number;
  warmupSeconds: number;
  quick: boolean;
  only: TargetName[];
  loads: LoadName[];
  tracing: 'on' | 'off' | 'both';
  rate: number;
  rateConnections: number;
  profile: boolean;
  /** The tracemesh CLI to run as `node <file> proxy …` (another build, for comparisons). */
  proxyMain: string;
  /** Extra flags for every sidecar, e.g. `--span-exporter lean`. */
  proxyArgs: string[];
  out: string | undefined;
}

function usage(): string {
  return [
    'usage: npm run bench:proxy -- [options]',
    '  --duration S           measured seconds per run (default 10)',
    '  --warmup S             warm-up seconds at 50 connections before each run, not measured (default 5)',
    '  --quick                3 s runs after 1 s warm-up (development)',
    `  --only LIST            paths to run, of ${TARGET_NAMES.join(',')} (default all)`,
    `  --loads LIST           loads to run, of ${LOAD_NAMES.join(',')} (default all)`,
    '  --tracing on|off|both  sidecar runs with tracing at 100 %, off, or both (default both)',
    '  --rate N               constant rate, requests/s (default 1000)',
    '  --rate-connections N   connections of the constant-rate generator (default 16)',
    '  --profile              also profile one sidecar (tracing on) under 50 connections with --cpu-prof into bench/tmp',
    '  --proxy-main FILE      the tracemesh CLI the sidecars run as (default dist/src/cli/main.js)',
    "  --proxy-args 'FLAGS'   extra flags for every sidecar, e.g. '--span-exporter lean'",
    '  --out FILE             report file, JSON beside it (default bench/results/proxy.md; bench/tmp/proxy-partial.md for partial runs)',
  ].join('\n');
}

/** A bad command line: the runner prints the message and exits 2. */
export class UsageError extends Error {}

const VALUE_FLAGS: ReadonlySet<string> = new Set(['--duration', '--warmup', '--only', '--loads', '--tracing', '--rate', '--rate-connections', '--proxy-main', '--proxy-args', '--out']);

function list<T extends string>(flag: string, value: string, allowed: readonly T[]): T[] {
  const items = value.split(',').map((v) => v.trim()).filter((v) => v !== '');
  for (const item of items) if (!(allowed as readonly string[]).includes(item)) throw new UsageError(`${flag}: unknown '${item}', expected some of ${allowed.join(',')}`);
  if (items.length === 0) throw new UsageError(`${flag}: empty list`);
  return items as T[];
}

export function parseArgs(argv: readonly string[]): Args {
  const args: Args = {
    durationSeconds: 10,
    warmupSeconds: 5,
    quick: false,
    only: [...TARGET_NAMES],
    loads: [...LOAD_NAMES],
    tracing: 'both',
    rate: 1000,
    rateConnections: 16,
    profile: false,
    proxyMain: DEFAULT_PROXY_MAIN,
    proxyArgs: [],
    out: undefined,
  };
  let duration: number | undefined;
  let warmup: number | undefined;
  for (let i = 0; i < argv.length; i++) {
    const flag = argv[i]!;
    if (flag === '--help' || flag === '-h') throw new UsageError(usage());
    if (flag === '--quick') {
      args.quick = true;
      continue;
    }
    if (flag === '--profile') {
      args.profile = true;
      continue;
    }
    if (!VALUE_FLAGS.has(flag)) throw new UsageError(`unknown flag ${flag}\n${usage()}`);
    const value = argv[++i];
    if (value === undefined) throw new UsageError(`${flag}: missing value\n${usage()}`);
    const number = (min: number, max: number, integer: boolean): number => {
      const n = Number(value);
      if (!Number.isFinite(n) || n < min || n > max || (integer && !Number.isInteger(n))) {
        throw new UsageError(`${flag}: expected ${integer ? 'an integer' : 'a number'} from ${min} to ${max}, got '${value}'`);
      }
      return n;
    };
    switch (flag) {
      case '--duration':
        duration = number(1, 3600, false);
        break;
      case '--warmup':
        warmup = number(0, 600, false);
        break;
      case '--only':
        args.only = list(flag, value, TARGET_NAMES);
        break;
      case '--loads':
        args.loads = list(flag, value, LOAD_NAMES);
        break;
      case '--tracing':
        if (value !== 'on' && value !== 'off' && value !== 'both') throw new UsageError(`--tracing: expected on, off or both, got '${value}'`);
        args.tracing = value;
        break;
      case '--rate':
        args.rate = number(1, 100_000, true);
        break;
      case '--rate-connections':
        args.rateConnections = number(1, 1024, true);
        break;
      case '--proxy-args':
        args.proxyArgs = value.split(/\s+/).filter((v) => v !== '');
        break;
      case '--proxy-main':
        args.proxyMain = path.resolve(value);
        break;
      case '--out':
        args.out = path.resolve(value);
        break;
      default:
        throw new UsageError(`unknown flag ${flag}\n${usage()}`);
    }
  }
  args.durationSeconds = duration ?? (args.quick ? 3 : 10);
  args.warmupSeconds = warmup ?? (args.quick ? 1 : 5);
  return args;
}

/** A run that is not the recorded result (quick, filtered, another build). */
export function isPartial(args: Args): boolean {
  return args.quick || args.proxyMain !== DEFAULT_PROXY_MAIN || args.only.length < TARGET_NAMES.length || args.loads.length < LOAD_NAMES.length || args.tracing !== 'both';
}

/** Every path in the order it runs: references first, then ours traced and not. */
export function targetSpecs(args: Pick<Args, 'only' | 'tracing'>): TargetSpec[] {
  const specs: TargetSpec[] = [];
  for (const name of TARGET_NAMES) {
    if (!args.only.includes(name)) continue;
    if (name === 'proxy1' || name === 'proxy2') {
      if (args.tracing !== 'off') specs.push({ name, tracing: true });
      if (args.tracing !== 'on') specs.push({ name, tracing: false });
    } else {
      specs.push({ name, tracing: undefined });
    }
  }
  return specs;
}
