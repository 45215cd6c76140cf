/**
 * Options both span sinks (SDK and lean) take, so the factory and the
 * benchmark can swap one for the other.
 */
import { spanQueueOptions } from './span-sink-batcher.js';
import type { SpanQueueOptions } from './span-sink-batcher.js';
import type { WorkloadIdentity } from './telemetry.js';

export interface SpanSinkOptions {
  identity: WorkloadIdentity;
  /** http://host:4317 (or host:4317). */
  collectorUrl: string;
  maxQueueSize?: number;
  maxExportBatchSize?: number;
  scheduledDelayMs?: number;
  exportTimeoutMs?: number;
  shutdownTimeoutMs?: number;
  resourceAttributes?: Record<string, string>;
  /** Export failures and recoveries (not every failure). */
  log?: (message: string) => void;
}

/** The queue options of a SpanSinkOptions, defaults filled and checked. */
export function queueOptionsOf(options: SpanSinkOptions): SpanQueueOptions {
  return spanQueueOptions({
    maxQueueSize: options.maxQueueSize,
    maxExportBatchSize: options.maxExportBatchSize,
    scheduledDelayMs: options.scheduledDelayMs,
    exportTimeoutMs: options.exportTimeoutMs,
    shutdownTimeoutMs: options.shutdownTimeoutMs,
    log: options.log,
  });
}
