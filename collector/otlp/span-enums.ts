/**
 * Span enums and the checks both span decoders (protobuf and JSON) apply
 * once a span's fields are read.
 */
import type { SpanKindName, StatusCodeName } from '../model.js';
import { OtlpMalformedError } from './malformed.js';

/** Indexed by the OTLP SpanKind number. */
export const SPAN_KIND_NAMES: readonly SpanKindName[] = ['Unspecified', 'Internal', 'Server', 'Client', 'Producer', 'Consumer'];
/** Indexed by the OTLP Status.StatusCode number. */
export const STATUS_CODE_NAMES: readonly StatusCodeName[] = ['Unset', 'Ok', 'Error'];

/** Enum names OTLP/JSON senders may use instead of the numbers. */
export const SPAN_KIND_BY_NAME: ReadonlyMap<string, number> = new Map([
  ['SPAN_KIND_UNSPECIFIED', 0],
  ['SPAN_KIND_INTERNAL', 1],
  ['SPAN_KIND_SERVER', 2],
  ['SPAN_KIND_CLIENT', 3],
  ['SPAN_KIND_PRODUCER', 4],
  ['SPAN_KIND_CONSUMER', 5],
]);
export const STATUS_CODE_BY_NAME: ReadonlyMap<string, number> = new Map([
  ['STATUS_CODE_UNSET', 0],
  ['STATUS_CODE_OK', 1],
  ['STATUS_CODE_ERROR', 2],
]);

export function spanKindName(kind: number): SpanKindName {
  const name = SPAN_KIND_NAMES[kind];
  if (name === undefined) throw new OtlpMalformedError(`${kind} is not a SpanKind (0..5)`, 'kind');
  return name;
}

export function statusCodeName(code: number): StatusCodeName {
  const name = STATUS_CODE_NAMES[code];
  if (name === undefined) throw new OtlpMalformedError(`${code} is not a StatusCode (0..2)`, 'status.code');
  return name;
}

export function checkSpanTimes(startTime: bigint, endTime: bigint): void {
  if (endTime < startTime) {
    throw new OtlpMalformedError(`${endTime} is before start_time_unix_nano ${startTime}`, 'end_time_unix_nano');
  }
}
