#!/usr/bin/env node
import { commands } from './commands/index.js';
import { runCli } from './run-cli.js';

const stopSignal = new Promise<string>((resolve) => {
  process.once('SIGINT', () => resolve('SIGINT'));
  process.once('SIGTERM', () => resolve('SIGTERM'));
});

const code = await runCli(commands, process.argv.slice(2), {
  stdout: process.stdout,
  stderr: process.stderr,
  stopSignal,
});
process.exitCode = code;
// Long-running commands have closed their servers by now; short ones may leave
// keep-alive sockets of clients, which must not hold the process open.
setImmediate(() => process.exit(code)).unref();
