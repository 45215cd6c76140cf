import { NetnsError } from './netns-error.js';
import type { PodProcess } from './pod-process.js';

export interface PodRunResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/**
 * Waits for a short program to end and returns what it printed; a non-zero
 * exit is returned, not thrown (the caller knows what it expects). At the
 * deadline the program's group is killed and the error says so.
 */
export async function finishWithin(proc: PodProcess, timeoutMs: number): Promise<PodRunResult> {
  let timer: NodeJS.Timeout | undefined;
  const deadline = new Promise<'timeout'>((resolve) => {
    timer = setTimeout(() => resolve('timeout'), timeoutMs);
  });
  const first = await Promise.race([proc.exited, deadline]);
  clearTimeout(timer);
  if (first === 'timeout') {
    await proc.stop(0);
    throw new NetnsError('TM_ERR_NETNS_PROCESS', `${proc.label} did not finish within ${timeoutMs} ms and was killed; output:\n${proc.output()}`);
  }
  return { code: first.code, signal: first.signal, stdout: proc.output('stdout'), stderr: proc.output('stderr') };
}
