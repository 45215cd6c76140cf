/**
 * The observation of a retry or a mirror's copy: one CLIENT span per
 * upstream try (DESIGN.md, Telemetry), each with its own span id and the same
 * parent as the request's first try, so a trace shows the tries side by side
 * under the caller's span. The request's fields are copied from the first
 * observation; the response's start empty.
 */
import { HttpObservation } from '../telemetry/http-observation.js';
import type { TraceContext } from '../telemetry/trace-context.js';

/** The context the first observation continued (`incoming`), or, when it started the trace, its trace as a root. */
function parentOf(first: HttpObservation, incoming: TraceContext | undefined): TraceContext {
  return incoming ?? { traceId: first.traceId, spanId: first.parentSpanId, sampled: first.sampled, traceState: first.traceState };
}

/** A sibling of `first`: same request, same parent, new span. `attempt` is left to the caller. */
export function siblingObservation(first: HttpObservation, incoming: TraceContext | undefined): HttpObservation {
  const obs = new HttpObservation(first.direction, first.kind, first.protocol, parentOf(first, incoming));
  obs.method = first.method;
  obs.scheme = first.scheme;
  obs.host = first.host;
  obs.port = first.port;
  obs.path = first.path;
  obs.query = first.query;
  obs.userAgent = first.userAgent;
  obs.requestId = first.requestId;
  obs.clientAddress = first.clientAddress;
  obs.clientPort = first.clientPort;
  obs.rpcService = first.rpcService;
  obs.rpcMethod = first.rpcMethod;
  obs.sourceService = first.sourceService;
  obs.sourceNamespace = first.sourceNamespace;
  obs.sourceVersion = first.sourceVersion;
  obs.destinationService = first.destinationService;
  obs.destinationNamespace = first.destinationNamespace;
  obs.routeName = first.routeName;
  obs.subset = first.subset;
  return obs;
}
