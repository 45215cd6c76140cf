import { describe, expect, it } from 'vitest';
import { CAPTURE_DEFAULTS, formatCommand, planApply, planCleanup, type CaptureOptions, type RuleCommand } from './iptables-rules.js';
import { EMPTY_FAMILY_STATE, FRESH_STATE, type CaptureState, type FamilyState } from './iptables-state.js';
import { parseCidr, type Cidr } from './iptables-values.js';

function cidr(text: string): Cidr {
  const parsed = parseCidr(text);
  if (!parsed.ok) throw new Error(parsed.problem);
  return parsed.value;
}

const BASE: CaptureOptions = {
  mode: 'redirect',
  families: [4],
  inboundPort: 15006,
  outboundPort: 15001,
  adminPort: 15000,
  proxyUid: 1337,
  proxyGid: 1337,
  excludeInboundPorts: [],
  excludeOutboundPorts: [],
  excludeOutboundCidrs: [],
  includeOutboundCidrs: 'all',
  neverCaptured: [],
  tproxyMark: CAPTURE_DEFAULTS.tproxyMark,
  routeTable: CAPTURE_DEFAULTS.routeTable,
};

const lines = (plan: readonly RuleCommand[]): string[] => plan.map((step) => formatCommand(step));

/** What `iptables -S` / `ip rule show` / `ip route` would list after running `plan` in a fresh namespace. */
function stateAfter(plan: readonly RuleCommand[]): CaptureState {
  const families: Record<4 | 6, { rules: { nat: string[]; mangle: string[] }; ipRules: string[]; routes: string[] }> = {
    4: { rules: { nat: [], mangle: [] }, ipRules: [], routes: [] },
    6: { rules: { nat: [], mangle: [] }, ipRules: [], routes: [] },
  };
  for (const { argv } of plan) {
    if (argv[0] === 'iptables' || argv[0] === 'ip6tables') {
      const table = argv[2] as 'nat' | 'mangle';
      const verb = argv[3];
      if (verb === '-N' || verb === '-A') families[argv[0] === 'iptables' ? 4 : 6].rules[table].push(argv.slice(3).join(' '));
    } else if (argv[0] === 'ip') {
      const family = argv[1] === '-6' ? 6 : 4;
      const words = argv.slice(family === 6 ? 2 : 1);
      if (words[0] === 'rule' && words[1] === 'add') families[family].ipRules.push(`32765:\tfrom all ${words.slice(2).join(' ')}`);
      if (words[0] === 'route') families[family].routes.push(`local default dev lo table ${words.at(-1)} scope host`);
    }
  }
  return { 4: families[4], 6: families[6] };
}

