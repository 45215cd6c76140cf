/** The worker side of load-in-worker.ts: load, validate, post the answer. */
import { parentPort, workerData } from 'node:worker_threads';
import { errorMessage, isTracemeshError } from '../lib/errors.js';
import { ConfigValidationError } from './issues.js';
import { loadMeshConfig, validateMeshConfigText } from './load.js';
import type { WorkerAnswer, WorkerRequest } from './load-in-worker.js';

const request = workerData as WorkerRequest;
let answer: WorkerAnswer;
try {
  if ('paths' in request) {
    answer = { ok: true, config: await loadMeshConfig(request.paths) };
  } else {
    const result = validateMeshConfigText(request.text, request.file);
    if (!result.ok) throw new ConfigValidationError(result.errors);
    answer = { ok: true, config: result.config };
  }
} catch (err) {
  answer = {
    ok: false,
    code: isTracemeshError(err) ? err.code : 'TM_ERR_CONFIG_READ',
    message: errorMessage(err),
    issues: err instanceof ConfigValidationError ? [...err.issues] : undefined,
  };
}
parentPort?.postMessage(answer);
