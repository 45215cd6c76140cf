import { isTracemeshError, type TracemeshError } from '../../src/lib/errors.js';

/** The TracemeshError `fn` throws (the test fails if it throws nothing or something else). */
export function thrownTracemeshError(fn: () => unknown): TracemeshError {
  try {
    fn();
  } catch (err) {
    if (isTracemeshError(err)) return err;
    throw err;
  }
  throw new Error('expected a TracemeshError, nothing was thrown');
}
