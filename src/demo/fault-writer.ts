/**
 * Plays the scenario's faults by rewriting each app's fault file
 * (apps/faults.ts): written whole to a temporary name and renamed, so an
 * app never reads half a file.
 */
import { mkdirSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { NO_FAULTS } from './apps/faults.js';
import type { Phase } from './scenario.js';

export function writeFaultFile(file: string, faults: { errorRate: number; delayMs: number }): void {
  mkdirSync(path.dirname(file), { recursive: true });
  const temporary = `${file}.${process.pid}.tmp`;
  writeFileSync(temporary, `${JSON.stringify(faults)}\n`);
  renameSync(temporary, file);
}

/** Writes every fault file for `phase` (none for workloads the phase does not name). */
export function playPhase(phase: Phase, faultFiles: ReadonlyMap<string, string>): void {
  for (const [workload, file] of faultFiles) writeFaultFile(file, phase.faults[workload] ?? NO_FAULTS);
}
