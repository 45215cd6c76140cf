/**
 * A route's mirror (Istio's mirror, Envoy's request_mirror_policies): a
 * copy of a request goes to another destination, its answer is read and
 * thrown away, and nothing about it can delay or fail the request it copies.
 * The copy carries `x-tracemesh-mirror: 1` and a `-shadow` authority, and
 * is its own CLIENT span (tracemesh.mirror = true) beside the request's.
 *
 * Bounded: at most MAX_MIRRORS_IN_FLIGHT copies per handler are in flight;
 * beyond that (or when the mirror's destination has no endpoint, no session
 * to spare, or no request to spare under maxRequests) the copy is dropped
 * and counted (here and, through ProxyMetrics.recordMirror, as metrics, as
 * the HTTP/1 path does). Each copy ends within the route's timeout, else the proxy's
 * requestTimeoutMs.
 */
import { constants, type ClientHttp2Stream, type IncomingHttpHeaders, type OutgoingHttpHeaders } from 'node:http2';
import type { ProxyLimits } from '../limits.js';
import type { Destination, RequestFacts, RoutePlan } from '../pipeline/types.js';
import { MIRROR_HEADER } from '../telemetry/attributes.js';
import { finishHttpObservation, type HttpObservation } from '../telemetry/http-observation.js';
import type { TraceContext } from '../telemetry/trace-context.js';
import type { Telemetry } from '../telemetry/telemetry.js';
import { siblingObservation } from './attempt-observation.js';
import { observeGrpcStatus } from './grpc.js';
import { planRequestHeaders, shadowAuthority } from './plan-headers.js';
import type { ReplayableBody } from './request-body.js';
import { headerValue, upstreamRequestHeaders, type UpstreamRequestOptions } from './request-headers.js';
import type { Http2SessionPool } from './session-pool.js';

const { NGHTTP2_CANCEL } = constants;

export const MAX_MIRRORS_IN_FLIGHT = 64;

export interface MirrorSender {
  /**
   * Sends a copy of a request whose body is whole (`body` undefined: it had
   * none) to `target`. False when it was dropped. Never throws.
   */
  send(
    target: Destination,
    plan: RoutePlan,
    facts: RequestFacts,
    headers: IncomingHttpHeaders,
    body: ReplayableBody | undefined,
    main: HttpObservation,
    incoming: TraceContext | undefined,
    trailers: OutgoingHttpHeaders | undefined,
  ): boolean;
  readonly inFlight: number;
  /** Copies sent so far. */
  readonly sent: number;
  /** Copies not sent: over the in-flight bound, or the destination could not take one. */
  readonly dropped: number;
}

const CALL = Symbol('tracemesh.h2.mirrorCall');
type Tagged = ClientHttp2Stream & { [CALL]?: MirrorCall };

/** One copy in flight. */
class MirrorCall {
  readonly timer: NodeJS.Timeout;
  trailers: OutgoingHttpHeaders | undefined;
  done = false;

  constructor(
    readonly sender: Http2MirrorSender,
    readonly obs: HttpObservation,
    readonly target: Destination,
    readonly stream: ClientHttp2Stream,
    timeoutMs: number,
    trailers: OutgoingHttpHeaders | undefined,
  ) {
    this.trailers = trailers;
    this.timer = setTimeout(onMirrorTimeout, timeoutMs, this);
    this.timer.unref();
  }

  end(): void {
    if (this.done) return;
    this.done = true;
    clearTimeout(this.timer);
    this.target.limits.requestEnded();
    const obs = this.obs;
    if (obs.statusCode === 0 && obs.flags.length === 0) obs.addFlag('UC', `mirror copy to ${this.target.name} ended without a response`);
    this.sender.inFlight--;
    finishHttpObservation(this.sender.telemetry, obs);
  }
}

function callOf(stream: ClientHttp2Stream): MirrorCall | undefined {
  return (stream as Tagged)[CALL];
}

function onMirrorError(this: ClientHttp2Stream): void {
  // The copy's fate is its span's business only; 'close' ends it.
}

function onMirrorResponse(this: ClientHttp2Stream, headers: IncomingHttpHeaders): void {
  const call = callOf(this);
  if (call === undefined) return;
  call.obs.statusCode = Number(headers[':status']);
  observeGrpcStatus(call.obs, headers);
}

function onMirrorData(this: ClientHttp2Stream, chunk: Buffer): void {
  const call = callOf(this);
  if (call !== undefined) call.obs.responseBytes += chunk.length;
}

