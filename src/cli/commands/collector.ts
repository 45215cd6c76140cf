import path from 'node:path';
import type { StoreTarget } from '../../../collector/storage/store.js';
import { parseBytes } from '../../lib/bytes.js';
import { TracemeshError } from '../../lib/errors.js';
import type { Command } from '../command.js';
import { durationFlag, portFlag, stringFlag, urlFlag } from '../flag-values.js';
import { DEFAULT_DATA_DIR } from '../../../collector/defaults.js';

// The collector (and chDB, ~150 MB resident once loaded) is imported only when this
// command runs, so `tracemesh proxy` never pays for it.

/** Where a person can reach a listener bound to `host`. */
function displayHost(host: string): string {
  if (host === '0.0.0.0' || host === '::') return '127.0.0.1';
  return host.includes(':') ? `[${host}]` : host;
}

export const collectorCommand: Command = {
  name: 'collector',
  summary: 'Run the tracing backend: OTLP receivers, ClickHouse storage and the query API',
  usage:
    'tracemesh collector [--data-dir DIR | --clickhouse-url URL] [--otlp-grpc-port 4317] [--otlp-http-port 4318] [--api-port 16686] [--ttl 7d]',
  flags: {
    'data-dir': { type: 'string', valueName: 'DIR', description: `embedded store (chDB) and spool directory (default ${DEFAULT_DATA_DIR})` },
    'clickhouse-url': { type: 'string', valueName: 'URL', description: 'use a ClickHouse server over HTTP instead of the embedded store' },
    database: { type: 'string', valueName: 'NAME', description: 'ClickHouse database with --clickhouse-url', default: 'default' },
    'spool-dir': { type: 'string', valueName: 'DIR', description: 'where batches wait for the store (default DATA-DIR/spool)' },
    'spool-limit': { type: 'string', valueName: 'SIZE', description: 'spool size past which senders are told to retry', default: '2GiB' },
    host: { type: 'string', valueName: 'ADDR', description: 'address every listener binds', default: '0.0.0.0' },
    'otlp-grpc-port': { type: 'string', valueName: 'PORT', description: 'OTLP/gRPC port', default: '4317' },
    'otlp-http-port': { type: 'string', valueName: 'PORT', description: 'OTLP/HTTP port', default: '4318' },
    'api-port': { type: 'string', valueName: 'PORT', description: 'query API port', default: '16686' },
    ttl: { type: 'string', valueName: 'DURATION', description: 'how long spans, metrics and aggregates are kept', default: '7d' },
    'store-wait': { type: 'string', valueName: 'DURATION', description: 'how long start-up waits for an unreachable ClickHouse server', default: '60s' },
  },
  examples: [
    'tracemesh collector',
    'tracemesh collector --data-dir /var/lib/tracemesh --ttl 30d',
    'tracemesh collector --clickhouse-url http://clickhouse:8123 --database otel',
  ],
  async run(args, io) {
    const { Collector, collectorConfig } = await import('../../../collector/collector.js');
    const { DEFAULT_INGEST_OPTIONS } = await import('../../../collector/pipeline/ingest.js');
    const url = stringFlag(args, 'clickhouse-url');
    if (url !== undefined && stringFlag(args, 'data-dir') !== undefined) {
      throw new TracemeshError('TM_ERR_CLI_USAGE', '--data-dir and --clickhouse-url exclude each other');
    }
    const dataDir = stringFlag(args, 'data-dir') ?? DEFAULT_DATA_DIR;
    const store: StoreTarget =
      url === undefined
        ? { kind: 'chdb', dataDir: path.join(dataDir, 'clickhouse') }
        : { kind: 'http', url: urlFlag(args, 'clickhouse-url', url).toString(), database: stringFlag(args, 'database') ?? 'default' };
    const ttl = durationFlag(args, 'ttl', '7d');
    const retentionSeconds = Number(ttl.nanos / 1_000_000_000n);
    if (retentionSeconds < 3600) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--ttl: '${ttl.text}' is shorter than the 1h minimum`);
    const storeWaitMs = Number(durationFlag(args, 'store-wait', '60s').nanos / 1_000_000n);
    const spoolLimitBytes = parseBytes(stringFlag(args, 'spool-limit') ?? '2GiB', '--spool-limit');
    const log = (message: string): void => {
      io.stderr.write(`${new Date().toISOString()} collector: ${message}\n`);
    };
    const collector = new Collector(
      collectorConfig({
        store,
        spoolDir: stringFlag(args, 'spool-dir') ?? path.join(dataDir, 'spool'),
        host: stringFlag(args, 'host') ?? '0.0.0.0',
        otlpGrpcPort: portFlag(args, 'otlp-grpc-port', 4317),
        otlpHttpPort: portFlag(args, 'otlp-http-port', 4318),
        apiPort: portFlag(args, 'api-port', 16686),
        retentionSeconds,
        storeWaitMs,
        ingest: { ...DEFAULT_INGEST_OPTIONS, spoolLimitBytes },
        log,
      }),
    );
    try {
      await collector.start();
    } catch (err) {
      await collector.shutdown(0);
      throw err;
    }
    const where = store.kind === 'chdb' ? `embedded ClickHouse (chDB) in ${store.dataDir}` : `ClickHouse at ${store.url}`;
    io.stdout.write(
      `tracemesh collector ready: OTLP/gRPC :${collector.grpc.port}, OTLP/HTTP :${collector.http.port}, ` +
        `query API http://${displayHost(collector.config.host)}:${collector.apiPort}, storing in ${where}, keeping ${ttl.text}\n`,
    );
    const signal = await io.stopSignal;
    log(`${signal}: flushing and stopping`);
    await collector.shutdown();
    return 0;
  },
};
