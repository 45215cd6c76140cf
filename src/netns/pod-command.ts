/**
 * The command line that runs a program inside a pod: `ip netns exec` (the
 * pod's network namespace and its /etc/netns files), optionally the reveal
 * script, then `setpriv` for the user, groups, capabilities and a parent-death
 * signal, so the program dies with the process that started it even when that
 * one is SIGKILLed and no exit handler runs.
 */
import type { ProcessUser } from './process-user.js';
import { isRoot } from './process-user.js';

export interface PodCommandSpec {
  /** The network namespace's name. */
  namespace: string;
  command: string;
  args: readonly string[];
  user: ProcessUser;
  /** Capabilities a non-root process keeps as ambient ones (e.g. `net_admin` for IP_TRANSPARENT in TPROXY mode). */
  capabilities: readonly string[];
  /** A script from revealScript(), run as root before the user is dropped. */
  revealScript: string | undefined;
}

export const CAPABILITY_NAME = /^[a-z][a-z_]{1,30}$/;

export function podCommandLine(spec: PodCommandSpec): { file: string; args: string[] } {
  const args = ['netns', 'exec', spec.namespace];
  if (spec.revealScript !== undefined) args.push('sh', '-c', spec.revealScript, 'tracemesh-reveal');
  args.push('setpriv', '--pdeathsig', 'KILL');
  if (!isRoot(spec.user)) {
    args.push('--reuid', String(spec.user.uid), '--regid', String(spec.user.gid), '--clear-groups');
    if (spec.capabilities.length > 0) {
      const caps = spec.capabilities.map((cap) => `+${cap}`).join(',');
      args.push('--inh-caps', caps, '--ambient-caps', caps);
    }
  }
  args.push('--', spec.command, ...spec.args);
  return { file: 'ip', args };
}
