import { describe, expect, it } from 'vitest';
import { runCaptured } from '../../../test/support/api-fixtures.js';
import { commands } from './index.js';

// Every call here carries --dry-run (and --ipv6 on|off where it gets that far): a unit test
// must never change, or depend on, the host's own rules.
const DRY = ['iptables', '--dry-run', '--ipv6', 'off'];

describe('tracemesh iptables flags', () => {
  const bad: Array<[string[], string]> = [
    [['--mode', 'magic'], "--mode: 'magic' is not redirect or tproxy"],
    [['--ipv6', 'maybe'], "--ipv6: 'maybe' is not auto, on or off"],
    [['--inbound-port', '0'], "--inbound-port: '0' is not a port a proxy listens on"],
    [['--outbound-port', '70000'], "--outbound-port: '70000' is not a port (0-65535)"],
    [['--admin-port', '15006'], 'the inbound (15006), outbound (15001) and admin (15006) ports must differ'],
    [['--proxy-uid', '0'], "--proxy-uid: '0' is not a user id other than root"],
    [['--proxy-uid', 'proxy'], "--proxy-uid: 'proxy' is not a user id"],
    [['--proxy-gid=-1'], "--proxy-gid: '-1' is not a group id"],
    [['--exclude-inbound-ports', '22,ssh'], "--exclude-inbound-ports: 'ssh' is not a port (1-65535) or a range such as 8080-8090"],
    [['--exclude-outbound-ports', '9000-8000'], "--exclude-outbound-ports: '9000-8000' is not a port"],
    [['--exclude-outbound-cidrs', '10.0.0.0/33'], "--exclude-outbound-cidrs: '10.0.0.0/33' has a prefix length outside 0-32"],
    [['--include-outbound-cidrs', '10.0.0.0/8,*'], "--include-outbound-cidrs: '*' is not an IPv4 or IPv6 address or CIDR"],
    [['--collector', 'collector'], "--collector: 'collector' is not HOST:PORT or a URL with a host and port"],
    [['--collector', 'no-such-host.invalid:4317'], "--collector: cannot resolve 'no-such-host.invalid' (ENOTFOUND)"],
    [['--control-plane', 'cp:15010'], "--control-plane: 'cp:15010' is not an http:// or https:// URL"],
    [['--tproxy-mark', '0'], "--tproxy-mark: '0' is not a mark (1-0xffffffff)"],
    [['--route-table', '254'], "--route-table: '254' is the kernel's 'main' table"],
    [['--cleanup', '--route-table', '255'], "--route-table: '255' is the kernel's 'local' table"],
    [['--exclude-inbound-port', '22'], 'unknown flag --exclude-inbound-port'],
    [['--dry-run=yes'], '--dry-run takes no value'],
  ];
  for (const [args, message] of bad) {
    it(`iptables ${args.join(' ')}: one line naming it, exit 2`, async () => {
      const res = await runCaptured(commands, [...DRY, ...args]);
      expect(res.stderr).toContain(message);
      expect(res.code).toBe(2);
      expect(res.stderr.split('\n')).toHaveLength(2);
      expect(res.stdout).toBe('');
    });
  }
});

