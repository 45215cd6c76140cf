/**
 * The mesh configuration model as the rest of the code sees it, after
 * validation (DESIGN.md, "Configuration model"). The YAML schema in
 * service-schema.ts produces exactly these shapes; proxies and the control
 * plane consume them.
 */
import type { PortProtocol } from '../../proxy/clusters/types.js';

export interface ServicePortSpec {
  name: string;
  port: number;
  protocol: PortProtocol;
}

export interface EndpointSpec {
  address: string;
  port: number;
  labels: Record<string, string>;
}

export interface ServiceSpec {
  name: string;
  namespace: string;
  ports: ServicePortSpec[];
  vips: string[];
  endpoints: EndpointSpec[];
}

/**
 * Everything one set of configuration documents says, validated. One field
 * per kind; kinds added later (Route, DestinationPolicy…) add theirs.
 */
export interface MeshConfig {
  services: ServiceSpec[];
}
