import { findExecutable } from '../lib/find-executable.js';
import { NetnsError } from './netns-error.js';

export const NEED_ROOT_MESSAGE = 'system tests need root (network namespaces, veth, iptables)';

/** Throws one clear error unless `uid` is root; `message` lets the demo say it in its own words. */
export function assertRoot(uid: number | undefined = process.getuid?.(), message = NEED_ROOT_MESSAGE): void {
  if (uid !== 0) throw new NetnsError('TM_ERR_NETNS_NOT_ROOT', message);
}

/** The programs the topology runs, and the package that brings each. */
const TOOLS: ReadonlyArray<{ name: string; pkg: string }> = [
  { name: 'ip', pkg: 'iproute2' },
  { name: 'setpriv', pkg: 'util-linux' },
];

/** Throws naming every missing program and its Debian package. */
export function assertTools(searchPath: string = process.env['PATH'] ?? ''): void {
  const missing = TOOLS.filter((tool) => findExecutable(tool.name, searchPath) === undefined);
  if (missing.length === 0) return;
  const list = missing.map((tool) => `${tool.name} (package ${tool.pkg})`).join(', ');
  throw new NetnsError('TM_ERR_NETNS_TOOL_MISSING', `not found on PATH: ${list}; install with apt-get install ${missing.map((t) => t.pkg).join(' ')}`);
}
