/**
 * Where a request goes: its target's authority (or the connection's original
 * destination) through the direction's route to a cluster, round robin to an
 * endpoint; and who calls whom, for the observation. One RouteChoice per
 * connection, filled per request, holding the endpoint's request bookkeeping.
 */
import { wireError, type WireError } from '../errors-to-wire.js';
import type { Cluster, ClusterEndpoint } from '../clusters/types.js';
import { setPeers, type HttpObservation } from '../telemetry/http-observation.js';
import type { HttpHead } from './head.js';
import { H_SOURCE_NAMESPACE, H_SOURCE_SERVICE, H_SOURCE_VERSION } from './header-kinds.js';
import type { RequestTarget } from './request-target.js';
import type { DownstreamConnection } from './serve.js';

export class RouteChoice {
  cluster: Cluster | undefined = undefined;
  endpoint: ClusterEndpoint | undefined = undefined;

  get endpointKey(): string {
    return this.endpoint === undefined ? '' : this.endpoint.key;
  }

  /** The request to the endpoint ended; `failure` counts it against the endpoint. */
  end(failure: string | undefined): void {
    if (this.cluster !== undefined && this.endpoint !== undefined) this.cluster.onRequestEnd(this.endpoint, failure);
    this.cluster = undefined;
    this.endpoint = undefined;
  }
}

/**
 * Fills `choice` (and the request's endpoint bookkeeping has started), or
 * returns what to answer instead: DPE for an unusable target, NR, UH.
 */
export function routeRequest(conn: DownstreamConnection, head: HttpHead, target: RequestTarget, obs: HttpObservation, choice: RouteChoice): WireError | undefined {
  const deps = conn.deps;
  choice.cluster = undefined;
  choice.endpoint = undefined;
  if (!target.resolve(head)) return wireError('DPE', target.error);
  obs.host = target.host;
  obs.port = target.port;
  obs.path = target.path;
  obs.query = target.query;
  const direction = deps.direction;
  const inbound = direction.direction === 'inbound';

  let route = direction.route(target.host, target.port);
  // Transparent capture and CONNECT tunnels know where the client was going even when Host names no service.
  if (route === undefined && conn.originalTarget !== undefined) route = direction.route(conn.originalTarget.host, conn.originalTarget.port);
  const self = deps.telemetry.identity;
  const peer = conn.peer;
  // Inbound: the calling proxy says who its workload is. Outbound: the callee is the cluster's service.
  peer.service = inbound ? (head.valueOf(H_SOURCE_SERVICE) ?? '') : '';
  peer.namespace = inbound ? (head.valueOf(H_SOURCE_NAMESPACE) ?? '') : '';
  peer.version = inbound ? (head.valueOf(H_SOURCE_VERSION) ?? '') : '';
  if (route === undefined) {
    setPeers(obs, self, peer);
    return wireError('NR', `${target.host}:${target.port}`);
  }
  const cluster = route.cluster;
  obs.routeName = route.routeName;
  const endpoint = cluster.pick();
  if (!inbound) {
    peer.service = cluster.service;
    peer.namespace = cluster.namespace;
    peer.version = endpoint === undefined ? '' : endpoint.version;
  }
  setPeers(obs, self, peer);
  if (endpoint === undefined) return wireError('UH', cluster.name);
  obs.upstreamAddress = endpoint.address;
  obs.upstreamPort = endpoint.port;
  choice.cluster = cluster;
  choice.endpoint = endpoint;
  cluster.onRequestStart(endpoint);
  return undefined;
}