describe('tracemesh iptables --dry-run', () => {
  it('prints the REDIRECT commands, one runnable line each', async () => {
    const res = await runCaptured(commands, [...DRY, '--exclude-inbound-ports', '22', '--collector', '127.0.0.2:4317']);
    expect(res.code).toBe(0);
    expect(res.stderr).toBe('');
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines[0]).toBe('iptables -t nat -N TRACEMESH_INBOUND');
    expect(lines).toContain('iptables -t nat -A TRACEMESH_INBOUND -p tcp -m tcp --dport 22 -j RETURN');
    expect(lines).toContain('iptables -t nat -A TRACEMESH_OUTBOUND -d 127.0.0.2/32 -p tcp -m tcp --dport 4317 -j RETURN');
    expect(lines.slice(-2)).toEqual([
      'iptables -t nat -A PREROUTING -p tcp -m comment --comment tracemesh -j TRACEMESH_INBOUND',
      'iptables -t nat -A OUTPUT -p tcp -m comment --comment tracemesh -j TRACEMESH_OUTBOUND',
    ]);
    expect(lines.every((line) => /^(iptables|ip6tables|ip) /.test(line))).toBe(true);
  });

  it('prints TPROXY commands for IPv4 and IPv6 with --ipv6 on, the collector resolved per family', async () => {
    const res = await runCaptured(commands, ['iptables', '--dry-run', '--ipv6', 'on', '--mode', 'tproxy', '--collector', 'http://[fd00::9]:4317', '--control-plane', 'https://127.0.0.3']);
    expect(res.code).toBe(0);
    const lines = res.stdout.trimEnd().split('\n');
    expect(lines).toContain('ip rule add fwmark 0x539 lookup 133');
    expect(lines).toContain('ip -6 rule add fwmark 0x539 lookup 133');
    expect(lines).toContain('ip -6 route replace local ::/0 dev lo table 133');
    expect(lines).toContain('ip6tables -t mangle -A TRACEMESH_TPROXY ! -d ::1/128 -p tcp -j TPROXY --on-port 15006 --on-ip :: --tproxy-mark 0x539/0xffffffff');
    expect(lines).toContain('ip6tables -t nat -A TRACEMESH_OUTBOUND -d fd00::9/128 -p tcp -m tcp --dport 4317 -j RETURN');
    expect(lines).toContain('iptables -t nat -A TRACEMESH_OUTBOUND -d 127.0.0.3/32 -p tcp -m tcp --dport 443 -j RETURN');
    expect(lines.filter((l) => l.includes('4317'))).toHaveLength(1);
    // CONNMARK: the save before the jump that ends the chain, the restore on every output interface.
    for (const tool of ['iptables', 'ip6tables']) {
      const save = lines.indexOf(`${tool} -t mangle -A PREROUTING -p tcp -m mark --mark 0x539 -m comment --comment tracemesh -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff`);
      const jump = lines.indexOf(`${tool} -t mangle -A PREROUTING -p tcp -m comment --comment tracemesh -j TRACEMESH_INBOUND`);
      expect(save).toBeGreaterThanOrEqual(0);
      expect(jump).toBeGreaterThan(save);
      expect(lines).toContain(`${tool} -t mangle -A OUTPUT -p tcp -m connmark --mark 0x539 -m comment --comment tracemesh -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff`);
      // The proxy's connections from client addresses (SO_MARK 0x539) are neither TPROXYed nor REDIRECTed back to it.
      expect(lines).toContain(`${tool} -t mangle -A TRACEMESH_INBOUND -p tcp -m mark --mark 0x539 -j RETURN`);
      expect(lines).toContain(`${tool} -t nat -A TRACEMESH_OUTBOUND -m mark --mark 0x539 -j RETURN`);
    }
  });

  it('--include-outbound-cidrs and --exclude-outbound-cidrs are printed as iptables will list them', async () => {
    const res = await runCaptured(commands, [...DRY, '--include-outbound-cidrs', '10.1.2.3/16', '--exclude-outbound-cidrs', '10.1.9.0/24,fd00::/8']);
    expect(res.code).toBe(0);
    const outbound = res.stdout.split('\n').filter((l) => l.startsWith('iptables -t nat -A TRACEMESH_OUTBOUND'));
    expect(outbound.slice(-2)).toEqual(['iptables -t nat -A TRACEMESH_OUTBOUND -d 10.1.9.0/24 -j RETURN', 'iptables -t nat -A TRACEMESH_OUTBOUND -d 10.1.0.0/16 -j TRACEMESH_OUT_REDIRECT']);
    expect(res.stdout).not.toContain('fd00::');
  });
});
