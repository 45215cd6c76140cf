/**
 * Active health checks are not traffic and do not become traces. Every
 * caller's proxy checks every endpoint each interval (proxy/pipeline/
 * health-check.ts); in explicit mode, or under transparent capture, the
 * check reaches the peer's inbound listener, which serves it like a request.
 * Traced, that is interval × callers × endpoints of SERVER spans (plus the
 * app's own, since the traceparent it receives would say sampled) in every
 * trace search and in the span-derived RED aggregates. Envoy/Istio users do
 * not see health checks in their traces.
 *
 * So the inbound proxy continues an unsampled context for a GET carrying
 * HEALTH_CHECK_HEADER: it records no span, and the traceparent it sends the
 * app has flags 00, so a parent-based sampler in the app records nothing
 * either. The header still goes to the app (its logs can tell checks apart).
 *
 * Metrics: the request still counts in the proxy's request metrics and the
 * access log, like any request through the listener (Istio counts checks
 * that go through the listener; Envoy keeps its health-check filter's own
 * stats apart, which we do not add). Only GET is honoured, the one method the
 * checker sends: a caller cannot hide a write from traces with this header.
 */
import { newTraceId, type TraceContext } from './trace-context.js';

/** The method a request must have for HEALTH_CHECK_HEADER to make it untraced. */
export const HEALTH_CHECK_METHOD = 'GET';

/**
 * A new trace, not sampled, with no parent: what an inbound health check's
 * observation continues (no span is recorded, the app is told flags 00).
 */
export function healthCheckTraceContext(): TraceContext {
  return { traceId: newTraceId(), spanId: '', sampled: false, traceState: '' };
}
