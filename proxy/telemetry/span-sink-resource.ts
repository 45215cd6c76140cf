/**
 * What every span and metric export of this proxy shares: the OTLP resource
 * (who emits), the instrumentation scope (what emits), the collector address
 * the exporters accept, and the time conversion. One place, so spans and
 * metrics of one proxy always carry the same resource.
 */
import { hostname } from 'node:os';
import type { HrTime } from '@opentelemetry/api';
import { TracemeshError } from '../../src/lib/errors.js';
import type { WorkloadIdentity } from './telemetry.js';

export type ResourceAttributeValue = string | number;

/** The instrumentation scope of every span and metric the proxy exports. */
export const PROXY_SCOPE_NAME = 'tracemesh-proxy';

/**
 * service.name / service.namespace / service.version from the workload (so the
 * collector files the proxy's spans under the service it fronts, as Istio's
 * sidecars do), `tracemesh.component: proxy` to tell them from the app's own
 * spans, host.name and process.pid. `extra` wins, for deployments that add
 * their own attributes (k8s.pod.name, ...).
 */
export function proxyResourceAttributes(
  identity: WorkloadIdentity,
  extra: Readonly<Record<string, string>> = {},
): Record<string, ResourceAttributeValue> {
  return {
    'service.name': identity.service,
    'service.namespace': identity.namespace,
    'service.version': identity.version,
    'tracemesh.component': 'proxy',
    'host.name': hostname(),
    'process.pid': process.pid,
    ...extra,
  };
}

export interface CollectorAddress {
  /** host:port, as gRPC takes it. */
  readonly address: string;
  /** The URL as the OpenTelemetry exporters take it (scheme included). */
  readonly url: string;
  readonly secure: boolean;
}

/**
 * `http://host:4317`, `https://host:4317` or a bare `host:4317` (plain text,
 * as `--collector HOST:4317` is written). Anything else is an error naming
 * the value, at start-up rather than on the first export.
 */
export function parseCollectorUrl(value: string): CollectorAddress {
  const text = value.trim();
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `collector address "${value}" is not a URL or host:port`);
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `collector address "${value}": scheme must be http or https, got ${url.protocol.slice(0, -1)}`);
  }
  // URL drops a port that is the scheme's default (http://x:80): take it from the text.
  const port = url.port !== '' ? url.port : (/:(\d+)\/?$/.exec(text)?.[1] ?? '');
  if (url.hostname === '' || port === '') {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `collector address "${value}" needs a host and a port (e.g. 127.0.0.1:4317)`);
  }
  if (url.pathname !== '/' && url.pathname !== '') {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `collector address "${value}": OTLP/gRPC takes no path, got ${url.pathname}`);
  }
  const secure = url.protocol === 'https:';
  const address = `${url.hostname}:${port}`;
  return { address, url: `${url.protocol}//${address}`, secure };
}

/**
 * Epoch milliseconds (with a fraction) → HrTime, rounded to whole
 * microseconds: an epoch-ms double carries about 0.25 µs of resolution, so
 * finer digits would be float noise, not time.
 */
export function hrTimeFromMs(ms: number): HrTime {
  const micros = Math.round(ms * 1000);
  const seconds = Math.floor(micros / 1_000_000);
  return [seconds, (micros - seconds * 1_000_000) * 1000];
}
