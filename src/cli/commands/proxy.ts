import { DEFAULT_LIMITS, type ProxyLimits } from '../../../proxy/limits.js';
import { OUTBOUND_POLICIES } from '../../../proxy/capture/original-destinations.js';
import { CAPTURE_DEFAULTS, formatMark } from '../../../proxy/capture/iptables-rules.js';
import type { CaptureMode } from '../../../proxy/proxy.js';
import { defaultStateDir } from '../../../proxy/state-dir.js';
import { loadMeshConfigInWorker } from '../../config/load-in-worker.js';
import type { ServiceSpec } from '../../config/types.js';
import { TracemeshError } from '../../lib/errors.js';
import type { Command, ParsedArgs } from '../command.js';
import { durationFlag, portFlag, positiveIntFlag, stringFlag } from '../flag-values.js';

const NAME = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

function nameFlag(args: ParsedArgs, flag: string, fallback: string | undefined): string {
  const text = stringFlag(args, flag) ?? fallback;
  if (text === undefined) throw new TracemeshError('TM_ERR_CLI_USAGE', `--${flag} is required`);
  if (!NAME.test(text)) {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--${flag}: '${text}' is not a name (lowercase letters, digits and '-', at most 63)`);
  }
  return text;
}

function millisFlag(args: ParsedArgs, flag: string, fallbackMs: number): number {
  const text = stringFlag(args, flag);
  if (text === undefined) return fallbackMs;
  return Number(durationFlag(args, flag, text).nanos / 1_000_000n);
}

/** `--collector HOST:PORT` or a URL → the OTLP/gRPC URL; `none` → no export. */
export function collectorUrlFlag(text: string): string | undefined {
  if (text === 'none') return undefined;
  const withScheme = /^[a-z]+:\/\//.test(text) ? text : `http://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--collector: '${text}' is not HOST:PORT, a URL or 'none'`);
  }
  if (url.protocol !== 'http:' || url.port === '' || url.pathname !== '/') {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--collector: '${text}' is not HOST:PORT, an http://HOST:PORT URL or 'none'`);
  }
  return `http://${url.host}`;
}

function modeFlag(args: ParsedArgs): CaptureMode {
  const text = stringFlag(args, 'mode') ?? 'explicit';
  if (text !== 'explicit' && text !== 'transparent') throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--mode: '${text}' is not explicit or transparent`);
  return text;
}

function choiceFlag<T extends string>(args: ParsedArgs, flag: string, choices: readonly T[], fallback: T): T {
  const text = stringFlag(args, flag) ?? fallback;
  if (!(choices as readonly string[]).includes(text)) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--${flag}: '${text}' is not ${choices.join(' or ')}`);
  return text as T;
}

/** `--control-plane URL[,URL…]`: one control plane, or replicas tried in order; each an http://HOST:PORT URL. */
function controlPlaneFlag(args: ParsedArgs): string | undefined {
  const text = stringFlag(args, 'control-plane');
  if (text === undefined) return undefined;
  return text
    .split(',')
    .map((part) => part.trim())
    .map((part) => {
      let url: URL;
      try {
        url = new URL(/^[a-z]+:\/\//.test(part) ? part : `http://${part}`);
      } catch {
        throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--control-plane: '${part}' is not a URL such as http://127.0.0.1:15010`);
      }
      if (url.protocol !== 'http:' || url.pathname !== '/') throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--control-plane: '${part}' is not an http://HOST:PORT URL`);
      return url.origin;
    })
    .join(',');
}

function advertiseFlag(args: ParsedArgs): { address: string; port: number } | undefined {
  const text = stringFlag(args, 'advertise');
  if (text === undefined) return undefined;
  const match = /^\[?([^\]]+?)\]?:(\d{1,5})$/.exec(text);
  const port = match === null ? NaN : Number(match[2]);
  if (match === null || port < 1 || port > 65535) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--advertise: '${text}' is not ADDRESS:PORT`);
  return { address: match[1] as string, port };
}

/**
 * `--tproxy-mark`: the SO_MARK of the inbound side's connections from client addresses under
 * TPROXY. It must be the mark `tracemesh iptables --tproxy-mark` installed the rules with (they
 * exempt it from capture and route the app's replies back by it), so it is read the same way:
 * decimal or 0x hex, 1 to 0xffffffff.
 */
function tproxyMarkFlag(args: ParsedArgs): number {
  const text = stringFlag(args, 'tproxy-mark');
  if (text === undefined) return CAPTURE_DEFAULTS.tproxyMark;
  const value = /^\d{1,10}$/.test(text) ? Number(text) : /^0x[0-9a-f]{1,8}$/i.test(text) ? parseInt(text, 16) : NaN;
  if (!(value >= 1 && value <= 0xffff_ffff)) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--tproxy-mark: '${text}' is not a mark (1-0xffffffff)`);
  return value;
}

