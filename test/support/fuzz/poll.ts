/**
 * Polling with a deadline, and a handle on the garbage collector when the
 * runtime can give one (memory checks compare heaps after a full GC).
 */
import v8 from 'node:v8';
import vm from 'node:vm';

/** Polls `probe` every 50 ms until it returns a value (not undefined); throws with the last value seen after `timeoutMs`. */
export async function waitFor<T>(probe: () => Promise<T | undefined>, what: string, timeoutMs: number, describeLast: () => string = () => ''): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (value !== undefined) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}${describeLast() === '' ? '' : `: ${describeLast()}`}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

/**
 * A full-GC function: global.gc under --expose-gc, else one obtained by
 * turning the flag on at run time (works on V8 as Node 20 ships it).
 * Undefined when neither works; callers then skip their memory check.
 */
export function gcFunction(): (() => void) | undefined {
  const existing = (globalThis as { gc?: unknown }).gc;
  if (typeof existing === 'function') return existing as () => void;
  try {
    v8.setFlagsFromString('--expose-gc');
    const gc: unknown = vm.runInNewContext('gc');
    return typeof gc === 'function' ? (gc as () => void) : undefined;
  } catch {
    return undefined;
  }
}

/** heapUsed after full collections (twice: the first may only run finalizers that free more). */
export function heapAfterGc(gc: () => void): number {
  gc();
  gc();
  return process.memoryUsage().heapUsed;
}
