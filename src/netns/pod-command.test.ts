import { describe, expect, it } from 'vitest';
import { podCommandLine } from './pod-command.js';
import { PROXY_USER, ROOT_USER } from './process-user.js';

const base = { namespace: 'tmt1-a', command: 'node', args: ['app.js', '--port', '0'], capabilities: [], revealScript: undefined };

describe('the command line of a pod process', () => {
  it('runs a root process in the namespace with a parent-death signal and nothing else changed', () => {
    expect(podCommandLine({ ...base, user: ROOT_USER })).toEqual({
      file: 'ip',
      args: ['netns', 'exec', 'tmt1-a', 'setpriv', '--pdeathsig', 'KILL', '--', 'node', 'app.js', '--port', '0'],
    });
  });

  it('drops to the sidecar uid and gid with no supplementary groups', () => {
    expect(podCommandLine({ ...base, user: PROXY_USER }).args).toEqual([
      'netns', 'exec', 'tmt1-a', 'setpriv', '--pdeathsig', 'KILL',
      '--reuid', '1337', '--regid', '1337', '--clear-groups', '--', 'node', 'app.js', '--port', '0',
    ]);
  });

  it('keeps asked-for capabilities as ambient ones for a non-root user, and adds none for root', () => {
    const proxy = podCommandLine({ ...base, user: PROXY_USER, capabilities: ['net_admin', 'net_raw'] }).args;
    expect(proxy.slice(proxy.indexOf('--clear-groups') + 1, proxy.indexOf('--'))).toEqual([
      '--inh-caps', '+net_admin,+net_raw', '--ambient-caps', '+net_admin,+net_raw',
    ]);
    expect(podCommandLine({ ...base, user: ROOT_USER, capabilities: ['net_admin'] }).args).not.toContain('--ambient-caps');
  });

  it('runs the reveal script as root before setpriv, handing it the rest of the command line', () => {
    const args = podCommandLine({ ...base, user: PROXY_USER, revealScript: 'exec "$@"' }).args;
    expect(args.slice(0, 8)).toEqual(['netns', 'exec', 'tmt1-a', 'sh', '-c', 'exec "$@"', 'tracemesh-reveal', 'setpriv']);
  });
});
