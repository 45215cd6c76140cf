/** The worker side of load-in-worker.ts: load, validate, post the answer. */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage, isTracemeshError } from '../lib/errors.js';
import { ConfigValidationError } from './issues.js';
import { loadMeshConfig } from './load.js';
import type { WorkerAnswer } from './load-in-worker.js';

const { paths } = workerData as { paths: string[] };
let answer: WorkerAnswer;
try {
  answer = { ok: true, config: await loadMeshConfig(paths) };
} catch (err) {
  answer = {
    ok: false,
    code: isTracemeshError(err) ? err.code : 'TM_ERR_CONFIG_READ',
    message: errorMessage(err),
    issues: err instanceof ConfigValidationError ? [...err.issues] : undefined,
  };
}
parentPort?.postMessage(answer);
