/**
 * Export responses: ExportTraceServiceResponse / ExportMetricsServiceResponse
 * { partial_success 1 } with ExportTracePartialSuccess { rejected_spans 1 (int64),
 * error_message 2 } and ExportMetricsPartialSuccess { rejected_data_points 1,
 * error_message 2 }, as protobuf bytes and as the OTLP/JSON object.
 *
 * Full success leaves partial_success unset (an empty message; `{}` in JSON).
 * A partial success with 0 rejected and a message is a warning, and is sent.
 */
import type { DecodeResult } from '../model.js';
import { ProtoWriter, WIRE_LEN, WIRE_VARINT } from './wire.js';

export type ExportSignal = 'traces' | 'metrics';

export interface PartialSuccess {
  /** Spans or data points rejected. */
  rejected: number;
  errorMessage: string;
}

export interface TracesResponseJson {
  partialSuccess?: { rejectedSpans?: string; errorMessage?: string };
}

export interface MetricsResponseJson {
  partialSuccess?: { rejectedDataPoints?: string; errorMessage?: string };
}

/**
 * The partial success to answer for a decode result: null when nothing was
 * rejected; otherwise the count and the kept messages (with how many more).
 */
export function partialSuccessOf(result: DecodeResult<unknown>): PartialSuccess | null {
  if (result.rejected === 0) return null;
  const more = result.rejected - result.errors.length;
  return {
    rejected: result.rejected,
    errorMessage: result.errors.join('; ') + (more > 0 ? `; and ${more} more` : ''),
  };
}

function encodeResponse(partial: PartialSuccess | null): Uint8Array {
  if (partial === null || (partial.rejected === 0 && partial.errorMessage === '')) return new Uint8Array(0);
  const w = new ProtoWriter(16 + partial.errorMessage.length * 3);
  w.fork();
  // proto3 leaves zero and empty fields out.
  if (partial.rejected !== 0) w.tag(1, WIRE_VARINT).varint(partial.rejected);
  if (partial.errorMessage !== '') w.tag(2, WIRE_LEN).string(partial.errorMessage);
  return w.join(1).finish();
}

export function encodeTracesResponse(partial: PartialSuccess | null): Uint8Array {
  return encodeResponse(partial);
}

/** The same bytes as traces: both messages have the same field numbers and types. */
export function encodeMetricsResponse(partial: PartialSuccess | null): Uint8Array {
  return encodeResponse(partial);
}

export function tracesResponseJson(partial: PartialSuccess | null): TracesResponseJson {
  if (partial === null || (partial.rejected === 0 && partial.errorMessage === '')) return {};
  const p: { rejectedSpans?: string; errorMessage?: string } = {};
  // int64 is a string in proto3 JSON.
  if (partial.rejected !== 0) p.rejectedSpans = String(partial.rejected);
  if (partial.errorMessage !== '') p.errorMessage = partial.errorMessage;
  return { partialSuccess: p };
}

export function metricsResponseJson(partial: PartialSuccess | null): MetricsResponseJson {
  if (partial === null || (partial.rejected === 0 && partial.errorMessage === '')) return {};
  const p: { rejectedDataPoints?: string; errorMessage?: string } = {};
  if (partial.rejected !== 0) p.rejectedDataPoints = String(partial.rejected);
  if (partial.errorMessage !== '') p.errorMessage = partial.errorMessage;
  return { partialSuccess: p };
}

/** Either signal's response as protobuf: `rejected` 0 and `message` '' mean full success. */
export function encodeExportResponse(signal: ExportSignal, rejected: number, message: string): Uint8Array {
  const partial = { rejected, errorMessage: message };
  return signal === 'traces' ? encodeTracesResponse(partial) : encodeMetricsResponse(partial);
}

/** Either signal's response as the OTLP/JSON object (serialize it with JSON.stringify). */
export function exportResponseJson(
  signal: ExportSignal,
  rejected: number,
  message: string,
): TracesResponseJson | MetricsResponseJson {
  const partial = { rejected, errorMessage: message };
  return signal === 'traces' ? tracesResponseJson(partial) : metricsResponseJson(partial);
}
