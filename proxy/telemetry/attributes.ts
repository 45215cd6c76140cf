/**
 * Span attribute names the proxy writes. OpenTelemetry semantic conventions
 * (HTTP and RPC, stable names) first, then the mesh's own `tracemesh.*`
 * attributes. Every protocol path uses these constants, so a query or a
 * dashboard can rely on one spelling.
 */

// HTTP semantic conventions (stable, v1.23+).
export const HTTP_REQUEST_METHOD = 'http.request.method';
export const HTTP_RESPONSE_STATUS_CODE = 'http.response.status_code';
export const HTTP_REQUEST_BODY_SIZE = 'http.request.body.size';
export const HTTP_RESPONSE_BODY_SIZE = 'http.response.body.size';
export const HTTP_ROUTE = 'http.route';
export const URL_PATH = 'url.path';
export const URL_QUERY = 'url.query';
export const URL_SCHEME = 'url.scheme';
export const URL_FULL = 'url.full';
export const SERVER_ADDRESS = 'server.address';
export const SERVER_PORT = 'server.port';
export const CLIENT_ADDRESS = 'client.address';
export const CLIENT_PORT = 'client.port';
export const NETWORK_PEER_ADDRESS = 'network.peer.address';
export const NETWORK_PEER_PORT = 'network.peer.port';
export const NETWORK_PROTOCOL_NAME = 'network.protocol.name';
export const NETWORK_PROTOCOL_VERSION = 'network.protocol.version';
export const NETWORK_TRANSPORT = 'network.transport';
export const USER_AGENT_ORIGINAL = 'user_agent.original';
export const ERROR_TYPE = 'error.type';
/** Read by the collector's service graph for client spans without a server peer. */
export const PEER_SERVICE = 'peer.service';

// RPC semantic conventions.
export const RPC_SYSTEM = 'rpc.system';
export const RPC_SERVICE = 'rpc.service';
export const RPC_METHOD = 'rpc.method';
export const RPC_GRPC_STATUS_CODE = 'rpc.grpc.status_code';

// TLS passed through: the server name from the ClientHello.
export const TLS_SERVER_NAME = 'tls.server.name';

// Mesh attributes.
export const MESH_DIRECTION = 'tracemesh.direction'; // inbound | outbound
export const MESH_PROTOCOL = 'tracemesh.protocol'; // http1 | http2 | grpc | tcp | tls
export const MESH_SOURCE_SERVICE = 'tracemesh.source.service';
export const MESH_SOURCE_NAMESPACE = 'tracemesh.source.namespace';
export const MESH_SOURCE_VERSION = 'tracemesh.source.version';
export const MESH_DESTINATION_SERVICE = 'tracemesh.destination.service';
export const MESH_DESTINATION_NAMESPACE = 'tracemesh.destination.namespace';
export const MESH_DESTINATION_VERSION = 'tracemesh.destination.version';
export const MESH_ROUTE = 'tracemesh.route';
export const MESH_RESPONSE_FLAGS = 'tracemesh.response_flags';
export const MESH_ATTEMPT = 'tracemesh.attempt';
export const MESH_UPSTREAM_ADDRESS = 'tracemesh.upstream.address';
export const MESH_REQUEST_ID = 'tracemesh.request_id';
/** The route rule's destination subset (traffic management). */
export const MESH_SUBSET = 'tracemesh.subset';
/** The destination a copy of the request was mirrored to. */
export const MESH_MIRRORED_TO = 'tracemesh.mirrored_to';
/** A fault-injected delay, milliseconds. */
export const MESH_FAULT_DELAY_MS = 'tracemesh.fault.delay_ms';
/** The RateLimit document that refused the request. */
export const MESH_RATE_LIMIT = 'tracemesh.rate_limit';
/** The request is a mirror's copy (its answer is discarded). */
export const MESH_MIRROR = 'tracemesh.mirror';
/** Boolean: this attempt's failure made outlier detection eject its endpoint. */
export const MESH_OUTLIER_EJECTED = 'tracemesh.outlier.ejected';
/** Boolean: this attempt's failure would have ejected its endpoint, but maxEjectionPercent refused it. */
export const MESH_OUTLIER_EJECTION_REFUSED = 'tracemesh.outlier.ejection_refused';
/** Why (with either of the two above): consecutive-5xx or consecutive-gateway. */
export const MESH_OUTLIER_REASON = 'tracemesh.outlier.reason';
/** Boolean: the endpoint was picked in panic mode (too few usable endpoints, so all of them were balanced over). */
export const MESH_LB_PANIC = 'tracemesh.lb.panic';
export const MESH_BYTES_RECEIVED = 'tracemesh.tcp.bytes_received';
export const MESH_BYTES_SENT = 'tracemesh.tcp.bytes_sent';

/**
 * Peer metadata headers: the outbound proxy tells the inbound proxy who is
 * calling (Istio does the same with x-envoy-peer-metadata). The inbound proxy
 * reads and strips them before the app sees the request.
 */
export const SOURCE_SERVICE_HEADER = 'x-tracemesh-source-service';
export const SOURCE_NAMESPACE_HEADER = 'x-tracemesh-source-namespace';
export const SOURCE_VERSION_HEADER = 'x-tracemesh-source-version';

/**
 * Traffic-management headers. The outbound proxy names the route rule it
 * chose (the inbound proxy's rate limits read it); a mirror's copy says it
 * is one; a refused request says which RateLimit refused it.
 */
export const ROUTE_HEADER = 'x-tracemesh-route';
export const MIRROR_HEADER = 'x-tracemesh-mirror';
export const RATE_LIMITED_HEADER = 'x-tracemesh-rate-limited';
/**
 * Marks a proxy's active health check (DestinationPolicy healthCheck). The
 * inbound proxy forwards it to the app but traces nothing for it (see
 * health-check-trace.ts).
 */
export const HEALTH_CHECK_HEADER = 'x-tracemesh-health-check';
