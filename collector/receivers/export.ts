import { errorMessage, isTracemeshError } from '../../src/lib/errors.js';
import type { DecodeResult, MetricPoint, SpanRecord } from '../model.js';
import { decodeMetricsJson } from '../otlp/metrics-json.js';
import { decodeMetricsProto } from '../otlp/metrics-proto.js';
import { decodeTracesJson } from '../otlp/traces-json.js';
import { decodeTracesProto } from '../otlp/traces-proto.js';
import { encodeExportResponse, exportResponseJson, partialSuccessOf } from '../otlp/responses.js';
import type { IngestPipeline } from '../pipeline/ingest.js';

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

/**
 * Items older than the retention: the store would expire them at once, which
 * to the sender would be silent loss, so they are rejected by count and reason.
 */
function splitExpired<T>(items: T[], timeOf: (item: T) => bigint, cutoffUnixNano: bigint): { kept: T[]; expired: number } {
  const kept = items.filter((item) => timeOf(item) >= cutoffUnixNano);
  return { kept, expired: items.length - kept.length };
}

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
  let result: DecodeResult<unknown>;
  let accept: () => ReturnType<IngestPipeline['acceptSpans']>;
  let kept: number;
  let expired: number;
  const cutoff = pipeline.retentionCutoffUnixNano();
  try {
    if (signal === 'traces') {
      result = encoding === 'protobuf' ? decodeTracesProto(body) : decodeTracesJson(body);
      const spans = splitExpired((result as DecodeResult<SpanRecord>).items, (span) => span.startTimeUnixNano, cutoff);
      ({ expired } = spans);
      kept = spans.kept.length;
      accept = () => pipeline.acceptSpans(spans.kept);
    } else {
      result = encoding === 'protobuf' ? decodeMetricsProto(body) : decodeMetricsJson(body);
      const points = splitExpired((result as DecodeResult<MetricPoint>).items, (point) => point.timeUnixNano, cutoff);
      ({ expired } = points);
      kept = points.kept.length;
      accept = () => pipeline.acceptMetrics(points.kept);
    }
  } catch (err) {
    if (isTracemeshError(err, 'TM_ERR_OTLP_MALFORMED')) {
      stats.requestsInvalid++;
      return { status: 'invalid', message: `invalid ${signal} export request: ${errorMessage(err)}` };
    }
    throw err;
  }
  const outcome = kept > 0 ? accept() : ({ accepted: true } as const);
  if (!outcome.accepted) {
    stats.requestsRefused++;
    return { status: 'unavailable', message: outcome.reason, retryAfterSeconds: outcome.retryAfterSeconds };
  }
  stats.itemsAccepted += kept;
  stats.itemsRejected += result.rejected + expired;
  const messages = [partialSuccessOf(result)?.errorMessage ?? ''];
  if (expired > 0) {
    messages.push(`${expired} ${signal === 'traces' ? 'spans start' : 'data points are'} older than the retention of ${pipeline.retentionText}`);
  }
  return { status: 'ok', rejected: result.rejected + expired, message: messages.filter((m) => m !== '').join('; ') };
}

/** The success or partial-success response in the request's encoding. */
export function exportResponseBody(signal: Signal, encoding: BodyEncoding, rejected: number, message: string): Buffer {
  if (encoding === 'protobuf') return Buffer.from(encodeExportResponse(signal, rejected, message));
  return Buffer.from(JSON.stringify(exportResponseJson(signal, rejected, message)));
}
