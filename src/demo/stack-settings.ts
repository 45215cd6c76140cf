/**
 * What both ways of running the demo (processes on 127.0.0.1, launch.ts; pods
 * in namespaces, transparent-stack.ts) set alike: the well-known ports of the
 * collector's query API and the control plane, how long their start may take,
 * and how often the apps and proxies export.
 */
export const QUERY_API_PORT = 16686;
export const CONTROL_PLANE_PORT = 15010;
export const COLLECTOR_READY_MS = 120_000;
export const CONTROL_PLANE_READY_MS = 30_000;
/** Spans leave the apps this often: short, so the live view keeps up. */
export const APP_EXPORT_DELAY_MS = '250';
export const PROXY_METRICS_INTERVAL = '5s';