function spanSinkFlag(args: ParsedArgs): 'otel' | 'lean' {
  const text = stringFlag(args, 'span-exporter') ?? 'lean';
  if (text !== 'otel' && text !== 'lean') throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--span-exporter: '${text}' is not otel or lean`);
  return text;
}

function limitsFromFlags(args: ParsedArgs): ProxyLimits {
  return {
    ...DEFAULT_LIMITS,
    requestTimeoutMs: millisFlag(args, 'request-timeout', DEFAULT_LIMITS.requestTimeoutMs),
    connectTimeoutMs: millisFlag(args, 'connect-timeout', DEFAULT_LIMITS.connectTimeoutMs),
    idleTimeoutMs: millisFlag(args, 'idle-timeout', DEFAULT_LIMITS.idleTimeoutMs),
    requestHeaderTimeoutMs: millisFlag(args, 'header-timeout', DEFAULT_LIMITS.requestHeaderTimeoutMs),
    detectTimeoutMs: millisFlag(args, 'detect-timeout', DEFAULT_LIMITS.detectTimeoutMs),
  };
}

/** Longer than every bounded wait in the stop path (span flush and exporter close, the control plane's DELETE). */
const STOP_DEADLINE_MS = 30_000;

/**
 * Stops the proxy; 1 if it has not stopped within `deadlineMs`. The
 * deadline's timer is left referenced on purpose: the stop path waits on
 * things that do not hold the event loop by themselves (an idle OTLP/HTTP2
 * session is unref'd, and its graceful close and the flush deadlines use
 * unref'd timers), and without a referenced handle Node would find the loop
 * empty mid-stop and exit 13 with main's top-level await unsettled.
 */
async function stopWithin(proxy: { stop(): Promise<void> }, deadlineMs: number, stderr: { write(text: string): unknown }): Promise<number> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<'late'>((resolve) => {
    timer = setTimeout(() => resolve('late'), deadlineMs);
  });
  try {
    const outcome = await Promise.race([proxy.stop().then(() => 'stopped' as const), late]);
    if (outcome === 'stopped') return 0;
    stderr.write(`${new Date().toISOString()} proxy: not stopped within ${deadlineMs} ms; exiting anyway\n`);
    return 1;
  } finally {
    clearTimeout(timer);
  }
}

export const proxyCommand: Command = {
  name: 'proxy',
  summary: 'Run a sidecar proxy in front of one workload: inbound and outbound listeners, spans, metrics',
  usage:
    'tracemesh proxy --service NAME --app-port PORT [--namespace default] [--version v1] [--mode explicit|transparent] ' +
    '[--inbound-port 15006] [--outbound-port 15001] [--admin-port 15000] [--collector HOST:4317|none] [--config FILE] ' +
    '[--capture redirect|tproxy] [--tproxy-mark 0x539] [--outbound-policy allow-any|registry-only] [--state-dir DIR]',
  flags: {
    service: { type: 'string', valueName: 'NAME', description: 'the workload\'s service name (required)' },
    namespace: { type: 'string', valueName: 'NAME', description: 'the workload\'s namespace', default: 'default' },
    version: { type: 'string', valueName: 'NAME', description: 'the workload\'s version label', default: 'v1' },
    'app-port': {
      type: 'string',
      valueName: 'PORT',
      description: 'where the app listens on 127.0.0.1 (required in explicit mode; transparent: for connections that reach the inbound port without capture)',
    },
    mode: { type: 'string', valueName: 'MODE', description: 'explicit (HTTP forward proxy, no iptables) or transparent (after tracemesh iptables)', default: 'explicit' },
    capture: {
      type: 'string',
      valueName: 'KIND',
      description: 'transparent: how inbound traffic is captured, as `tracemesh iptables --mode` set it: redirect (default) or tproxy (needs CAP_NET_ADMIN)',
    },
    'tproxy-mark': {
      type: 'string',
      valueName: 'MARK',
      description: `--capture tproxy: SO_MARK of the connections to the app made from the client's address; must equal \`tracemesh iptables --tproxy-mark\` (default ${formatMark(CAPTURE_DEFAULTS.tproxyMark)})`,
    },
    'outbound-policy': {
      type: 'string',
      valueName: 'POLICY',
      description: 'transparent: destinations no service claims pass through as TCP (allow-any, default) or are refused (registry-only)',
    },
    'control-plane': { type: 'string', valueName: 'URL[,URL]', description: 'take configuration from the control plane (http://HOST:15010; several replicas separated by commas, tried in order), cached in --state-dir; --config documents serve until the first snapshot' },
    advertise: { type: 'string', valueName: 'ADDR:PORT', description: 'the endpoint registered with the control plane (default: the inbound listener in explicit mode, POD-IP:APP-PORT in transparent mode)' },
    'state-dir': { type: 'string', valueName: 'DIR', description: 'writable directory for what the proxy keeps on disk (default $TMPDIR/tracemesh-proxy-UID/SERVICE.NAMESPACE)' },
    host: { type: 'string', valueName: 'ADDR', description: 'address the inbound listener and admin server bind (default all: 0.0.0.0, or :: in transparent mode)' },
    'inbound-port': { type: 'string', valueName: 'PORT', description: 'inbound listener (fronts the app)', default: '15006' },
    'outbound-port': { type: 'string', valueName: 'PORT', description: 'outbound listener (HTTP forward proxy on 127.0.0.1 in explicit mode)', default: '15001' },
    'admin-port': { type: 'string', valueName: 'PORT', description: 'admin: /stats/prometheus, /ready, /config_dump, /clusters', default: '15000' },
    collector: { type: 'string', valueName: 'HOST:PORT', description: "collector's OTLP/gRPC address, or 'none' for no export", default: '127.0.0.1:4317' },
    config: { type: 'string', valueName: 'FILE', description: 'static Service documents (YAML file or directory); repeatable', multiple: true },
    'access-log': { type: 'string', valueName: 'FILE', description: "JSON access log, one line per request ('-' for stdout); off by default" },
    'request-timeout': { type: 'string', valueName: 'DURATION', description: 'end of request to response head; 0 for none', default: '15s' },
    'connect-timeout': { type: 'string', valueName: 'DURATION', description: 'connecting to an upstream endpoint', default: '5s' },
    'idle-timeout': { type: 'string', valueName: 'DURATION', description: 'an idle downstream connection is closed after this', default: '5m' },
    'header-timeout': { type: 'string', valueName: 'DURATION', description: 'a request head must arrive within this', default: '10s' },
    'detect-timeout': { type: 'string', valueName: 'DURATION', description: 'wait for a client\'s first bytes before treating it as server-first TCP', default: '100ms' },
    'max-connections': { type: 'string', valueName: 'N', description: 'connections per listener', default: '20000' },
    'metrics-interval': { type: 'string', valueName: 'DURATION', description: 'how often metrics go to the collector as OTLP', default: '10s' },
    'span-exporter': { type: 'string', valueName: 'KIND', description: 'lean (our own OTLP encoder, see bench/results/proxy.md) or otel (the OpenTelemetry SDK exporter)', default: 'lean' },
  },
  examples: [
    'tracemesh proxy --service reviews --version v2 --app-port 9080 --config mesh.yaml',
    'http_proxy=http://127.0.0.1:15001 curl http://ratings:9080/ratings/1',
    'tracemesh proxy --service web --app-port 8080 --inbound-port 25006 --outbound-port 25001 --admin-port 25000 --collector none',
  ],
  async run(args, io) {
    const service = nameFlag(args, 'service', undefined);
    const namespace = nameFlag(args, 'namespace', 'default');
    const mode = modeFlag(args);
    const appPortText = stringFlag(args, 'app-port');
    if (appPortText === undefined && mode === 'explicit') throw new TracemeshError('TM_ERR_CLI_USAGE', '--app-port is required in explicit mode');
    const appPort = portFlag(args, 'app-port', 0);
    if (appPortText !== undefined && appPort === 0) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', "--app-port: '0' is not a port the app can listen on");
    const inboundCapture = choiceFlag(args, 'capture', ['redirect', 'tproxy'] as const, 'redirect');
    const outboundPolicy = choiceFlag(args, 'outbound-policy', OUTBOUND_POLICIES, 'allow-any');
    if (mode === 'explicit') {
      for (const flag of ['capture', 'outbound-policy']) {
        if (stringFlag(args, flag) !== undefined) throw new TracemeshError('TM_ERR_CLI_USAGE', `--${flag} applies to --mode transparent only`);
      }
    }
    const tproxyMark = tproxyMarkFlag(args);
    if (stringFlag(args, 'tproxy-mark') !== undefined && inboundCapture !== 'tproxy') {
      throw new TracemeshError('TM_ERR_CLI_USAGE', '--tproxy-mark applies to --mode transparent --capture tproxy only');
    }
    const configPaths = (args.values['config'] as string[] | undefined) ?? [];
    // Parsed in a worker thread that is then thrown away: the YAML parser and schema library
    // would otherwise stay resident in every sidecar (RSS is a goal).
    const config = configPaths.length === 0 ? undefined : await loadMeshConfigInWorker(configPaths);
    const services: ServiceSpec[] = config?.services ?? [];
    const { Proxy } = await import('../../../proxy/proxy.js');
    const proxy = new Proxy({
      identity: { service, namespace, version: nameFlag(args, 'version', 'v1') },
      appPort,
      mode,
      inboundCapture,
      tproxyMark,
      outboundPolicy,
      host: stringFlag(args, 'host'),
      stateDir: stringFlag(args, 'state-dir') ?? defaultStateDir(service, namespace),
      controlPlaneUrl: controlPlaneFlag(args),
      advertise: advertiseFlag(args),
      inboundPort: portFlag(args, 'inbound-port', 15006),
      outboundPort: portFlag(args, 'outbound-port', 15001),
      adminPort: portFlag(args, 'admin-port', 15000),
      collectorUrl: collectorUrlFlag(stringFlag(args, 'collector') ?? '127.0.0.1:4317'),
      spanSink: spanSinkFlag(args),
      metricsExportIntervalMs: millisFlag(args, 'metrics-interval', 10_000),
      accessLog: stringFlag(args, 'access-log'),
      services,
      ...(config === undefined ? {} : { config }),
      limits: limitsFromFlags(args),
      maxConnections: positiveIntFlag(args, 'max-connections', 20_000, 1_000_000),
    });
    try {
      await proxy.start();
    } catch (err) {
      await proxy.stop();
      throw err;
    }
    const o = proxy.options;
    const inboundTo =
      mode === 'explicit'
        ? `app 127.0.0.1:${appPort}`
        : inboundCapture === 'tproxy'
          ? `app at each captured destination, from the client's address (tproxy, mark ${formatMark(tproxyMark)})`
          : `app 127.0.0.1 on each captured port (${inboundCapture})`;
    const outboundAs = mode === 'explicit' ? `127.0.0.1:${proxy.outboundPort} (explicit)` : `:${proxy.outboundPort} (transparent, ${outboundPolicy})`;
    io.stdout.write(
      `tracemesh proxy ready: ${o.identity.service}.${o.identity.namespace} (${o.identity.version}), ` +
        `inbound :${proxy.inboundPort} → ${inboundTo}, outbound ${outboundAs}, ` +
        `admin :${proxy.adminPort}, ${services.length} service(s) configured, spans to ${o.collectorUrl ?? 'nowhere (--collector none)'}\n`,
    );
    const signal = await io.stopSignal;
    io.stderr.write(`${new Date().toISOString()} proxy: ${signal}: draining and stopping\n`);
    return stopWithin(proxy, STOP_DEADLINE_MS, io.stderr);
  },
};
