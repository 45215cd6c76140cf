import { ControlPlane, DEFAULT_CONTROL_PLANE_TIMING } from '../../control-plane/server.js';
import { createConfigStore } from '../../control-plane/store/create-store.js';
import { DEFAULT_CONFIG_DIR } from '../../control-plane/store/directory-store.js';
import { TracemeshError } from '../../lib/errors.js';
import type { Command, ParsedArgs } from '../command.js';
import { durationFlag, portFlag, positiveIntFlag, stringFlag } from '../flag-values.js';

const DEFAULT_PORT = 15010;
const DEFAULT_MAX_PROXIES = 20_000;

function millisFlag(args: ParsedArgs, flag: string, fallbackMs: number, minMs: number): number {
  const text = stringFlag(args, flag);
  if (text === undefined) return fallbackMs;
  const ms = Number(durationFlag(args, flag, text).nanos / 1_000_000n);
  if (ms < minMs) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--${flag}: '${text}' is shorter than the ${minMs} ms minimum`);
  return ms;
}

/** `--advertise http://HOST:PORT`: only with --etcd (replicas exist only there). */
function advertiseFlag(text: string | undefined, withEtcd: boolean): string | undefined {
  if (text === undefined) return undefined;
  if (!withEtcd) throw new TracemeshError('TM_ERR_CLI_USAGE', '--advertise needs --etcd (a control plane on a directory has no replicas to tell)');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--advertise: '${text}' is not a URL such as http://10.0.0.5:15010`);
  }
  if (url.protocol !== 'http:' || url.pathname !== '/' || url.search !== '' || url.hash !== '') throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--advertise: '${text}' is not an http://HOST:PORT URL`);
  return url.origin;
}

export const controlPlaneCommand: Command = {
  name: 'control-plane',
  summary: 'Run the control plane: config API, workload registry, config distribution to proxies',
  usage: 'tracemesh control-plane [--config-dir DIR | --etcd URL[,URL…] [--etcd-prefix P] [--advertise URL]] [--port 15010] [--host 127.0.0.1]',
  flags: {
    'config-dir': { type: 'string', valueName: 'DIR', description: `where the configuration is kept (default ${DEFAULT_CONFIG_DIR})` },
    etcd: { type: 'string', valueName: 'URL', description: 'keep the configuration in etcd instead (http://HOST:2379[,…]), shared by several control planes' },
    'etcd-prefix': { type: 'string', valueName: 'PREFIX', description: 'with --etcd: the key prefix of the configuration (default /tracemesh/config/); registrations and replicas go beside it (PREFIX-registry/, PREFIX-replicas/)' },
    advertise: { type: 'string', valueName: 'URL', description: 'with --etcd: where the other replicas reach this one (default http://HOST:PORT, loopback when --host is 0.0.0.0)' },
    port: { type: 'string', valueName: 'PORT', description: 'REST API, registry and discovery streams', default: String(DEFAULT_PORT) },
    host: { type: 'string', valueName: 'ADDR', description: 'address to listen on (0.0.0.0 for proxies on other hosts)', default: '127.0.0.1' },
    'registry-ttl': { type: 'string', valueName: 'DURATION', description: 'a registered workload not heard from for this long is removed', default: '30s' },
    'startup-grace': {
      type: 'string',
      valueName: 'DURATION',
      description: 'after a start that finds no registered workload (always with --config-dir), proxies that already serve a configuration keep it this long while workloads register again (0s: none)',
      default: `${DEFAULT_CONTROL_PLANE_TIMING.startupGraceMs / 1000}s`,
    },
    'max-proxies': { type: 'string', valueName: 'N', description: 'registered workloads and remembered proxies at most', default: String(DEFAULT_MAX_PROXIES) },
  },
  examples: ['tracemesh control-plane', 'tracemesh control-plane --config-dir /etc/tracemesh --host 0.0.0.0', 'tracemesh control-plane --etcd http://10.0.0.2:2379,http://10.0.0.3:2379'],
  async run(args, io) {
    const port = portFlag(args, 'port', DEFAULT_PORT);
    const host = stringFlag(args, 'host') ?? '127.0.0.1';
    const registryTtlMs = millisFlag(args, 'registry-ttl', DEFAULT_CONTROL_PLANE_TIMING.registryTtlMs, 1_000);
    const startupGraceMs = millisFlag(args, 'startup-grace', DEFAULT_CONTROL_PLANE_TIMING.startupGraceMs, 0);
    const maxProxies = positiveIntFlag(args, 'max-proxies', DEFAULT_MAX_PROXIES, 1_000_000);
    const configDir = stringFlag(args, 'config-dir');
    const etcd = stringFlag(args, 'etcd');
    const etcdPrefix = stringFlag(args, 'etcd-prefix');
    const advertiseUrl = advertiseFlag(stringFlag(args, 'advertise'), etcd !== undefined);
    const store = createConfigStore({
      ...(configDir === undefined ? {} : { configDir }),
      ...(etcd === undefined ? {} : { etcd }),
      ...(etcdPrefix === undefined ? {} : { etcdPrefix }),
    });
    const log = (message: string): void => {
      io.stderr.write(`${new Date().toISOString()} control-plane: ${message}\n`);
    };
    const controlPlane = new ControlPlane({ ...DEFAULT_CONTROL_PLANE_TIMING, store, host, port, registryTtlMs, startupGraceMs, maxProxies, log, ...(advertiseUrl === undefined ? {} : { advertiseUrl }) });
    try {
      await controlPlane.start();
    } catch (err) {
      await controlPlane.stop();
      throw err;
    }
    const revision = await store.revision();
    const shownHost = host.includes(':') ? `[${host}]` : host;
    io.stdout.write(
      `tracemesh control-plane ready: http://${shownHost}:${controlPlane.port}, config in ${etcd === undefined ? 'directory' : 'etcd'} ${store.location} ` +
        `(revision ${revision}, version ${controlPlane.distributor.currentVersion})\n`,
    );
    const signal = await io.stopSignal;
    log(`${signal}: closing the proxies' streams and stopping`);
    await controlPlane.stop();
    return 0;
  },
};
