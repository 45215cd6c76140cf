import { execFileSync } from 'node:child_process';

/** Runs a command and returns its stdout; a failure names the command and its stderr. */
export function run(command: string, args: string[]): string {
  try {
    return execFileSync(command, args, { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] });
  } catch (err) {
    const stderr = (err as { stderr?: string }).stderr ?? '';
    throw new Error(`${command} ${args.join(' ')} failed: ${stderr.trim() || String(err)}`);
  }
}

export interface VethNamespace {
  name: string;
  /** The host end's address, reachable from inside the namespace. */
  hostAddress: string;
  /** The namespace end's address. */
  nsAddress: string;
  remove(): void;
}

/**
 * A network namespace joined to the host by a veth pair on a private /30.
 * Needs root. Names and the subnet derive from `index` so parallel runs of
 * different tests do not collide.
 */
export function createVethNamespace(prefix: string, index: number): VethNamespace {
  if (process.getuid?.() !== 0) throw new Error('system tests need root (network namespaces and veth)');
  const name = `${prefix}${process.pid % 10000}`;
  const hostIf = `${prefix}h${process.pid % 10000}`.slice(0, 15);
  const nsIf = `${prefix}n${process.pid % 10000}`.slice(0, 15);
  const third = 100 + (index % 100);
  const hostAddress = `10.231.${third}.1`;
  const nsAddress = `10.231.${third}.2`;
  run('ip', ['netns', 'add', name]);
  try {
    run('ip', ['link', 'add', hostIf, 'type', 'veth', 'peer', 'name', nsIf]);
    run('ip', ['link', 'set', nsIf, 'netns', name]);
    run('ip', ['addr', 'add', `${hostAddress}/30`, 'dev', hostIf]);
    run('ip', ['link', 'set', hostIf, 'up']);
    run('ip', ['netns', 'exec', name, 'ip', 'addr', 'add', `${nsAddress}/30`, 'dev', nsIf]);
    run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', nsIf, 'up']);
    run('ip', ['netns', 'exec', name, 'ip', 'link', 'set', 'lo', 'up']);
  } catch (err) {
    try {
      run('ip', ['link', 'del', hostIf]);
    } catch {
      // the link may not exist yet
    }
    run('ip', ['netns', 'del', name]);
    throw err;
  }
  return {
    name,
    hostAddress,
    nsAddress,
    remove() {
      try {
        run('ip', ['link', 'del', hostIf]);
      } catch {
        // deleting the namespace already removed the pair
      }
      run('ip', ['netns', 'del', name]);
    },
  };
}
