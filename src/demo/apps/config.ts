/**
 * The one place the demo apps read their configuration: CLI flags first,
 * then environment variables, then defaults. Every bad value is reported with
 * where it came from (`--port` or `DEMO_PORT`), so a wrong env var in a
 * compose file is as easy to find as a wrong flag.
 */
import { isIP, isIPv6 } from 'node:net';
import { parseArgs } from 'node:util';
import { TracemeshError, errorMessage } from '../../lib/errors.js';

export type DemoAppName = 'web' | 'catalog' | 'reviews' | 'ratings' | 'inventory';

/** Where a peer service listens, as the app names it (`ratings:50051`, or `127.0.0.1:50051` without a proxy). */
export interface PeerAddress {
  readonly host: string;
  readonly port: number;
}

/** An explicit-mode proxy (`http://127.0.0.1:15001`): the app's outbound calls go through it. */
export interface ProxyAddress {
  readonly host: string;
  readonly port: number;
  readonly url: string;
}

/** Where an app listens: an IP address (`127.0.0.1`, `::` for every address) and a port. */
export interface ListenAddress {
  readonly host: string;
  readonly port: number;
}

export interface DemoAppConfig {
  readonly app: DemoAppName;
  /** service.name of the app's spans. */
  readonly serviceName: string;
  /**
   * Listen address, 127.0.0.1 by default. Under TPROXY capture the proxy
   * connects to the app at the pod's own address, so there it must be that
   * address or `::`/`0.0.0.0` (as Istio requires since 1.10).
   */
  readonly host: string;
  /** Listen port; 0 picks a free one (the ready line says which). */
  readonly port: number;
  /** OTLP gRPC endpoint of the collector, as an origin (gRPC takes no path). */
  readonly collectorUrl: string;
  /** Batch span processor delay: short by default so a demo trace shows up while you look. */
  readonly exportDelayMs: number;
  /** Only `web` calls peers; the other apps ignore these. */
  readonly ratings: PeerAddress;
  readonly inventory: PeerAddress;
  /** web: with it, GET /product/:id asks catalog (HTTP) instead of ratings; without, ratings directly. */
  readonly catalog: PeerAddress | undefined;
  /** catalog calls reviews (HTTP). */
  readonly reviews: PeerAddress;
  /** reviews: the version this instance is (v1, v2, v3 ...); also the default service name `reviews-<version>`. */
  readonly version: string;
  /** A JSON file of faults to play (faults.ts); the demo's scenario clock rewrites it. Read by reviews and ratings. */
  readonly faultFile: string | undefined;
  readonly proxy: ProxyAddress | undefined;
  /** `--help` was given: print usage and exit. */
  readonly help: boolean;
}

export const DEFAULT_PORTS: Readonly<Record<DemoAppName, number>> = { web: 9080, catalog: 9081, reviews: 9082, ratings: 50051, inventory: 7070 };
export const DEFAULT_HOST = '127.0.0.1';
export const DEFAULT_VERSION = 'v1';
export const DEFAULT_COLLECTOR_URL = 'http://127.0.0.1:4317';
export const DEFAULT_EXPORT_DELAY_MS = 500;
const MAX_EXPORT_DELAY_MS = 600_000;

/** Each setting: its flag and the env vars that stand in for it, in order of preference. */
const SETTINGS = {
  host: { flag: 'host', env: ['DEMO_HOST'] },
  port: { flag: 'port', env: ['DEMO_PORT'] },
  serviceName: { flag: 'service-name', env: ['DEMO_SERVICE_NAME', 'OTEL_SERVICE_NAME'] },
  collector: { flag: 'collector', env: ['DEMO_COLLECTOR', 'OTEL_EXPORTER_OTLP_ENDPOINT'] },
  exportDelay: { flag: 'export-delay-ms', env: ['OTEL_BSP_SCHEDULE_DELAY'] },
  ratings: { flag: 'ratings', env: ['DEMO_RATINGS'] },
  inventory: { flag: 'inventory', env: ['DEMO_INVENTORY'] },
  catalog: { flag: 'catalog', env: ['DEMO_CATALOG'] },
  reviews: { flag: 'reviews', env: ['DEMO_REVIEWS'] },
  version: { flag: 'version', env: ['DEMO_VERSION'] },
  faultFile: { flag: 'fault-file', env: ['DEMO_FAULT_FILE'] },
  // Deliberately not `http_proxy`: a developer's corporate proxy must not capture the demo's calls.
  proxy: { flag: 'proxy', env: ['DEMO_PROXY'] },
} as const;

type SettingName = keyof typeof SETTINGS;