describe('planApply in a fresh namespace (what --dry-run prints)', () => {
  it('REDIRECT: nat chains of our own, inbound to 15006, outbound to 15001, proxy UID/GID and loopback handled', () => {
    expect(lines(planApply(BASE, FRESH_STATE))).toEqual([
      'iptables -t nat -N TRACEMESH_INBOUND',
      'iptables -t nat -N TRACEMESH_IN_REDIRECT',
      'iptables -t nat -N TRACEMESH_OUTBOUND',
      'iptables -t nat -N TRACEMESH_OUT_REDIRECT',
      'iptables -t nat -A TRACEMESH_INBOUND -p tcp -m tcp --dport 15000 -j RETURN',
      'iptables -t nat -A TRACEMESH_INBOUND -p tcp -j TRACEMESH_IN_REDIRECT',
      'iptables -t nat -A TRACEMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 15006',
      'iptables -t nat -A TRACEMESH_OUTBOUND -p tcp -m tcp --dport 15000 -j RETURN',
      'iptables -t nat -A TRACEMESH_OUTBOUND ! -d 127.0.0.1/32 -o lo -m owner --uid-owner 1337 -j TRACEMESH_IN_REDIRECT',
      'iptables -t nat -A TRACEMESH_OUTBOUND -o lo -m owner ! --uid-owner 1337 -j RETURN',
      'iptables -t nat -A TRACEMESH_OUTBOUND -m owner --uid-owner 1337 -j RETURN',
      'iptables -t nat -A TRACEMESH_OUTBOUND ! -d 127.0.0.1/32 -o lo -m owner --gid-owner 1337 -j TRACEMESH_IN_REDIRECT',
      'iptables -t nat -A TRACEMESH_OUTBOUND -o lo -m owner ! --gid-owner 1337 -j RETURN',
      'iptables -t nat -A TRACEMESH_OUTBOUND -m owner --gid-owner 1337 -j RETURN',
      'iptables -t nat -A TRACEMESH_OUTBOUND -d 127.0.0.1/32 -j RETURN',
      'iptables -t nat -A TRACEMESH_OUTBOUND -j TRACEMESH_OUT_REDIRECT',
      'iptables -t nat -A TRACEMESH_OUT_REDIRECT -p tcp -j REDIRECT --to-ports 15001',
      'iptables -t nat -A PREROUTING -p tcp -m comment --comment tracemesh -j TRACEMESH_INBOUND',
      'iptables -t nat -A OUTPUT -p tcp -m comment --comment tracemesh -j TRACEMESH_OUTBOUND',
    ]);
  });

  it('TPROXY: mangle TPROXY with the mark for inbound, established-connection divert, policy routing, outbound stays nat REDIRECT; marked connections (the proxy from a client address) exempt', () => {
    const plan = lines(planApply({ ...BASE, mode: 'tproxy', inboundPort: 25006, tproxyMark: 0x600, routeTable: 200 }, FRESH_STATE));
    expect(plan).toEqual([
      'iptables -t mangle -N TRACEMESH_INBOUND',
      'iptables -t mangle -N TRACEMESH_DIVERT',
      'iptables -t mangle -N TRACEMESH_TPROXY',
      'iptables -t nat -N TRACEMESH_IN_REDIRECT',
      'iptables -t nat -N TRACEMESH_OUTBOUND',
      'iptables -t nat -N TRACEMESH_OUT_REDIRECT',
      'iptables -t mangle -A TRACEMESH_INBOUND -p tcp -m mark --mark 0x600 -j RETURN',
      'iptables -t mangle -A TRACEMESH_INBOUND -p tcp -m tcp --dport 15000 -j RETURN',
      'iptables -t mangle -A TRACEMESH_INBOUND -p tcp -m conntrack --ctstate RELATED,ESTABLISHED -j TRACEMESH_DIVERT',
      'iptables -t mangle -A TRACEMESH_INBOUND -p tcp -j TRACEMESH_TPROXY',
      'iptables -t mangle -A TRACEMESH_DIVERT -j MARK --set-xmark 0x600/0xffffffff',
      'iptables -t mangle -A TRACEMESH_DIVERT -j ACCEPT',
      'iptables -t mangle -A TRACEMESH_TPROXY ! -d 127.0.0.1/32 -p tcp -j TPROXY --on-port 25006 --on-ip 0.0.0.0 --tproxy-mark 0x600/0xffffffff',
      'iptables -t nat -A TRACEMESH_IN_REDIRECT -p tcp -j REDIRECT --to-ports 25006',
      // The proxy's connection from the client's address to its own pod address is not REDIRECTed back to it.
      'iptables -t nat -A TRACEMESH_OUTBOUND -m mark --mark 0x600 -j RETURN',
      ...lines(planApply(BASE, FRESH_STATE)).filter((l) => l.startsWith('iptables -t nat -A TRACEMESH_OUT')),
      'ip route replace local 0.0.0.0/0 dev lo table 200',
      'ip rule add fwmark 0x600 lookup 200',
      // The save comes before the jump, which ends the chain for diverted and TPROXYed packets.
      'iptables -t mangle -A PREROUTING -p tcp -m mark --mark 0x600 -m comment --comment tracemesh -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff',
      'iptables -t mangle -A PREROUTING -p tcp -m comment --comment tracemesh -j TRACEMESH_INBOUND',
      // No `-o lo`: the app's reply to a remote client's address is first routed out of the pod; the restored mark reroutes it.
      'iptables -t mangle -A OUTPUT -p tcp -m connmark --mark 0x600 -m comment --comment tracemesh -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff',
      'iptables -t nat -A OUTPUT -p tcp -m comment --comment tracemesh -j TRACEMESH_OUTBOUND',
    ]);
    expect(plan.some((l) => l.includes('-A PREROUTING') && l.includes('-t nat'))).toBe(false);
  });

  it('exclusions: inbound and outbound ports and ranges, CIDRs, collector and control plane, before the catch-all', () => {
    const plan = lines(
      planApply(
        {
          ...BASE,
          families: [4, 6],
          excludeInboundPorts: [{ first: 22, last: 22 }, { first: 9000, last: 9010 }],
          excludeOutboundPorts: [{ first: 5432, last: 5432 }],
          excludeOutboundCidrs: [cidr('10.96.0.0/12'), cidr('fd00:1::/64')],
          neverCaptured: [
            { what: 'collector', host: cidr('10.1.2.3'), port: 4317 },
            { what: 'control plane', host: cidr('fd00::10'), port: 15010 },
          ],
        },
        FRESH_STATE,
      ),
    );
    const chain = (tool: string, name: string): string[] => plan.filter((l) => l.startsWith(`${tool} -t nat -A ${name} `)).map((l) => l.split(` -A ${name} `)[1] as string);
    expect(chain('iptables', 'TRACEMESH_INBOUND')).toEqual([
      '-p tcp -m tcp --dport 15000 -j RETURN',
      '-p tcp -m tcp --dport 22 -j RETURN',
      '-p tcp -m tcp --dport 9000:9010 -j RETURN',
      '-p tcp -j TRACEMESH_IN_REDIRECT',
    ]);
    const v4 = chain('iptables', 'TRACEMESH_OUTBOUND');
    expect(v4.slice(0, 2)).toEqual(['-p tcp -m tcp --dport 15000 -j RETURN', '-p tcp -m tcp --dport 5432 -j RETURN']);
    expect(v4.slice(-4)).toEqual(['-d 127.0.0.1/32 -j RETURN', '-d 10.1.2.3/32 -p tcp -m tcp --dport 4317 -j RETURN', '-d 10.96.0.0/12 -j RETURN', '-j TRACEMESH_OUT_REDIRECT']);
    const v6 = chain('ip6tables', 'TRACEMESH_OUTBOUND');
    expect(v6).toContain('! -d ::1/128 -o lo -m owner --uid-owner 1337 -j TRACEMESH_IN_REDIRECT');
    expect(v6.slice(-4)).toEqual(['-d ::1/128 -j RETURN', '-d fd00::10/128 -p tcp -m tcp --dport 15010 -j RETURN', '-d fd00:1::/64 -j RETURN', '-j TRACEMESH_OUT_REDIRECT']);
    expect(chain('ip6tables', 'TRACEMESH_INBOUND')).toEqual(chain('iptables', 'TRACEMESH_INBOUND'));
  });

  it('--include-outbound-cidrs: only the listed networks of each family go to the outbound listener', () => {
    const plan = lines(planApply({ ...BASE, families: [4, 6], includeOutboundCidrs: [cidr('10.0.0.0/8'), cidr('192.168.0.0/16')] }, FRESH_STATE));
    const redirects = plan.filter((l) => l.endsWith('-j TRACEMESH_OUT_REDIRECT'));
    expect(redirects).toEqual([
      'iptables -t nat -A TRACEMESH_OUTBOUND -d 10.0.0.0/8 -j TRACEMESH_OUT_REDIRECT',
      'iptables -t nat -A TRACEMESH_OUTBOUND -d 192.168.0.0/16 -j TRACEMESH_OUT_REDIRECT',
    ]);
  });

  it('IPv6: the same chains through ip6tables with ::1 for loopback, and ip -6 for TPROXY routing', () => {
    const plan = lines(planApply({ ...BASE, mode: 'tproxy', families: [4, 6] }, FRESH_STATE));
    const v4 = plan.filter((l) => l.startsWith('iptables ') || (l.startsWith('ip ') && !l.startsWith('ip -6')));
    const v6 = plan.filter((l) => l.startsWith('ip6tables ') || l.startsWith('ip -6 '));
    expect(v4.length + v6.length).toBe(plan.length);
    expect(plan.indexOf(v6[0] as string)).toBe(v4.length);
    const asV6 = v4.map((l) =>
      l
        .replace(/^iptables /, 'ip6tables ')
        .replace(/^ip /, 'ip -6 ')
        .replace('127.0.0.1/32', '::1/128')
        .replace('--on-ip 0.0.0.0', '--on-ip ::')
        .replace('local 0.0.0.0/0', 'local ::/0'),
    );
    expect(v6).toEqual(asV6);
  });

  it('UID and GID: each exempt on its own', () => {
    const plan = lines(planApply({ ...BASE, proxyUid: 2001, proxyGid: 3001 }, FRESH_STATE));
    expect(plan).toContain('iptables -t nat -A TRACEMESH_OUTBOUND -m owner --uid-owner 2001 -j RETURN');
    expect(plan).toContain('iptables -t nat -A TRACEMESH_OUTBOUND -m owner --gid-owner 3001 -j RETURN');
    expect(plan).toContain('iptables -t nat -A TRACEMESH_OUTBOUND -o lo -m owner ! --gid-owner 3001 -j RETURN');
    expect(plan.some((l) => l.includes('1337'))).toBe(false);
  });
});

