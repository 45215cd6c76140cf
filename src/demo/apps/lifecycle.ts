/**
 * What every demo app shares: the handle start() returns, and the process
 * entry (`node dist/src/demo/apps/<name>.js`): parse the config, start
 * OpenTelemetry, start the app, print one ready line, and on SIGTERM/SIGINT
 * stop the app and flush the spans before exiting.
 */
import { realpathSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { errorMessage, isTracemeshError } from '../../lib/errors.js';
import { startInstrumentation } from '../instrument.js';
import type { DemoInstrumentation } from '../instrument.js';
import { demoUsage, formatListenAddress, parseDemoConfig } from './config.js';
import type { DemoAppConfig, DemoAppName, ListenAddress } from './config.js';

export interface RunningApp {
  /** The port it listens on (at the host it was given), resolved when started with port 0. */
  readonly port: number;
  /** Closes listeners and connections, then flushes and stops the app's instrumentation if it was given one. Safe twice. */
  stop(): Promise<void>;
}

/** Starts an app from the parsed config; `instrumentation` is handed to the app so its stop() flushes. */
export type StartFromConfig = (config: DemoAppConfig, instrumentation: DemoInstrumentation) => Promise<RunningApp>;

/** The line a parent process waits for: `tracemesh-demo web listening on 127.0.0.1:9080` (`[::]:9080` for IPv6); the port is the real one even with --port 0. */
export function readyLine(app: DemoAppName, listen: ListenAddress): string {
  return `tracemesh-demo ${app} listening on ${formatListenAddress(listen)}\n`;
}

/** Parses a ready line; undefined for any other line. The host comes without IPv6 brackets. */
export function parseReadyLine(line: string): { app: string; host: string; port: number } | undefined {
  const match = /^tracemesh-demo (\S+) listening on (\[[0-9A-Fa-f:.]+\]|[0-9.]+):(\d{1,5})$/.exec(line.trim());
  if (match === null) return undefined;
  return { app: match[1] ?? '', host: (match[2] ?? '').replace(/^\[(.*)\]$/, '$1'), port: Number(match[3]) };
}

/** True when the module at `moduleUrl` is the script node was started with. */
export function isMainModule(moduleUrl: string): boolean {
  const script = process.argv[1];
  if (script === undefined) return false;
  try {
    return pathToFileURL(realpathSync(script)).href === moduleUrl;
  } catch {
    return false;
  }
}

/** A stop that hangs (a peer holding a connection open) must not keep the process forever. */
const STOP_DEADLINE_MS = 10_000;
const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

/** The process entry of an app. Exit codes: 0 after a signal, 2 for bad flags, 1 when start-up or stop fails. */
export async function runDemoApp(app: DemoAppName, start: StartFromConfig): Promise<void> {
  let config: DemoAppConfig;
  try {
    config = parseDemoConfig(app, process.argv.slice(2), process.env);
  } catch (err) {
    process.stderr.write(`tracemesh-demo ${app}: ${errorMessage(err)}\n${isTracemeshError(err) ? demoUsage(app) : ''}`);
    process.exitCode = EXIT_USAGE;
    return;
  }
  if (config.help) {
    process.stdout.write(demoUsage(app));
    return;
  }
  const instrumentation = startInstrumentation({
    serviceName: config.serviceName,
    collectorUrl: config.collectorUrl,
    exportDelayMs: config.exportDelayMs,
  });
  let running: RunningApp;
  try {
    running = await start(config, instrumentation);
  } catch (err) {
    process.stderr.write(`tracemesh-demo ${app}: cannot start: ${errorMessage(err)}\n`);
    await instrumentation.shutdown().catch(() => undefined);
    process.exitCode = EXIT_FAILURE;
    return;
  }
  const signal = await new Promise<string>((resolve) => {
    process.once('SIGTERM', () => resolve('SIGTERM'));
    process.once('SIGINT', () => resolve('SIGINT'));
    process.stdout.write(readyLine(app, { host: config.host, port: running.port }));
  });
  const deadline = setTimeout(() => {
    process.stderr.write(`tracemesh-demo ${app}: stop took longer than ${STOP_DEADLINE_MS} ms after ${signal}; exiting\n`);
    process.exit(EXIT_FAILURE);
  }, STOP_DEADLINE_MS);
  deadline.unref();
  try {
    await running.stop();
  } catch (err) {
    process.stderr.write(`tracemesh-demo ${app}: stop failed: ${errorMessage(err)}\n`);
    process.exitCode = EXIT_FAILURE;
  }
  clearTimeout(deadline);
  // Clients' keep-alive sockets or grpc-js internals must not hold the process once stopped.
  setImmediate(() => process.exit()).unref();
}
