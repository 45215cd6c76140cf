/**
 * The shared recording telemetry (test/support), plus a wait for spans:
 * the HTTP/2 path records a span when the downstream stream closes, which
 * may be a moment after the client has its answer.
 */
import type { ProxySpanRecord } from '../telemetry/span-record.js';
import type { WorkloadIdentity } from '../telemetry/telemetry.js';
import { eventually } from '../../test/support/collector-harness.js';
import { recordingTelemetry, type RecordingTelemetry } from '../../test/support/recording-telemetry.js';

export const TEST_IDENTITY: WorkloadIdentity = { service: 'productpage', namespace: 'default', version: 'v1' };

export interface SpanRecorder {
  readonly telemetry: RecordingTelemetry;
  /** Resolves with the spans recorded after `from` once there are `count` of them. */
  spansAfter(from: number, count: number): Promise<ProxySpanRecord[]>;
}

export function spanRecorder(identity: WorkloadIdentity = TEST_IDENTITY): SpanRecorder {
  const telemetry = recordingTelemetry(identity);
  const spans = telemetry.recordedSpans;
  return {
    telemetry,
    spansAfter: (from, count) =>
      eventually(async () => (spans.length >= from + count ? spans.slice(from, from + count) : undefined), `${count} span(s)`, 10_000),
  };
}
