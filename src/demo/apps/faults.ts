/**
 * Faults a demo app plays on purpose, read from a small JSON control file
 * (`--fault-file`) that the demo's scenario clock rewrites:
 *
 *   { "errorRate": 1, "delayMs": 0 }
 *
 * errorRate (0 to 1) is the share of requests answered with an error (HTTP
 * 503, gRPC UNAVAILABLE); delayMs (0 to 30000) is added before each answer.
 * A file rather than an admin endpoint because the gRPC app has no HTTP
 * listener of its own, and a file needs no port, no auth and no client.
 *
 * The file is polled (stat every POLL_MS, read only when its mtime or size
 * changed), so a request never waits on the disk. A missing file means no
 * faults; a bad one is reported once on stderr and the previous faults stay.
 */
import { readFileSync, statSync } from 'node:fs';
import { TracemeshError, errorMessage } from '../../lib/errors.js';

export interface Faults {
  /** Share of requests that fail, 0 to 1. */
  readonly errorRate: number;
  /** Added before each answer, in milliseconds. */
  readonly delayMs: number;
}

export const NO_FAULTS: Faults = { errorRate: 0, delayMs: 0 };
export const MAX_FAULT_DELAY_MS = 30_000;
const POLL_MS = 200;
const MAX_FAULT_FILE_BYTES = 4_096;

/** Parses the control file's text; throws TracemeshError naming the field and the file. */
export function parseFaults(text: string, file: string): Faults {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${file}: not JSON; expected {"errorRate": 0..1, "delayMs": 0..${MAX_FAULT_DELAY_MS}}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${file}: expected a JSON object with errorRate and delayMs`);
  }
  const record = value as Record<string, unknown>;
  for (const key of Object.keys(record)) {
    if (key !== 'errorRate' && key !== 'delayMs') throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${file}: unknown field '${key}'; expected errorRate, delayMs`);
  }
  const errorRate = record['errorRate'] ?? 0;
  const delayMs = record['delayMs'] ?? 0;
  if (typeof errorRate !== 'number' || !(errorRate >= 0 && errorRate <= 1)) {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${file}: errorRate: expected a number from 0 to 1`);
  }
  if (typeof delayMs !== 'number' || !Number.isInteger(delayMs) || delayMs < 0 || delayMs > MAX_FAULT_DELAY_MS) {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${file}: delayMs: expected a whole number from 0 to ${MAX_FAULT_DELAY_MS}`);
  }
  return { errorRate, delayMs };
}

/** What an app asks per request. */
export interface FaultSource {
  current(): Faults;
  close(): void;
}

export const NO_FAULT_SOURCE: FaultSource = { current: () => NO_FAULTS, close: () => undefined };

/** The control file, polled. */
export class FaultFile implements FaultSource {
  private readonly file: string;
  private readonly warn: (line: string) => void;
  private readonly timer: NodeJS.Timeout;
  private faults: Faults = NO_FAULTS;
  private seen = '';
  private lastProblem = '';

  constructor(file: string, warn: (line: string) => void) {
    this.file = file;
    this.warn = warn;
    this.poll();
    this.timer = setInterval(() => this.poll(), POLL_MS);
    this.timer.unref();
  }

  current(): Faults {
    return this.faults;
  }

  close(): void {
    clearInterval(this.timer);
  }

  private poll(): void {
    let stamp: string;
    try {
      const stat = statSync(this.file);
      if (stat.size > MAX_FAULT_FILE_BYTES) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${this.file}: larger than ${MAX_FAULT_FILE_BYTES} bytes`);
      stamp = `${stat.ino}:${stat.mtimeMs}:${stat.size}`;
    } catch (err) {
      if ((err as { code?: string }).code === 'ENOENT') {
        this.faults = NO_FAULTS;
        this.seen = '';
        return;
      }
      this.report(errorMessage(err));
      return;
    }
    if (stamp === this.seen) return;
    try {
      this.faults = parseFaults(readFileSync(this.file, 'utf8'), this.file);
      this.seen = stamp;
      this.lastProblem = '';
    } catch (err) {
      this.report(errorMessage(err));
    }
  }

  private report(problem: string): void {
    if (problem === this.lastProblem) return;
    this.lastProblem = problem;
    this.warn(`fault file ignored, keeping the previous faults: ${problem}`);
  }
}

/** A fault source for an app: the file when one was given, else none. */
export function faultSource(file: string | undefined, app: string): FaultSource {
  if (file === undefined) return NO_FAULT_SOURCE;
  return new FaultFile(file, (line) => process.stderr.write(`tracemesh-demo ${app}: ${line}\n`));
}

/** Whether this request fails, drawn with `random` (injectable for tests). */
export function shouldFail(faults: Faults, random: () => number = Math.random): boolean {
  return faults.errorRate > 0 && random() < faults.errorRate;
}

/** Waits the fault's delay (not at all without one). */
export function delayFor(faults: Faults): Promise<void> | undefined {
  if (faults.delayMs <= 0) return undefined;
  return new Promise((resolve) => setTimeout(resolve, faults.delayMs));
}
