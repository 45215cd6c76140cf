/**
 * A ClusterRegistry built once from Service specs: one cluster per service
 * port, endpoints in round robin, names resolved through a Map of every form
 * a client may write. Built anew (not mutated) when the configuration changes.
 */
import type { EndpointSpec, ServiceSpec } from '../../src/config/types.js';
import type { Cluster, ClusterEndpoint, ClusterRegistry, EndpointMatch, ServicePort } from './types.js';

/** The endpoint as one service port sees it: its target for that port (`ports[name]`), else its `port`. */
function makeEndpoint(spec: EndpointSpec, portName = ''): ClusterEndpoint {
  const port = spec.ports?.[portName] ?? spec.port;
  return {
    address: spec.address,
    port,
    labels: spec.labels,
    version: spec.labels['version'] ?? '',
    key: spec.address.includes(':') ? `[${spec.address}]:${port}` : `${spec.address}:${port}`,
    activeRequests: 0,
    totalRequests: 0,
    failedRequests: 0,
    consecutiveFailures: 0,
    lastFailure: '',
  };
}

class RoundRobinCluster implements Cluster {
  readonly name: string;
  private next = 0;

  constructor(
    readonly service: string,
    readonly namespace: string,
    readonly port: ServicePort,
    readonly endpoints: readonly ClusterEndpoint[],
  ) {
    this.name = `${service}.${namespace}:${port.port}`;
  }

  pick(): ClusterEndpoint | undefined {
    const count = this.endpoints.length;
    if (count === 0) return undefined;
    const endpoint = this.endpoints[this.next % count];
    this.next = (this.next + 1) % count;
    return endpoint;
  }

  onRequestStart(endpoint: ClusterEndpoint): void {
    endpoint.activeRequests++;
    endpoint.totalRequests++;
  }

  onRequestEnd(endpoint: ClusterEndpoint, failure: string | undefined): void {
    endpoint.activeRequests--;
    if (failure === undefined) {
      endpoint.consecutiveFailures = 0;
    } else {
      endpoint.failedRequests++;
      endpoint.consecutiveFailures++;
      endpoint.lastFailure = failure;
    }
  }
}

/** The names a client may use for a service in a namespace, Kubernetes-style. */
function hostNames(name: string, namespace: string): string[] {
  return [name, `${name}.${namespace}`, `${name}.${namespace}.svc`, `${name}.${namespace}.svc.cluster.local`];
}

class StaticRegistry implements ClusterRegistry {
  readonly clusters: readonly Cluster[];
  private readonly byHostPort = new Map<string, Cluster>();
  private readonly byEndpointAddress = new Map<string, EndpointMatch>();

  constructor(
    services: readonly ServiceSpec[],
    readonly version: string,
  ) {
    const clusters: Cluster[] = [];
    for (const service of services) {
      // Each service port gets its own endpoint objects: the target port may
      // differ per service port, and live counters are per port.
      for (const port of service.ports) {
        const cluster = new RoundRobinCluster(service.name, service.namespace, port, service.endpoints.map((spec) => makeEndpoint(spec, port.name)));
        clusters.push(cluster);
        for (const host of [...hostNames(service.name, service.namespace), ...service.vips]) {
          const key = `${host.toLowerCase()}:${port.port}`;
          // The short name belongs to the first namespace that claims it (documents order).
          if (!this.byHostPort.has(key)) this.byHostPort.set(key, cluster);
        }
        for (const endpoint of service.endpoints) {
          const key = `${endpoint.address.toLowerCase()}:${port.port}`;
          if (!this.byEndpointAddress.has(key)) this.byEndpointAddress.set(key, { cluster, labels: endpoint.labels });
        }
      }
    }
    this.clusters = clusters;
  }

  resolve(host: string, port: number): Cluster | undefined {
    return this.byHostPort.get(`${host.toLowerCase()}:${port}`);
  }

  resolveEndpointAddress(address: string, port: number): EndpointMatch | undefined {
    return this.byEndpointAddress.get(`${address.toLowerCase()}:${port}`);
  }
}

/**
 * A cluster of exactly one endpoint, for traffic whose destination is already
 * decided: a connection captured on its way to one pod's address goes to that
 * pod (as Istio's original-destination clusters do), and an unknown
 * destination passes through to where it was going.
 */
export function singleEndpointCluster(service: string, namespace: string, port: ServicePort, endpoint: EndpointSpec): Cluster {
  return new RoundRobinCluster(service, namespace, port, [makeEndpoint(endpoint)]);
}

export function createStaticRegistry(services: readonly ServiceSpec[], version: string): ClusterRegistry {
  return new StaticRegistry(services, version);
}

/**
 * An inbound side's cluster: the local app at `address`:appPort (127.0.0.1
 * unless TPROXY capture hands over the pod's own address). Its protocol is
 * only a hint; inbound detection decides per connection.
 */
export function appCluster(service: string, namespace: string, version: string, appPort: number, address = '127.0.0.1'): Cluster {
  const port: ServicePort = { name: 'app', port: appPort, protocol: 'http' };
  return new RoundRobinCluster(service, namespace, port, [makeEndpoint({ address, port: appPort, ports: {}, labels: { version } })]);
}
