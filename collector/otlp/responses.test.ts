import { describe, it, expect } from 'vitest';
import { JsonMetricsSerializer, JsonTraceSerializer, ProtobufMetricsSerializer, ProtobufTraceSerializer } from '@opentelemetry/otlp-transformer';
import {
  encodeExportResponse,
  encodeMetricsResponse,
  encodeTracesResponse,
  exportResponseJson,
  metricsResponseJson,
  partialSuccessOf,
  tracesResponseJson,
} from './responses.js';

describe('export responses, read back by the OpenTelemetry JS exporters’ own deserializers', () => {
  it('full success is an empty message and {}', () => {
    expect(encodeTracesResponse(null)).toEqual(new Uint8Array(0));
    expect(encodeMetricsResponse(null)).toEqual(new Uint8Array(0));
    expect(encodeExportResponse('traces', 0, '')).toEqual(new Uint8Array(0));
    expect(ProtobufTraceSerializer.deserializeResponse(encodeTracesResponse(null))).toEqual({});
    expect(tracesResponseJson(null)).toEqual({});
    expect(exportResponseJson('metrics', 0, '')).toEqual({});
  });

  it('traces partial success: rejected_spans 1 and error_message 2', () => {
    const partial = { rejected: 3, errorMessage: 'spans[1].trace_id: expected 16 bytes, got 15; … ✓' };
    const bytes = encodeTracesResponse(partial);
    expect(ProtobufTraceSerializer.deserializeResponse(bytes)).toEqual({
      partialSuccess: { rejectedSpans: 3, errorMessage: partial.errorMessage },
    });
    expect(Buffer.from(encodeExportResponse('traces', 3, partial.errorMessage))).toEqual(Buffer.from(bytes));
    const json = tracesResponseJson(partial);
    expect(json).toEqual({ partialSuccess: { rejectedSpans: '3', errorMessage: partial.errorMessage } });
    expect(JsonTraceSerializer.deserializeResponse(Buffer.from(JSON.stringify(json)))).toEqual(json);
  });

  it('metrics partial success: rejected_data_points 1 and error_message 2', () => {
    const partial = { rejected: 70_000, errorMessage: 'x'.repeat(300) };
    expect(ProtobufMetricsSerializer.deserializeResponse(encodeMetricsResponse(partial))).toEqual({
      partialSuccess: { rejectedDataPoints: 70_000, errorMessage: partial.errorMessage },
    });
    const json = exportResponseJson('metrics', partial.rejected, partial.errorMessage);
    expect(json).toEqual({ partialSuccess: { rejectedDataPoints: '70000', errorMessage: partial.errorMessage } });
    expect(metricsResponseJson(partial)).toEqual(json);
    expect(JsonMetricsSerializer.deserializeResponse(Buffer.from(JSON.stringify(json)))).toEqual(json);
  });

  it('a warning (nothing rejected, a message) is still sent', () => {
    expect(ProtobufTraceSerializer.deserializeResponse(encodeExportResponse('traces', 0, 'slow down'))).toEqual({
      partialSuccess: { errorMessage: 'slow down' },
    });
    expect(tracesResponseJson({ rejected: 0, errorMessage: 'slow down' })).toEqual({ partialSuccess: { errorMessage: 'slow down' } });
  });

  it('partialSuccessOf summarizes a decode result', () => {
    expect(partialSuccessOf({ items: [1], rejected: 0, errors: [] })).toBeNull();
    expect(partialSuccessOf({ items: [], rejected: 2, errors: ['a: x', 'b: y'] })).toEqual({ rejected: 2, errorMessage: 'a: x; b: y' });
    expect(partialSuccessOf({ items: [], rejected: 12, errors: ['a: x'] })).toEqual({ rejected: 12, errorMessage: 'a: x; and 11 more' });
  });
});