function onMirrorTrailers(this: ClientHttp2Stream, trailers: IncomingHttpHeaders): void {
  const call = callOf(this);
  if (call !== undefined) observeGrpcStatus(call.obs, trailers);
}

function onMirrorWantTrailers(this: ClientHttp2Stream): void {
  try {
    this.sendTrailers(callOf(this)?.trailers ?? {});
  } catch {
    // Closed meanwhile.
  }
}

function onMirrorClose(this: ClientHttp2Stream): void {
  callOf(this)?.end();
}

function onMirrorTimeout(call: MirrorCall): void {
  if (call.done) return;
  call.obs.addFlag('UT', `mirror copy to ${call.target.name} took too long`);
  if (!call.stream.closed && !call.stream.destroyed) call.stream.close(NGHTTP2_CANCEL);
}

class Http2MirrorSender implements MirrorSender {
  inFlight = 0;
  sent = 0;
  dropped = 0;

  constructor(
    readonly pool: Http2SessionPool,
    readonly telemetry: Telemetry,
    readonly limits: ProxyLimits,
    readonly requestOptions: UpstreamRequestOptions,
    readonly maxInFlight: number,
  ) {}

  send(
    target: Destination,
    plan: RoutePlan,
    facts: RequestFacts,
    headers: IncomingHttpHeaders,
    body: ReplayableBody | undefined,
    main: HttpObservation,
    incoming: TraceContext | undefined,
    trailers: OutgoingHttpHeaders | undefined,
  ): boolean {
    if (this.inFlight >= this.maxInFlight) return this.drop(target);
    const endpoint = target.pick(facts, undefined);
    if (endpoint === undefined) return this.drop(target);
    if (!target.limits.tryStartRequest()) return this.drop(target);
    let stream: ClientHttp2Stream;
    const obs = siblingObservation(main, incoming);
    try {
      // The copy's session is keyed by the caller's address like the request's (it matters only under a connector that keeps it).
      const session = this.pool.sessionWithin(endpoint, target, main.clientAddress);
      if (session === undefined) {
        target.limits.requestEnded();
        return this.drop(target);
      }
      obs.mirror = true;
      obs.lbPanic = target.lastPickPanicked === true;
      obs.destinationService = target.cluster.service;
      obs.destinationNamespace = target.cluster.namespace;
      obs.destinationVersion = endpoint.version;
      obs.subset = target.subset;
      obs.upstreamAddress = endpoint.address;
      obs.upstreamPort = endpoint.port;
      obs.requestBytes = body === undefined ? 0 : body.size;
      const out = upstreamRequestHeaders(headers, obs, this.requestOptions);
      planRequestHeaders(plan, out);
      const authority = out[':authority'] ?? headerValue(headers, 'host');
      if (typeof authority === 'string') out[':authority'] = shadowAuthority(authority);
      delete out['host'];
      out[MIRROR_HEADER] = '1';
      stream = session.request(out, body === undefined);
    } catch {
      // The pool is closing, or the session refuses streams: the copy is lost, the request is not.
      target.limits.requestEnded();
      return this.drop(target);
    }
    this.inFlight++;
    this.sent++;
    this.telemetry.metrics.recordMirror?.(target.name, true);
    const timeoutMs = plan.timeoutMs > 0 ? plan.timeoutMs : this.limits.requestTimeoutMs > 0 ? this.limits.requestTimeoutMs : 15_000;
    (stream as Tagged)[CALL] = new MirrorCall(this, obs, target, stream, timeoutMs, trailers);
    stream.on('error', onMirrorError);
    stream.once('response', onMirrorResponse);
    stream.on('data', onMirrorData);
    stream.once('trailers', onMirrorTrailers);
    stream.on('wantTrailers', onMirrorWantTrailers);
    stream.once('close', onMirrorClose);
    if (body !== undefined) {
      body.writeTo(stream);
      stream.end();
    }
    return true;
  }

  private drop(target: Destination): false {
    this.dropped++;
    this.telemetry.metrics.recordMirror?.(target.name, false);
    return false;
  }
}

export function createMirrorSender(
  pool: Http2SessionPool,
  telemetry: Telemetry,
  limits: ProxyLimits,
  requestOptions: UpstreamRequestOptions,
  maxInFlight: number = MAX_MIRRORS_IN_FLIGHT,
): MirrorSender {
  return new Http2MirrorSender(pool, telemetry, limits, requestOptions, maxInFlight);
}