describe('planApply against what is installed', () => {
  it('a second apply refills our chains and adds no hook, rule or route twice', () => {
    const options: CaptureOptions = { ...BASE, mode: 'tproxy', families: [4, 6] };
    const first = planApply(options, FRESH_STATE);
    const second = lines(planApply(options, stateAfter(first)));
    expect(second.filter((l) => / -[NXD] /.test(l))).toEqual([]);
    expect(second.filter((l) => / -A (PREROUTING|OUTPUT) /.test(l) || l.includes(' rule add '))).toEqual([]);
    expect(second.filter((l) => / -F /.test(l))).toHaveLength(12);
    // Every rule of our chains is appended again after the flush, in the same order.
    const appends = (plan: string[]): string[] => plan.filter((l) => / -A TRACEMESH_/.test(l));
    expect(appends(second)).toEqual(appends(lines(first)));
  });

  it('switching REDIRECT → TPROXY removes the nat inbound hook and chain, and keeps the outbound hook', () => {
    const redirect = planApply(BASE, FRESH_STATE);
    const plan = lines(planApply({ ...BASE, mode: 'tproxy' }, stateAfter(redirect)));
    expect(plan.slice(0, 1)).toEqual(['iptables -t nat -D PREROUTING -p tcp -m comment --comment tracemesh -j TRACEMESH_INBOUND']);
    expect(plan).toContain('iptables -t nat -X TRACEMESH_INBOUND');
    expect(plan).not.toContain('iptables -t nat -A OUTPUT -p tcp -m comment --comment tracemesh -j TRACEMESH_OUTBOUND');
    expect(plan).toContain('iptables -t mangle -A PREROUTING -p tcp -m comment --comment tracemesh -j TRACEMESH_INBOUND');
  });

  it('IPv6 turned off: our ip6tables chains, hooks and the emptied tables go', () => {
    const both = planApply({ ...BASE, families: [4, 6] }, FRESH_STATE);
    const plan = lines(planApply(BASE, stateAfter(both)));
    expect(plan.filter((l) => l.startsWith('ip6tables'))).toEqual([
      'ip6tables -t nat -D PREROUTING -p tcp -m comment --comment tracemesh -j TRACEMESH_INBOUND',
      'ip6tables -t nat -D OUTPUT -p tcp -m comment --comment tracemesh -j TRACEMESH_OUTBOUND',
      'ip6tables -t nat -F TRACEMESH_INBOUND',
      'ip6tables -t nat -F TRACEMESH_IN_REDIRECT',
      'ip6tables -t nat -F TRACEMESH_OUTBOUND',
      'ip6tables -t nat -F TRACEMESH_OUT_REDIRECT',
      'ip6tables -t nat -X TRACEMESH_INBOUND',
      'ip6tables -t nat -X TRACEMESH_IN_REDIRECT',
      'ip6tables -t nat -X TRACEMESH_OUTBOUND',
      'ip6tables -t nat -X TRACEMESH_OUT_REDIRECT',
    ]);
    expect(plan).toContain("printf '%s\\n' '*nat' COMMIT | ip6tables-restore");
  });

  it('hooks of one built-in chain listed out of order (save-mark after the jump, as an older tracemesh made them) are removed and added again in order', () => {
    const options: CaptureOptions = { ...BASE, mode: 'tproxy' };
    const installed = stateAfter(planApply(options, FRESH_STATE));
    const mangle = installed[4]?.rules.mangle ?? [];
    const save = mangle.find((l) => l.includes('--save-mark')) as string;
    const jump = mangle.find((l) => l.startsWith('-A PREROUTING') && l.endsWith('-j TRACEMESH_INBOUND')) as string;
    const swapped = mangle.map((l) => (l === save ? jump : l === jump ? save : l));
    const plan = lines(planApply(options, { 4: { ...(installed[4] as FamilyState), rules: { nat: installed[4]?.rules.nat ?? [], mangle: swapped } } }));
    const hooks = plan.filter((l) => / -[AD] PREROUTING /.test(l));
    expect(hooks).toEqual([
      `iptables -t mangle -D PREROUTING ${jump.slice('-A PREROUTING '.length)}`,
      `iptables -t mangle -D PREROUTING ${save.slice('-A PREROUTING '.length)}`,
      `iptables -t mangle ${save}`,
      `iptables -t mangle ${jump}`,
    ]);
    // The OUTPUT hooks were in order and stay.
    expect(plan.filter((l) => / -[AD] OUTPUT /.test(l))).toEqual([]);
    // Applying again on the fixed order changes no hook.
    const fixed = lines(planApply(options, installed));
    expect(fixed.filter((l) => / -[AD] (PREROUTING|OUTPUT) /.test(l))).toEqual([]);
  });

  it('a wanted hook listed twice is deleted once, the rule of ours with other options is replaced', () => {
    const hook = '-A OUTPUT -p tcp -m comment --comment tracemesh -j TRACEMESH_OUTBOUND';
    const state: CaptureState = {
      4: {
        ...EMPTY_FAMILY_STATE,
        rules: { nat: ['-N TRACEMESH_OUTBOUND', hook, hook], mangle: ['-A OUTPUT -p tcp -m connmark --mark 0x77 -m comment --comment tracemesh -j CONNMARK --restore-mark'] },
      },
    };
    const plan = lines(planApply(BASE, state));
    expect(plan.filter((l) => l.includes(' -D '))).toEqual([
      'iptables -t nat -D OUTPUT -p tcp -m comment --comment tracemesh -j TRACEMESH_OUTBOUND',
      'iptables -t mangle -D OUTPUT -p tcp -m connmark --mark 0x77 -m comment --comment tracemesh -j CONNMARK --restore-mark',
    ]);
    expect(plan.filter((l) => l.includes('-A OUTPUT'))).toEqual([]);
  });
});

