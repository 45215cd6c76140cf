/**
 * The end of a watch that faces its user: delivers events until stopped,
 * keeps a throwing listener from killing the watch, and reports a problem
 * once rather than on every poll or reconnect attempt while it lasts.
 */
import { errorMessage, TracemeshError } from '../../lib/errors.js';
import { storeError } from './store-errors.js';
import type { StoreChangeEvent, StoreListener } from './types.js';

export class WatchOutlet {
  private stopped = false;
  private lastProblem: string | undefined = undefined;

  constructor(
    private readonly listener: StoreListener,
    private readonly onProblem: ((error: TracemeshError) => void) | undefined,
    private readonly location: string,
  ) {}

  get isStopped(): boolean {
    return this.stopped;
  }

  stop(): void {
    this.stopped = true;
  }

  emit(event: StoreChangeEvent): void {
    if (this.stopped) return;
    try {
      this.listener(event);
    } catch (err) {
      this.problem(storeError('TM_ERR_CP_STORE_LISTENER_FAILED', `a watch listener of ${this.location} threw at revision ${event.revision}: ${errorMessage(err)}`, err));
    }
  }

  /** A problem the watch survives; the same one again is not repeated until the watch has recovered. */
  problem(err: unknown): void {
    if (this.stopped) return;
    const error = err instanceof TracemeshError ? err : storeError('TM_ERR_CP_STORE_UNAVAILABLE', `${this.location}: ${errorMessage(err)}`, err);
    if (error.message === this.lastProblem) return;
    this.lastProblem = error.message;
    try {
      this.onProblem?.(error);
    } catch {
      // A problem handler that throws has nobody left to tell.
    }
  }

  /** The watch works again: the next problem is news. */
  recovered(): void {
    this.lastProblem = undefined;
  }
}
