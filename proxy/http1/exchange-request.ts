/**
 * The request side of an Exchange: the upstream head and the body so far,
 * the body as it arrives (raw, with backpressure; kept for a retry or a
 * mirror up to MAX_RETRY_BODY_BYTES, held while no upstream is attached),
 * the request's observation, the mirror's copy, and the clock that starts when the request is complete.
 * Functions of the exchange, no closures per request.
 */
import { randomUUID } from 'node:crypto';
import { wireError } from '../errors-to-wire.js';
import { MAX_RETRY_BODY_BYTES } from '../limits.js';
import { MIRROR_HEADER } from '../telemetry/attributes.js';
import type { HttpObservation } from '../telemetry/http-observation.js';
import { HEALTH_CHECK_METHOD, healthCheckTraceContext } from '../telemetry/health-check-trace.js';
import { extractTraceContext, type TraceContext } from '../telemetry/trace-context.js';
import { BODY_ERROR, BODY_MORE, BODY_NONE } from './body-framing.js';
import { D_WAIT } from './conn-state.js';
import { abortResponse, answer } from './exchange-answers.js';
import { copyRequest, onRouteTimeout } from './exchange-attempts.js';
import { R_BODY, R_HEAD, R_WAIT } from './exchange-phase.js';
import type { Exchange } from './exchange.js';
import type { HttpHead } from './head.js';
import { H_HEALTH_CHECK, H_TRACEPARENT, H_USER_AGENT, H_X_REQUEST_ID } from './header-kinds.js';
import { shadowAuthority } from './mirror.js';
import { newHttp1Observation } from './refusal.js';
import type { UpstreamConnection } from './upstream-pool.js';
import { writeHeadAndBody } from './head-writer.js';
import { plannedRequestHead } from './upstream-request.js';

/** The one buffer of a kept body (retries and mirrors resend it). */
function joined(chunks: readonly Buffer[]): Buffer | undefined {
  if (chunks.length === 0) return undefined;
  return chunks.length === 1 ? chunks[0] : Buffer.concat(chunks);
}

/** `held` with `chunk` appended (a new list when there was none). */
function chunkHolder(held: Buffer[] | undefined, chunk: Buffer): Buffer[] {
  if (held === undefined) return [chunk];
  held.push(chunk);
  return held;
}

/** The request's observation: its trace context (continued or new) and what the request says about itself. */
export function observeRequest(ex: Exchange, head: HttpHead): HttpObservation {
  // Most requests carry no B3 and at most a traceparent: skip the lookups when neither is there.
  // With tracing off the proxy makes no span, so it continues no context either (trace fields pass untouched).
  // The health-check mark is a kind the parser already classified: one index read on the plain path.
  let incoming: TraceContext | undefined;
  if (head.firstOf[H_HEALTH_CHECK] !== -1 && ex.untracedHealthChecks && head.method === HEALTH_CHECK_METHOD) incoming = healthCheckTraceContext();
  else if (ex.rewriteTraceContext && (head.firstOf[H_TRACEPARENT] !== -1 || head.hasB3)) incoming = extractTraceContext(head.lookup);
  const obs = newHttp1Observation(ex.conn, incoming);
  ex.obs = obs;
  obs.method = head.method;
  obs.userAgent = head.valueOf(H_USER_AGENT) ?? '';
  const requestId = head.valueOf(H_X_REQUEST_ID);
  ex.newRequestId = requestId === undefined || requestId === '' ? randomUUID() : '';
  obs.requestId = ex.newRequestId === '' ? (requestId as string) : ex.newRequestId;
  return obs;
}

/** The head and the body so far: all of it when kept, else the first bytes and any held while waiting. */
export function sendHead(ex: Exchange): void {
  const up = ex.upstream as UpstreamConnection;
  let body = ex.firstBody;
  if (ex.kept !== undefined) {
    body = joined(ex.kept);
  } else if (ex.held !== undefined) {
    body = joined(body === undefined ? ex.held : [body, ...ex.held]);
    ex.held = undefined;
    ex.firstBody = undefined;
    ex.moreBodySent = true;
  }
  const ok = writeHeadAndBody(up.socket, ex.upstreamHead, body);
  if (!ex.requestDone) {
    if (!ok) ex.conn.pauseReading();
    else ex.conn.resumeReading();
  }
}

/** Keeps body bytes for a resend, until there are more than MAX_RETRY_BODY_BYTES (then the request is not retried nor mirrored). */
export function keep(ex: Exchange, chunk: Buffer): void {
  const kept = ex.kept as Buffer[];
  kept.push(chunk);
  ex.keptBytes += chunk.length;
  if (ex.keptBytes <= MAX_RETRY_BODY_BYTES) return;
  ex.kept = undefined;
  ex.keptBytes = 0;
  // Not attached: nothing of it went out yet, so all of it is still to send.
  if (ex.upstream === undefined) {
    ex.held = kept;
    ex.firstBody = undefined;
  }
}