describe('planCleanup', () => {
  const foreign: FamilyState = {
    rules: {
      nat: ['-P PREROUTING ACCEPT', '-N KUBE-SERVICES', '-A OUTPUT -p udp -m udp --dport 53 -j RETURN', '-A OUTPUT -j KUBE-SERVICES', '-A KUBE-SERVICES -j RETURN'],
      mangle: ['-P OUTPUT ACCEPT', '-A OUTPUT -m comment --comment "not ours" -j RETURN'],
    },
    ipRules: ['0:\tfrom all lookup local', '32000:\tfrom all fwmark 0x77 lookup 200', '32766:\tfrom all lookup main'],
    routes: [],
  };

  it('removes nothing that is not ours', () => {
    expect(planCleanup({ 4: foreign, 6: foreign }, 133)).toEqual([]);
    expect(planCleanup(FRESH_STATE, 133)).toEqual([]);
  });

  it('removes hooks, then empties and deletes our chains, our ip rules and routes, whatever options made them', () => {
    const installed = stateAfter(planApply({ ...BASE, mode: 'tproxy', families: [4, 6], tproxyMark: 0x700 }, FRESH_STATE));
    const withForeign: CaptureState = {
      4: {
        rules: { nat: [...foreign.rules.nat, ...(installed[4]?.rules.nat ?? [])], mangle: [...foreign.rules.mangle, ...(installed[4]?.rules.mangle ?? [])] },
        ipRules: [...foreign.ipRules, '32765:\tfrom all fwmark 0x700 lookup 133'],
        routes: installed[4]?.routes ?? [],
      },
      6: installed[6] as FamilyState,
    };
    const plan = lines(planCleanup(withForeign, 133));
    const v4 = plan.filter((l) => l.startsWith('iptables') || (l.startsWith('ip ') && !l.startsWith('ip -6')) || l.endsWith('| iptables-restore'));
    expect(v4).toEqual([
      'iptables -t nat -D OUTPUT -p tcp -m comment --comment tracemesh -j TRACEMESH_OUTBOUND',
      'iptables -t mangle -D PREROUTING -p tcp -m mark --mark 0x700 -m comment --comment tracemesh -j CONNMARK --save-mark --nfmask 0xffffffff --ctmask 0xffffffff',
      'iptables -t mangle -D PREROUTING -p tcp -m comment --comment tracemesh -j TRACEMESH_INBOUND',
      'iptables -t mangle -D OUTPUT -p tcp -m connmark --mark 0x700 -m comment --comment tracemesh -j CONNMARK --restore-mark --nfmask 0xffffffff --ctmask 0xffffffff',
      'iptables -t nat -F TRACEMESH_IN_REDIRECT',
      'iptables -t nat -F TRACEMESH_OUTBOUND',
      'iptables -t nat -F TRACEMESH_OUT_REDIRECT',
      'iptables -t mangle -F TRACEMESH_INBOUND',
      'iptables -t mangle -F TRACEMESH_DIVERT',
      'iptables -t mangle -F TRACEMESH_TPROXY',
      'iptables -t nat -X TRACEMESH_IN_REDIRECT',
      'iptables -t nat -X TRACEMESH_OUTBOUND',
      'iptables -t nat -X TRACEMESH_OUT_REDIRECT',
      'iptables -t mangle -X TRACEMESH_INBOUND',
      'iptables -t mangle -X TRACEMESH_DIVERT',
      'iptables -t mangle -X TRACEMESH_TPROXY',
      'ip rule del priority 32765 from all fwmark 0x700 lookup 133',
      'ip route flush table 133',
    ]);
    // Foreign rules keep both IPv4 tables alive; the IPv6 ones held only ours and go.
    expect(plan.filter((l) => l.endsWith('tables-restore'))).toEqual(["printf '%s\\n' '*nat' COMMIT | ip6tables-restore", "printf '%s\\n' '*mangle' COMMIT | ip6tables-restore"]);
    expect(plan).toContain('ip -6 rule del priority 32765 from all fwmark 0x700 lookup 133');
  });

  it('keeps a table that has a policy other than ACCEPT', () => {
    const state: CaptureState = { 4: { ...EMPTY_FAMILY_STATE, rules: { nat: ['-P OUTPUT DROP', '-N TRACEMESH_OUTBOUND'], mangle: [] } } };
    expect(lines(planCleanup(state, 133))).toEqual(['iptables -t nat -F TRACEMESH_OUTBOUND', 'iptables -t nat -X TRACEMESH_OUTBOUND']);
  });
});

describe('formatCommand', () => {
  it('quotes only what a shell would read otherwise', () => {
    expect(formatCommand({ argv: ['iptables', '-A', 'X', '!', '-d', '::1/128', '-m', 'comment', '--comment', "it's mine"] })).toBe(
      "iptables -A X ! -d ::1/128 -m comment --comment 'it'\\''s mine'",
    );
  });
});
