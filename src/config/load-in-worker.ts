/**
 * loadMeshConfig in a short-lived worker thread. The YAML parser and the
 * schema library stay resident once loaded (about 18 MB); a sidecar reads its
 * config once at start, so it parses in a worker whose isolate is thrown away
 * and keeps only the validated ServiceSpecs (resident memory is a goal).
 */
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { Worker } from 'node:worker_threads';
import { TracemeshError, type ErrorCode } from '../lib/errors.js';
import { ConfigValidationError, type ConfigIssue } from './issues.js';
import type { MeshConfig } from './types.js';

/** What the worker posts back: the config, or the error's parts (errors do not cross threads as classes). */
export type WorkerAnswer =
  | { ok: true; config: MeshConfig }
  | { ok: false; code: ErrorCode; message: string; issues: ConfigIssue[] | undefined };

/** What the worker is asked: files to load, or a text (a control-plane snapshot) to validate. */
export type WorkerRequest = { paths: string[] } | { text: string; file: string };

export async function loadMeshConfigInWorker(paths: readonly string[]): Promise<MeshConfig> {
  return inWorker({ paths: [...paths] }, async () => (await import('./load.js')).loadMeshConfig(paths));
}

/** validateMeshConfigText in a throwaway worker; throws ConfigValidationError listing every problem. */
export async function validateMeshConfigTextInWorker(text: string, file: string): Promise<MeshConfig> {
  return inWorker({ text, file }, async () => {
    const result = (await import('./load.js')).validateMeshConfigText(text, file);
    if (!result.ok) throw new ConfigValidationError(result.errors);
    return result.config;
  });
}

async function inWorker(request: WorkerRequest, inProcess: () => Promise<MeshConfig>): Promise<MeshConfig> {
  const script = new URL('./load-worker.js', import.meta.url);
  // Run from TypeScript sources (tests) there is no compiled worker script: load in-process.
  if (!existsSync(fileURLToPath(script))) return inProcess();
  return new Promise((resolve, reject) => {
    const worker = new Worker(script, { workerData: request });
    let answered = false;
    worker.once('message', (answer: WorkerAnswer) => {
      answered = true;
      if (answer.ok) resolve(answer.config);
      else if (answer.issues !== undefined) reject(new ConfigValidationError(answer.issues));
      else reject(new TracemeshError(answer.code, answer.message));
      void worker.terminate();
    });
    worker.once('error', (err) => {
      answered = true;
      reject(new TracemeshError('TM_ERR_CONFIG_READ', `reading the mesh config failed: ${err.message}`, { cause: err }));
    });
    worker.once('exit', (code) => {
      if (!answered) reject(new TracemeshError('TM_ERR_CONFIG_READ', `the config reader exited (${code}) without an answer`));
    });
  });
}