/** Request body bytes at buf[start…]; returns the offset just past those consumed. */
export function requestBodyBytes(ex: Exchange, buf: Buffer, start: number): number {
  const r = ex.requestBody.consume(buf, start, buf.length);
  if (r === BODY_ERROR) {
    const err = wireError('DPE', ex.requestBody.error);
    // The request itself turned out malformed after forwarding began (a bad chunk).
    if (ex.finalHeadSent) abortResponse(ex, err.flag, err.message);
    else answer(ex, err, false);
    return buf.length;
  }
  const end = r === BODY_MORE ? buf.length : r;
  if (end > start) {
    ex.moreBodySent = true;
    const chunk = start === 0 && end === buf.length ? buf : buf.subarray(start, end);
    const up = ex.upstream;
    // No upstream yet (delay, backoff, a connection): the bytes wait, kept or held, and no more are read until one is attached.
    if (ex.kept !== undefined) keep(ex, chunk);
    else if (up === undefined && ex.phase === R_WAIT) ex.held = chunkHolder(ex.held, chunk);
    if (up !== undefined) {
      if (!up.socket.write(chunk)) ex.conn.pauseReading();
    } else if (ex.phase === R_WAIT) {
      ex.conn.pauseReading();
    }
  }
  if (r !== BODY_MORE) {
    ex.requestDone = true;
    ex.conn.state = D_WAIT;
    onRequestComplete(ex);
  }
  return end;
}

/** The whole request is here: the mirror copy goes, and the route's timeout or the request timeout starts. */
export function onRequestComplete(ex: Exchange): void {
  const plan = ex.plan;
  if (ex.phase === R_BODY) {
    // The response started before the request ended: the route's clock still starts here (as Envoy's) and bounds the rest of the response.
    if (plan !== undefined && ex.destination !== undefined && plan.timeoutMs > 0 && ex.routeTimer === undefined) ex.routeTimer = setTimeout(onRouteTimeout, plan.timeoutMs, ex);
    return;
  }
  if (ex.phase !== R_HEAD && ex.phase !== R_WAIT) return;
  if (plan !== undefined) {
    // Before beginForwarding (a fault delay) the route's clock has not started: it starts there.
    if (ex.destination === undefined) return;
    mirror(ex);
    if (plan.timeoutMs > 0) {
      // The route's timeout replaces the proxy's default, and covers every attempt and the whole response.
      if (ex.routeTimer === undefined) ex.routeTimer = setTimeout(onRouteTimeout, plan.timeoutMs, ex);
      return;
    }
  }
  if (ex.conn.limits.requestTimeoutMs <= 0 || ex.responseTimerArmed) return;
  ex.responseTimerArmed = true;
  ex.responseSince = -1;
}

/**
 * The mirror's copy, once the whole body is here (and kept): to an
 * endpoint of the mirror destination, "-shadow" authority, its answer
 * discarded. Never delays or fails this request.
 */
function mirror(ex: Exchange): void {
  const plan = ex.plan;
  if (plan === undefined || plan.mirror === undefined || ex.mirrored || !ex.requestDone || ex.destination === undefined) return;
  ex.mirrored = true;
  const mirrors = ex.conn.deps.mirrors;
  if (mirrors === undefined || ex.upgrade || (ex.kept === undefined && ex.requestBody.mode !== BODY_NONE)) return;
  const destination = plan.mirror;
  if (!mirrors.admit(destination)) return;
  const endpoint = destination.pick(ex.facts, undefined);
  if (endpoint === undefined) return;
  const obs = ex.obs as HttpObservation;
  obs.mirroredTo = destination.name;
  const copy = newHttp1Observation(ex.conn, { traceId: obs.traceId, spanId: obs.parentSpanId, sampled: obs.sampled, traceState: obs.traceState });
  copyRequest(obs, copy);
  copy.mirror = true;
  copy.lbPanic = destination.lastPickPanicked === true;
  copy.subset = destination.subset;
  copy.destinationService = destination.cluster.service;
  copy.destinationNamespace = destination.cluster.namespace;
  const target = ex.target;
  const authority = shadowAuthority(plan.authority ?? (target.port === 80 ? target.host : `${target.host}:${target.port}`));
  copy.host = authority;
  copy.requestBytes = ex.requestBody.bodyBytes;
  const extra = `${MIRROR_HEADER}: 1\r\n` + (ex.conn.head.versionMinor === 0 ? '' : 'connection: close\r\n');
  const head = plannedRequestHead(ex.conn.head, target, copy, ex, plan, authority, extra);
  mirrors.send(destination, endpoint, head, ex.kept ?? [], copy);
}
