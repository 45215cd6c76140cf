import { execFileSync } from 'node:child_process';
import { NetnsError } from './netns-error.js';

/** No setup command may hang the caller: `ip` answers in milliseconds or something is wrong. */
const COMMAND_TIMEOUT_MS = 15_000;

/**
 * Runs a short system command synchronously (setup and teardown must also work
 * inside an exit handler, where nothing asynchronous runs) and returns its
 * stdout. A failure names the whole command line and its stderr.
 */
export function runCommand(command: string, args: readonly string[], input?: string): string {
  try {
    return execFileSync(command, args, {
      encoding: 'utf8',
      input,
      stdio: ['pipe', 'pipe', 'pipe'],
      timeout: COMMAND_TIMEOUT_MS,
      killSignal: 'SIGKILL',
    });
  } catch (err) {
    const detail = err as { stderr?: string; code?: string; signal?: string };
    const reason =
      detail.code === 'ENOENT'
        ? `${command} is not installed`
        : detail.signal === 'SIGKILL'
          ? `no answer within ${COMMAND_TIMEOUT_MS} ms`
          : (detail.stderr ?? '').trim() || String(err);
    throw new NetnsError('TM_ERR_NETNS_COMMAND', `${[command, ...args].join(' ')} failed: ${reason}`, { cause: err });
  }
}

/** `ip` inside network namespace `ns` (`ip -n`: no mount namespace, no /etc/netns files needed). */
export function ipIn(ns: string, args: readonly string[]): string {
  return runCommand('ip', ['-n', ns, ...args]);
}