export function demoUsage(app: DemoAppName): string {
  return [
    `usage: node dist/src/demo/apps/${app}.js [flags]`,
    '',
    `  --host ADDR            listen address, an IP; :: or 0.0.0.0 for every address (DEMO_HOST; default ${DEFAULT_HOST})`,
    `  --port N               listen port (DEMO_PORT; default ${DEFAULT_PORTS[app]}; 0 = any free port)`,
    `  --service-name NAME    service.name of the spans (DEMO_SERVICE_NAME, OTEL_SERVICE_NAME; default ${app === 'reviews' ? 'reviews-VERSION' : app})`,
    `  --collector URL        OTLP gRPC endpoint (DEMO_COLLECTOR, OTEL_EXPORTER_OTLP_ENDPOINT; default ${DEFAULT_COLLECTOR_URL})`,
    `  --export-delay-ms N    span batch delay (OTEL_BSP_SCHEDULE_DELAY; default ${DEFAULT_EXPORT_DELAY_MS})`,
    `  --ratings HOST:PORT    where ratings listens (DEMO_RATINGS; default 127.0.0.1:${DEFAULT_PORTS.ratings}) [web, reviews]`,
    `  --inventory HOST:PORT  where inventory listens (DEMO_INVENTORY; default 127.0.0.1:${DEFAULT_PORTS.inventory}) [web]`,
    '  --catalog HOST:PORT    ask catalog (HTTP) for the product instead of ratings (DEMO_CATALOG) [web]',
    `  --reviews HOST:PORT    where reviews listens (DEMO_REVIEWS; default 127.0.0.1:${DEFAULT_PORTS.reviews}) [catalog]`,
    `  --version NAME         this instance's version, v1, v2 ... (DEMO_VERSION; default ${DEFAULT_VERSION}) [reviews]`,
    '  --fault-file FILE      JSON faults to play, re-read when it changes (DEMO_FAULT_FILE) [reviews, ratings]',
    '  --proxy URL            explicit-mode proxy for outbound calls, e.g. http://127.0.0.1:15001 (DEMO_PROXY) [web, catalog, reviews]',
    '',
  ].join('\n');
}

/** Parses argv (without `node script`) and env into a DemoAppConfig; throws TracemeshError naming the flag or env var. */
export function parseDemoConfig(app: DemoAppName, argv: readonly string[], env: NodeJS.ProcessEnv): DemoAppConfig {
  const options: Record<string, { type: 'string' | 'boolean' }> = { help: { type: 'boolean' } };
  for (const setting of Object.values(SETTINGS)) options[setting.flag] = { type: 'string' };
  let values: Record<string, string | boolean | (string | boolean)[] | undefined>;
  try {
    values = parseArgs({ args: [...argv], options, strict: true, allowPositionals: false }).values;
  } catch (err) {
    const nodeCode = (err as { code?: string }).code;
    const code = nodeCode === 'ERR_PARSE_ARGS_UNKNOWN_OPTION' ? 'TM_ERR_CLI_UNKNOWN_FLAG' : 'TM_ERR_CLI_USAGE';
    throw new TracemeshError(code, `${app}: ${errorMessage(err).split('. ')[0] ?? 'bad arguments'}`);
  }
  const lookup = (name: SettingName): { text: string; source: string } | undefined => {
    const setting = SETTINGS[name];
    const flagValue = values[setting.flag];
    if (typeof flagValue === 'string') return { text: flagValue, source: `--${setting.flag}` };
    for (const key of setting.env) {
      const envValue = env[key];
      if (envValue !== undefined && envValue !== '') return { text: envValue, source: key };
    }
    return undefined;
  };

  const host = lookup('host');
  const port = lookup('port');
  const serviceName = lookup('serviceName');
  const collector = lookup('collector');
  const exportDelay = lookup('exportDelay');
  const ratings = lookup('ratings');
  const inventory = lookup('inventory');
  const proxy = lookup('proxy');
  const catalog = lookup('catalog');
  const reviews = lookup('reviews');
  const versionText = lookup('version');
  const faultFile = lookup('faultFile');
  const version = versionText === undefined ? DEFAULT_VERSION : parseVersion(versionText.text, versionText.source);
  return {
    app,
    serviceName:
      serviceName === undefined ? (app === 'reviews' ? `reviews-${version}` : app) : parseServiceName(serviceName.text, serviceName.source),
    host: host === undefined ? DEFAULT_HOST : parseListenHost(host.text, host.source),
    port: port === undefined ? DEFAULT_PORTS[app] : parsePort(port.text, port.source),
    collectorUrl: collector === undefined ? DEFAULT_COLLECTOR_URL : parseHttpUrl(collector.text, collector.source).origin,
    exportDelayMs:
      exportDelay === undefined ? DEFAULT_EXPORT_DELAY_MS : parseWholeNumber(exportDelay.text, exportDelay.source, 1, MAX_EXPORT_DELAY_MS),
    ratings: ratings === undefined ? { host: '127.0.0.1', port: DEFAULT_PORTS.ratings } : parsePeerAddress(ratings.text, ratings.source),
    inventory:
      inventory === undefined ? { host: '127.0.0.1', port: DEFAULT_PORTS.inventory } : parsePeerAddress(inventory.text, inventory.source),
    catalog: catalog === undefined ? undefined : parsePeerAddress(catalog.text, catalog.source),
    reviews: reviews === undefined ? { host: '127.0.0.1', port: DEFAULT_PORTS.reviews } : parsePeerAddress(reviews.text, reviews.source),
    version,
    faultFile: faultFile === undefined ? undefined : parseFilePath(faultFile.text, faultFile.source),
    proxy: proxy === undefined ? undefined : parseProxyUrl(proxy.text, proxy.source),
    help: values['help'] === true,
  };
}

