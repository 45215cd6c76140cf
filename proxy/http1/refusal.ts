/**
 * Requests the proxy refuses before any exchange starts — a malformed or
 * oversized head, a head timeout, CONNECT where none is accepted — still get
 * an answer on the wire and an observation (metrics, access log, span), like
 * every other request.
 */
import { wireErrorBody, type WireError } from '../errors-to-wire.js';
import { finishHttpObservation, HttpObservation, setPeers } from '../telemetry/http-observation.js';
import type { TraceContext } from '../telemetry/trace-context.js';
import { errorResponse } from './head-writer.js';
import type { DownstreamConnection } from './serve.js';

/** A new observation of a request on this connection. */
export function newHttp1Observation(conn: DownstreamConnection, incoming: TraceContext | undefined): HttpObservation {
  const direction = conn.deps.direction;
  const obs = new HttpObservation(direction.direction, direction.spanKind, 'http1', incoming);
  obs.clientAddress = conn.remoteAddress;
  obs.clientPort = conn.remotePort;
  return obs;
}

/** Writes the error answer (with Connection: close) and reports the request; the caller closes. */
export function answerRefusal(conn: DownstreamConnection, err: WireError, method: string): void {
  const obs = newHttp1Observation(conn, undefined);
  obs.method = method;
  obs.addFlag(err.flag, err.message);
  obs.statusCode = err.httpStatus;
  const deps = conn.deps;
  // Who called is unknown (the head was not read); who was called is this workload inbound, unknown outbound.
  const peer = conn.peer;
  peer.service = '';
  peer.namespace = '';
  peer.version = '';
  setPeers(obs, deps.telemetry.identity, peer);
  obs.responseBytes = wireErrorBody(err).length;
  conn.socket.write(errorResponse(err, true, false), 'latin1');
  finishHttpObservation(deps.telemetry, obs);
}
