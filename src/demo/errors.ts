/** The demo's errors. */
import { TracemeshError } from '../lib/errors.js';
import type { ErrorCode } from '../lib/errors.js';

/** A part of the demo did not start or did not become ready in time. */
export const DEMO_NOT_READY: ErrorCode = 'TM_ERR_DEMO_NOT_READY';
/** A child process of the demo exited while the demo ran. */
export const DEMO_CHILD_EXITED: ErrorCode = 'TM_ERR_DEMO_CHILD_EXITED';

export function notReady(message: string): TracemeshError {
  return new TracemeshError(DEMO_NOT_READY, message);
}

export function childExited(message: string): TracemeshError {
  return new TracemeshError(DEMO_CHILD_EXITED, message);
}
