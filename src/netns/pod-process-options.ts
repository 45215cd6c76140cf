/** What a caller may ask of a pod process, checked before anything starts (every problem at once). */
import { statSync } from 'node:fs';
import { NetnsError } from './netns-error.js';
import { CAPABILITY_NAME } from './pod-command.js';
import type { ProcessUser } from './process-user.js';
import { ROOT_USER } from './process-user.js';

export interface PodProcessOptions {
  command: string;
  args?: readonly string[];
  /** Default root; the sidecar runs as PROXY_USER. */
  user?: ProcessUser;
  /** Ambient capabilities for a non-root user, e.g. `['net_admin']`. */
  capabilities?: readonly string[];
  /** Added to a clean environment of PATH and HOME. */
  env?: Readonly<Record<string, string>>;
  cwd?: string;
  /** Also append the output to this file. */
  logFile?: string;
  /** Written to stdin, which is then closed. */
  input?: string;
  /**
   * Absolute paths the process must read even if a directory above them is
   * closed to its uid (e.g. the project root for the sidecar): exposed in the
   * process's own mount namespace only, see reveal-script.ts.
   */
  reveal?: readonly string[];
  /** Names the process in errors; default `<pod>:<command>`. */
  label?: string;
}

function isDirectory(dir: string): boolean {
  try {
    return statSync(dir).isDirectory();
  } catch {
    return false;
  }
}

export function checkProcessOptions(options: PodProcessOptions): void {
  const problems: string[] = [];
  if (typeof options.command !== 'string' || options.command === '') problems.push('command: expected a program name or path');
  const user = options.user ?? ROOT_USER;
  for (const key of ['uid', 'gid'] as const) {
    if (!Number.isInteger(user[key]) || user[key] < 0) problems.push(`user.${key}: ${JSON.stringify(user[key])} is not a non-negative integer`);
  }
  if (options.cwd !== undefined && !isDirectory(options.cwd)) problems.push(`cwd: '${options.cwd}' is not a directory`);
  for (const cap of options.capabilities ?? []) {
    if (!CAPABILITY_NAME.test(cap)) problems.push(`capabilities: '${cap}' is not a capability name such as net_admin`);
  }
  if (problems.length > 0) throw new NetnsError('TM_ERR_NETNS_BAD_SPEC', `pod process options are invalid: ${problems.join('; ')}`);
}
