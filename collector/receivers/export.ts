import { errorMessage, isTracemeshError } from '../../src/lib/errors.js';
import type { DecodeResult, MetricPoint, SpanRecord } from '../model.js';
import { decodeMetricsJson } from '../otlp/metrics-json.js';
import { decodeMetricsProto } from '../otlp/metrics-proto.js';
import { decodeTracesJson } from '../otlp/traces-json.js';
import { decodeTracesProto } from '../otlp/traces-proto.js';
import { encodeExportResponse, exportResponseJson, partialSuccessOf } from '../otlp/responses.js';
import type { AcceptOutcome, IngestPipeline } from '../pipeline/ingest.js';

export type Signal = 'traces' | 'metrics';
export type BodyEncoding = 'protobuf' | 'json';

/** What became of one export request, before any transport puts it on the wire. */
export type ExportOutcome =
  /** Stored (all, or all but `rejected` invalid items: partial success). */
  | { status: 'ok'; rejected: number; message: string }
  /** Nothing stored, and sending it again cannot help. */
  | { status: 'invalid'; message: string }
  /** Nothing stored; the sender should retry after a while. */
  | { status: 'unavailable'; message: string; retryAfterSeconds: number };

export interface ReceiverStats {
  requests: number;
  itemsAccepted: number;
  itemsRejected: number;
  requestsInvalid: number;
  requestsRefused: number;
}

export function newReceiverStats(): ReceiverStats {
  return { requests: 0, itemsAccepted: 0, itemsRejected: 0, requestsInvalid: 0, requestsRefused: 0 };
}

/** What differs between signals: how to decode, which time counts for retention, where items go. */
interface SignalHandling<T> {
  decode(encoding: BodyEncoding, body: Uint8Array): DecodeResult<T>;
  timeOf(item: T): bigint;
  accept(pipeline: IngestPipeline, items: T[]): AcceptOutcome;
  /** Completes "N … older than the retention". */
  expiredWhat: string;
}

const TRACES: SignalHandling<SpanRecord> = {
  decode: (encoding, body) => (encoding === 'protobuf' ? decodeTracesProto(body) : decodeTracesJson(body)),
  timeOf: (span) => span.startTimeUnixNano,
  accept: (pipeline, spans) => pipeline.acceptSpans(spans),
  expiredWhat: 'spans start',
};

const METRICS: SignalHandling<MetricPoint> = {
  decode: (encoding, body) => (encoding === 'protobuf' ? decodeMetricsProto(body) : decodeMetricsJson(body)),
  timeOf: (point) => point.timeUnixNano,
  accept: (pipeline, points) => pipeline.acceptMetrics(points),
  expiredWhat: 'data points are',
};

/**
 * Decodes and stores one OTLP export request. Shared by the gRPC and HTTP
 * receivers so both answer the same request the same way.
 */
export function handleExport(
  pipeline: IngestPipeline,
  stats: ReceiverStats,
  signal: Signal,
  encoding: BodyEncoding,
  body: Uint8Array,
): ExportOutcome {
  stats.requests++;
  return signal === 'traces'
    ? exportWith(TRACES, pipeline, stats, signal, encoding, body)
    : exportWith(METRICS, pipeline, stats, signal, encoding, body);
}

function exportWith<T>(
  handling: SignalHandling<T>,
  pipeline: IngestPipeline,
  stats: ReceiverStats,
  signal: Signal,
  encoding: BodyEncoding,
  body: Uint8Array,
): ExportOutcome {
  let result: DecodeResult<T>;
  try {
    result = handling.decode(encoding, body);
  } catch (err) {
    if (isTracemeshError(err, 'TM_ERR_OTLP_MALFORMED')) {
      stats.requestsInvalid++;
      return { status: 'invalid', message: `invalid ${signal} export request: ${errorMessage(err)}` };
    }
    throw err;
  }
  // Items older than the retention would be expired by the store at once, which
  // to the sender is silent loss: they are rejected by count and reason instead.
  const cutoff = pipeline.retentionCutoffUnixNano();
  const kept = result.items.filter((item) => handling.timeOf(item) >= cutoff);
  const expired = result.items.length - kept.length;
  const outcome = kept.length > 0 ? handling.accept(pipeline, kept) : ({ accepted: true } as const);
  if (!outcome.accepted) {
    stats.requestsRefused++;
    return { status: 'unavailable', message: outcome.reason, retryAfterSeconds: outcome.retryAfterSeconds };
  }
  stats.itemsAccepted += kept.length;
  stats.itemsRejected += result.rejected + expired;
  const messages = [partialSuccessOf(result)?.errorMessage ?? ''];
  if (expired > 0) messages.push(`${expired} ${handling.expiredWhat} older than the retention of ${pipeline.retentionText}`);
  return { status: 'ok', rejected: result.rejected + expired, message: messages.filter((m) => m !== '').join('; ') };
}

/** The success or partial-success response in the request's encoding. */
export function exportResponseBody(signal: Signal, encoding: BodyEncoding, rejected: number, message: string): Buffer {
  if (encoding === 'protobuf') return Buffer.from(encodeExportResponse(signal, rejected, message));
  return Buffer.from(JSON.stringify(exportResponseJson(signal, rejected, message)));
}
