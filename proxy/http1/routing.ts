/**
 * Where a request goes: its target's authority (or the connection's original
 * destination) through the direction's route to a cluster; and who calls
 * whom, for the observation. Without traffic management (inbound, or a
 * direction without a TrafficConfig) the cluster's round robin picks the
 * endpoint here. With it (outbound), the route table's plan is chosen here
 * and the exchange carries it out (local answers, attempts, picks). One
 * RouteChoice per connection, filled per request, holding the endpoint's
 * request bookkeeping.
 */
import { wireError, type WireError } from '../errors-to-wire.js';
import type { Cluster, ClusterEndpoint } from '../clusters/types.js';
import type { Destination, RoutePlan } from '../pipeline/types.js';
import { setPeers, type HttpObservation } from '../telemetry/http-observation.js';
import type { HttpHead } from './head.js';
import { H_SOURCE_NAMESPACE, H_SOURCE_SERVICE, H_SOURCE_VERSION } from './header-kinds.js';
import type { RequestTarget } from './request-target.js';
import type { Http1RequestFacts } from './request-facts.js';
import type { DownstreamConnection } from './serve.js';

export class RouteChoice {
  cluster: Cluster | undefined = undefined;
  endpoint: ClusterEndpoint | undefined = undefined;
  /** The route table's plan (traffic management); undefined without one. */
  plan: RoutePlan | undefined = undefined;
  /** The plan's destination once forwarding began (its limits hold this request). */
  destination: Destination | undefined = undefined;

  get endpointKey(): string {
    return this.endpoint === undefined ? '' : this.endpoint.key;
  }

  /** The request to the endpoint ended; `failure` counts it against the endpoint. */
  end(failure: string | undefined): void {
    if (this.cluster !== undefined && this.endpoint !== undefined) this.cluster.onRequestEnd(this.endpoint, failure);
    this.cluster = undefined;
    this.endpoint = undefined;
    this.plan = undefined;
    this.destination = undefined;
  }
}

/**
 * Fills `choice` (and the request's endpoint bookkeeping has started), or
 * returns what to answer instead: DPE for an unusable target, NR, UH.
 * With traffic management, fills `choice.plan` and leaves the endpoint to
 * the exchange (after the plan's local answers, fault delay and limits).
 */
export function routeRequest(
  conn: DownstreamConnection,
  head: HttpHead,
  target: RequestTarget,
  obs: HttpObservation,
  choice: RouteChoice,
  facts: Http1RequestFacts,
): WireError | undefined {
  const deps = conn.deps;
  choice.cluster = undefined;
  choice.endpoint = undefined;
  choice.plan = undefined;
  choice.destination = undefined;
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
  const traffic = direction.traffic;
  if (traffic !== undefined) {
    facts.fill(target, obs.method, self.service, self.namespace, conn.remoteAddress);
    const plan = traffic().routes.select(cluster, facts);
    choice.plan = plan;
    obs.routeName = plan.routeName;
    const destination = plan.destination;
    peer.service = destination === undefined ? cluster.service : destination.cluster.service;
    peer.namespace = destination === undefined ? cluster.namespace : destination.cluster.namespace;
    peer.version = '';
    if (destination !== undefined) obs.subset = destination.subset;
    setPeers(obs, self, peer);
    return undefined;
  }
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

/** The plan's endpoint is chosen: the observation names it (and the callee's version). */
export function observeEndpoint(obs: HttpObservation, endpoint: ClusterEndpoint): void {
  obs.upstreamAddress = endpoint.address;
  obs.upstreamPort = endpoint.port;
  obs.destinationVersion = endpoint.version;
}
