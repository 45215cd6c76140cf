/**
 * `<data-dir>/demo/state.json`: what the running demo started (pids and
 * process groups, URLs), rewritten as parts come up and marked stopped at
 * the end. For people ("what is still running?") and for tests that check
 * nothing is left behind.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';

export interface DemoState {
  readonly demoPid: number;
  readonly running: boolean;
  readonly startedAt: string;
  /** Each child: its label and pid (also its process group id). */
  readonly children: ReadonlyArray<{ label: string; pid: number }>;
  readonly urls: Readonly<Record<string, string>>;
}

export function writeDemoState(file: string, state: DemoState): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(state, null, 2)}\n`);
  renameSync(temporary, file);
}
