/**
 * Runs a synchronous cleanup if the process ends before the owner tears down:
 * on 'exit', and on SIGINT / SIGTERM / SIGHUP, which would otherwise kill Node
 * without any 'exit' handler running. After cleaning up on a signal, the
 * signal is raised again when nobody else listens for it, so the process still
 * dies the way it would have. (SIGKILL cannot be caught: there the children's
 * parent-death signal and cleanupStale() on the next run do the work.)
 */

const SIGNALS: readonly NodeJS.Signals[] = ['SIGINT', 'SIGTERM', 'SIGHUP'];

export interface ExitGuard {
  /** Removes the handlers (after a normal teardown). Safe twice. */
  dispose(): void;
}

export function guardProcessExit(cleanup: () => void): ExitGuard {
  let done = false;
  const runOnce = (): void => {
    if (done) return;
    done = true;
    try {
      cleanup();
    } catch (err) {
      process.stderr.write(`tracemesh: cleanup at exit failed: ${err instanceof Error ? err.message : String(err)}\n`);
    }
  };
  const onSignal = (signal: NodeJS.Signals): void => {
    runOnce();
    dispose();
    if (process.listenerCount(signal) === 0) process.kill(process.pid, signal);
  };
  const dispose = (): void => {
    process.off('exit', runOnce);
    for (const signal of SIGNALS) process.off(signal, onSignal);
  };
  process.on('exit', runOnce);
  for (const signal of SIGNALS) process.on(signal, onSignal);
  return {
    dispose() {
      done = true;
      dispose();
    },
  };
}
