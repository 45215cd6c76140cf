/** Span records for the span-sink tests. */
import type { ProxySpanRecord } from './span-record.js';
import { newSpanId, newTraceId } from './trace-context.js';

/** A client or server span ending now-ish, with typical proxy attributes; `i` makes it distinct. */
export function spanRecord(i: number, overrides: Partial<ProxySpanRecord> = {}): ProxySpanRecord {
  const start = Math.floor(Date.now()) - 1000 + (i % 500) + 0.123;
  return {
    traceId: newTraceId(),
    spanId: newSpanId(),
    parentSpanId: '',
    traceState: '',
    sampled: true,
    name: `GET /items/${i}`,
    kind: i % 2 === 0 ? 'server' : 'client',
    startTimeMs: start,
    endTimeMs: start + 1.456,
    status: 'unset',
    statusMessage: '',
    attributes: { 'http.request.method': 'GET', 'http.response.status_code': 200, 'tracemesh.attempt': 1 },
    ...overrides,
  };
}