function bad(source: string, text: string, expected: string): TracemeshError {
  return new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${source}: '${text}' is not ${expected}`);
}

function parsePort(text: string, source: string): number {
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw bad(source, text, 'a port (0-65535)');
  return Number(text);
}

/** An IPv4 or IPv6 address, brackets optional (`[::]`); no names (a listen address is not looked up) and no zone index. */
export function parseListenHost(text: string, source: string): string {
  const host = text.startsWith('[') && text.endsWith(']') ? text.slice(1, -1) : text;
  if (host.length > 45 || isIP(host) === 0 || host.includes('%')) {
    throw bad(source, text.slice(0, 80), 'an IP address to listen on (e.g. 127.0.0.1, :: or 0.0.0.0)');
  }
  return host;
}

/** `host:port` as a listen target or a ready line names it: IPv6 in brackets (`[::]:9080`). */
export function formatListenAddress(address: ListenAddress): string {
  return isIPv6(address.host) ? `[${address.host}]:${address.port}` : `${address.host}:${address.port}`;
}

function parseWholeNumber(text: string, source: string, min: number, max: number): number {
  if (!/^\d{1,9}$/.test(text) || Number(text) < min || Number(text) > max) {
    throw bad(source, text, `a whole number from ${min} to ${max}`);
  }
  return Number(text);
}

function parseVersion(text: string, source: string): string {
  if (!/^v[0-9]{1,3}$/.test(text)) throw bad(source, text, 'a version such as v1, v2 or v3');
  return text;
}

function parseFilePath(text: string, source: string): string {
  if (text.length > 4096 || text.includes('\0')) throw bad(source, text.slice(0, 80), 'a file path');
  return text;
}

function parseServiceName(text: string, source: string): string {
  if (!/^[A-Za-z0-9][A-Za-z0-9._-]{0,62}$/.test(text)) throw bad(source, text, 'a service name (letters, digits, . _ -; at most 63)');
  return text;
}

const HOST_PATTERN = /^(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;

/** `host:port` (a DNS name or IPv4 address; the port 1-65535). */
export function parsePeerAddress(text: string, source: string): PeerAddress {
  const colon = text.lastIndexOf(':');
  const host = text.slice(0, colon);
  const portText = text.slice(colon + 1);
  if (colon <= 0 || host.length > 253 || !HOST_PATTERN.test(host) || !/^\d{1,5}$/.test(portText)) {
    throw bad(source, text, 'HOST:PORT (e.g. ratings:50051)');
  }
  const port = Number(portText);
  if (port < 1 || port > 65535) throw bad(source, text, 'HOST:PORT with a port from 1 to 65535');
  return { host, port };
}

function parseHttpUrl(text: string, source: string): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(source, text, 'a URL (e.g. http://127.0.0.1:4317)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(source, text, 'an http:// or https:// URL');
  return url;
}

/** `http://host:port` of an explicit-mode proxy (no path, no credentials: the mesh proxy takes neither). */
export function parseProxyUrl(text: string, source: string): ProxyAddress {
  const url = parseHttpUrl(text, source);
  if (url.protocol !== 'http:') throw bad(source, text, 'an http:// proxy URL');
  if (url.username !== '' || url.password !== '' || (url.pathname !== '/' && url.pathname !== '') || url.search !== '') {
    throw bad(source, text, 'a proxy URL of the form http://HOST:PORT');
  }
  // URL keeps IPv6 brackets in hostname; net.connect wants them off.
  const host = url.hostname.replace(/^\[(.*)\]$/, '$1');
  const port = url.port === '' ? 80 : Number(url.port);
  return { host, port, url: `http://${url.host}` };
}
