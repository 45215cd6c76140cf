/**
 * `<data-dir>/demo/state.json`: what the running demo started (pids and
 * process groups, their command lines, URLs), rewritten as parts come up and
 * marked stopped at the end. For people ("what is still running?"), for
 * tests that check nothing is left behind, and for the next run, which stops
 * what a SIGKILLed run left (leftovers.ts).
 */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface DemoStateChild {
  readonly label: string;
  /** Its pid, also its process group id. */
  readonly pid: number;
  /** The program and its arguments as spawned: a pid reused by someone else's process will not match them. */
  readonly command: readonly string[];
}

export interface DemoState {
  readonly demoPid: number;
  readonly running: boolean;
  readonly startedAt: string;
  readonly children: readonly DemoStateChild[];
  readonly urls: Readonly<Record<string, string>>;
}

export function writeDemoState(file: string, state: DemoState): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, file);
}

function isChild(value: unknown): value is DemoStateChild {
  if (typeof value !== 'object' || value === null) return false;
  const child = value as Record<string, unknown>;
  return (
    typeof child['label'] === 'string' &&
    Number.isInteger(child['pid']) &&
    (child['pid'] as number) > 0 &&
    Array.isArray(child['command']) &&
    (child['command'] as unknown[]).length > 0 &&
    (child['command'] as unknown[]).every((part) => typeof part === 'string')
  );
}

/**
 * The state a previous run left, or undefined when there is none. Children
 * recorded without a command line (an older demo) or malformed are left out:
 * nothing unverifiable is ever stopped. `problem` says why a file was unusable.
 */
export function readDemoState(file: string): { state: DemoState | undefined; problem: string | undefined } {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return { state: undefined, problem: undefined };
    return { state: undefined, problem: `cannot read ${file}: ${(err as Error).message}` };
  }
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch (err) {
    return { state: undefined, problem: `${file} is not JSON (${(err as Error).message})` };
  }
  if (typeof parsed !== 'object' || parsed === null || !Array.isArray((parsed as Record<string, unknown>)['children'])) {
    return { state: undefined, problem: `${file} holds no list of children` };
  }
  const raw = parsed as Record<string, unknown>;
  const demoPid = Number.isInteger(raw['demoPid']) ? (raw['demoPid'] as number) : 0;
  return {
    state: {
      demoPid,
      running: raw['running'] === true,
      startedAt: typeof raw['startedAt'] === 'string' ? raw['startedAt'] : '',
      children: (raw['children'] as unknown[]).filter(isChild),
      urls: {},
    },
    problem: undefined,
  };
}
