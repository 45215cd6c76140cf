/**
 * The capture rules, as a pure function of options and of what the namespace
 * holds now: an ordered list of commands (argv + why) that brings the namespace
 * to the wanted rules (apply) or to none of ours (cleanup). Nothing here runs a
 * process; iptables-apply.ts does.
 *
 * The rules follow Istio's istio-iptables, which is what users know:
 *
 * REDIRECT (nat):
 *   PREROUTING -p tcp → TRACEMESH_INBOUND: admin port and --exclude-inbound-ports RETURN,
 *     the rest → TRACEMESH_IN_REDIRECT (REDIRECT to the inbound port, 15006).
 *   OUTPUT -p tcp → TRACEMESH_OUTBOUND, first match wins:
 *     admin port and --exclude-outbound-ports RETURN;
 *     the proxy (UID, then GID) sending over lo to a non-loopback address → TRACEMESH_IN_REDIRECT
 *       (a pod calling its own service address: app → outbound → the proxy → inbound → app, no loop);
 *     anyone else over lo RETURN (an app calling its own pod address is plain local traffic);
 *     the proxy's own traffic RETURN; 127.0.0.1 RETURN;
 *     collector / control-plane address+port RETURN; --exclude-outbound-cidrs RETURN;
 *     --include-outbound-cidrs (default all) → TRACEMESH_OUT_REDIRECT (REDIRECT to 15001).
 * TPROXY (mangle, inbound only; outbound stays the nat chain above):
 *   PREROUTING -p tcp -m mark --mark MARK → CONNMARK --save-mark, then PREROUTING -p tcp →
 *   TRACEMESH_INBOUND:
 *     packets carrying the mark RETURN: the proxy's own connections to the app made from the
 *       client's address (SO_MARK=MARK, see transparent-connect.ts), which loop through lo, and
 *       the app's replies to them (mark restored below) — TPROXY would hand them to the proxy again;
 *     admin port and exclusions RETURN;
 *     packets of established connections → TRACEMESH_DIVERT (set the mark, ACCEPT), so
 *       replies to sockets of the proxy with a non-local address route to lo;
 *     new connections → TRACEMESH_TPROXY (TPROXY to the inbound port with the mark,
 *     never for 127.0.0.1);
 *   `ip rule add fwmark MARK lookup TABLE` + `ip route replace local 0.0.0.0/0 dev lo table TABLE`;
 *   OUTPUT -p tcp -m connmark --mark MARK → CONNMARK --restore-mark.
 *   The save sits before the jump because the jump ends the chain for every packet TRACEMESH_INBOUND
 *   diverts or TPROXYs; the packets it must see are the marked ones that arrive over lo, so only
 *   the proxy's original-source connections get the connection mark (a TPROXYed client
 *   connection never does: its packets come in unmarked, and its replies must leave by eth0).
 *   The restore is not limited to `-o lo`: the app's reply to the client's address is first
 *   routed out of the pod (the client is remote), and it is the restored mark that reroutes it
 *   through table TABLE to lo and the proxy's transparent socket. With `-o lo` it would leave
 *   the pod and the proxy's connect would time out (checked in a namespace).
 *   nat TRACEMESH_OUTBOUND starts with `-m mark --mark MARK -j RETURN`: the proxy's connection
 *   from the client's address to its own pod address would otherwise match the loopback rule
 *   and be REDIRECTed to its own inbound listener.
 * conntrack RELATED,ESTABLISHED rather than `-m socket --transparent`: TPROXY drops a
 * packet whose socket is not transparent, so the replies to the proxy's and the app's
 * own outbound connections must be diverted before they reach it.
 *
 * Decisions:
 * - What the proxy's listeners must do: in TPROXY mode the inbound listener sets
 *   IP_TRANSPARENT, and connections the proxy makes to its own pod's address still
 *   arrive REDIRECTed (TRACEMESH_IN_REDIRECT, original destination by SO_ORIGINAL_DST).
 *   The proxy reaches the app either on 127.0.0.1 (the app sees 127.0.0.1), which TPROXY
 *   never diverts, or from the client's address to the pod's own address at the captured
 *   port with SO_MARK=MARK (the app sees the client; transparent-connect.ts). A packet from
 *   a non-local address to 127.0.0.1 is a martian, hence the pod address.
 * - The collector and control plane are excluded by address *and* port (`-d A/32 -p tcp
 *   --dport P`), not the whole address; names are resolved when the rules are built
 *   (every address of the name, each in its family).
 * - The admin port is excluded inbound and outbound.
 * - `--include-outbound-cidrs` applies per family: a list without IPv6 networks captures
 *   no IPv6 outbound traffic; `*` captures all of both.
 * - Ownership: chains named TRACEMESH_*, rules in built-in chains that jump to them or
 *   carry `-m comment --comment tracemesh`, every `ip rule` that looks up our route table
 *   and the routes in it. Cleanup finds them in what the namespace lists, so it removes
 *   them whatever options (mode, mark, ports) installed them.
 * - Apply converges instead of adding: our chains are flushed and refilled, hooks and the
 *   ip rule are added only when not listed, parts of ours no longer wanted (the other
 *   mode, the other family) are removed. Refilling an existing chain leaves a moment
 *   without capture; an init container applies once into an empty namespace.
 * - A table that held only our rules is deleted when they go (`*nat` + COMMIT into
 *   iptables-restore, which deletes the table on the nf_tables backend), so a pod's
 *   iptables-save reads after --cleanup as it did before the apply created the table.
 *   A table we did not empty, or with a policy other than ACCEPT, is left.
 */
import type { CaptureTable, FamilyState, TableListing } from './iptables-state.js';
import {
  CAPTURE_TABLES,
  EMPTY_FAMILY_STATE,
  RULE_COMMENT,
  isOurChain,
  isOurHookRule,
  isOurIpRule,
  parseIpRules,
  parseTableListing,
  type CaptureState,
} from './iptables-state.js';
import { formatCidr, formatPortRange, type Cidr, type IpFamily, type PortRange } from './iptables-values.js';

export type CaptureMode = 'redirect' | 'tproxy';

/** An address+port the proxy talks to that must never be captured (collector, control plane). */
export interface NeverCaptured {
  /** What it is, for the rule's purpose: `collector`, `control plane`. */
  what: string;
  host: Cidr;
  port: number;
}

export interface CaptureOptions {
  mode: CaptureMode;
  /** Families to install rules for; the other family's rules of ours are removed. */
  families: readonly IpFamily[];
  inboundPort: number;
  outboundPort: number;
  adminPort: number;
  proxyUid: number;
  proxyGid: number;
  excludeInboundPorts: readonly PortRange[];
  excludeOutboundPorts: readonly PortRange[];
  excludeOutboundCidrs: readonly Cidr[];
  /** `all` captures every outbound destination (`*`); a list captures only those (per family). */
  includeOutboundCidrs: readonly Cidr[] | 'all';
  neverCaptured: readonly NeverCaptured[];
  /** fwmark of TPROXY'd packets and of the policy-routing rule. */
  tproxyMark: number;
  /** Route table holding `local default dev lo` for TPROXY; every `ip rule` looking it up is ours. */
  routeTable: number;
}

export const CAPTURE_DEFAULTS = {
  inboundPort: 15006,
  outboundPort: 15001,
  adminPort: 15000,
  proxyUid: 1337,
  tproxyMark: 0x539,
  routeTable: 133,
} as const;

/** One command of a plan: argv[0] is `iptables`, `ip6tables` or `ip`, found on PATH when run. */
export interface RuleCommand {
  argv: readonly string[];
  /** Lines fed to the command's stdin (only iptables-restore gets any). */
  stdin?: readonly string[];
  /** Why it is there, in words a person reading an error understands. */
  purpose: string;
}

export const CHAINS = {
  inbound: 'TRACEMESH_INBOUND',
  inRedirect: 'TRACEMESH_IN_REDIRECT',
  outbound: 'TRACEMESH_OUTBOUND',
  outRedirect: 'TRACEMESH_OUT_REDIRECT',
  divert: 'TRACEMESH_DIVERT',
  tproxy: 'TRACEMESH_TPROXY',
} as const;

interface RuleSpec {
  spec: string[];
  purpose: string;
}

interface ChainDesign {
  table: CaptureTable;
  name: string;
  rules: RuleSpec[];
}

/** A rule in a built-in chain, written exactly as `iptables -S` prints it (so it is found again). */
interface HookDesign extends RuleSpec {
  table: CaptureTable;
  chain: string;
}

interface FamilyDesign {
  chains: ChainDesign[];
  hooks: HookDesign[];
  routing: boolean;
}

const NO_DESIGN: FamilyDesign = { chains: [], hooks: [], routing: false };
const LOOPBACK: Readonly<Record<IpFamily, string>> = { 4: '127.0.0.1/32', 6: '::1/128' };
const ANY: Readonly<Record<IpFamily, string>> = { 4: '0.0.0.0/0', 6: '::/0' };
const ON_IP: Readonly<Record<IpFamily, string>> = { 4: '0.0.0.0', 6: '::' };
const FAMILY_NAME: Readonly<Record<IpFamily, string>> = { 4: 'IPv4', 6: 'IPv6' };

export function iptablesTool(family: IpFamily): string {
  return family === 4 ? 'iptables' : 'ip6tables';
}

function ipTool(family: IpFamily): string[] {
  return family === 4 ? ['ip'] : ['ip', '-6'];
}

export function formatMark(mark: number): string {
  return `0x${mark.toString(16)}`;
}

const COMMENT = ['-m', 'comment', '--comment', RULE_COMMENT];

function tcpPort(range: PortRange | number): string[] {
  return ['-p', 'tcp', '-m', 'tcp', '--dport', typeof range === 'number' ? String(range) : formatPortRange(range)];
}

function inboundExclusions(o: CaptureOptions): RuleSpec[] {
  return [
    { spec: [...tcpPort(o.adminPort), '-j', 'RETURN'], purpose: `inbound: the proxy's admin port ${o.adminPort} is never captured` },
    ...o.excludeInboundPorts.map((range) => ({
      spec: [...tcpPort(range), '-j', 'RETURN'],
      purpose: `inbound: port ${formatPortRange(range)} is not captured (--exclude-inbound-ports)`,
    })),
  ];
}

function outboundRules(o: CaptureOptions, family: IpFamily): RuleSpec[] {
  const lo = LOOPBACK[family];
  const rules: RuleSpec[] = [];
  if (o.mode === 'tproxy') {
    rules.push({
      spec: ['-m', 'mark', '--mark', formatMark(o.tproxyMark), '-j', 'RETURN'],
      purpose: `the proxy's connections from a client's address (mark ${formatMark(o.tproxyMark)}) are never captured`,
    });
  }
  rules.push(
    { spec: [...tcpPort(o.adminPort), '-j', 'RETURN'], purpose: `outbound: admin port ${o.adminPort} is never captured` },
    ...o.excludeOutboundPorts.map((range) => ({
      spec: [...tcpPort(range), '-j', 'RETURN'],
      purpose: `outbound: port ${formatPortRange(range)} is not captured (--exclude-outbound-ports)`,
    })),
  );
  const owners: Array<[string, number, string]> = [
    ['--uid-owner', o.proxyUid, 'UID'],
    ['--gid-owner', o.proxyGid, 'GID'],
  ];
  for (const [match, id, kind] of owners) {
    rules.push(
      {
        spec: ['!', '-d', lo, '-o', 'lo', '-m', 'owner', match, String(id), '-j', CHAINS.inRedirect],
        purpose: `loopback: the proxy (${kind} ${id}) calling this pod's own address goes to the inbound listener`,
      },
      {
        spec: ['-o', 'lo', '-m', 'owner', '!', match, String(id), '-j', 'RETURN'],
        purpose: `loopback: traffic over lo not from the proxy (${kind} ${id}) is not captured`,
      },
      { spec: ['-m', 'owner', match, String(id), '-j', 'RETURN'], purpose: `the proxy's own traffic (${kind} ${id}) is never captured` },
    );
  }
  rules.push({ spec: ['-d', lo, '-j', 'RETURN'], purpose: `outbound: ${lo} is never captured` });
  for (const dest of o.neverCaptured) {
    if (dest.host.family !== family) continue;
    rules.push({
      spec: ['-d', formatCidr(dest.host), ...tcpPort(dest.port), '-j', 'RETURN'],
      purpose: `outbound: the ${dest.what} at ${dest.host.address} port ${dest.port} is never captured`,
    });
  }
  for (const cidr of o.excludeOutboundCidrs) {
    if (cidr.family !== family) continue;
    rules.push({ spec: ['-d', formatCidr(cidr), '-j', 'RETURN'], purpose: `outbound: ${formatCidr(cidr)} is not captured (--exclude-outbound-cidrs)` });
  }
  if (o.includeOutboundCidrs === 'all') {
    rules.push({ spec: ['-j', CHAINS.outRedirect], purpose: 'outbound: everything else goes to the outbound listener' });
  } else {
    for (const cidr of o.includeOutboundCidrs) {
      if (cidr.family !== family) continue;
      rules.push({ spec: ['-d', formatCidr(cidr), '-j', CHAINS.outRedirect], purpose: `outbound: ${formatCidr(cidr)} goes to the outbound listener (--include-outbound-cidrs)` });
    }
  }
  return rules;
}

function familyDesign(o: CaptureOptions, family: IpFamily): FamilyDesign {
  const mark = formatMark(o.tproxyMark);
  const redirect = (port: number, where: string): RuleSpec => ({
    spec: ['-p', 'tcp', '-j', 'REDIRECT', '--to-ports', String(port)],
    purpose: `send to the ${where} listener on port ${port}`,
  });
  const nat: ChainDesign[] = [
    { table: 'nat', name: CHAINS.inRedirect, rules: [redirect(o.inboundPort, 'inbound')] },
    { table: 'nat', name: CHAINS.outbound, rules: outboundRules(o, family) },
    { table: 'nat', name: CHAINS.outRedirect, rules: [redirect(o.outboundPort, 'outbound')] },
  ];
  const outboundHook: HookDesign = {
    table: 'nat',
    chain: 'OUTPUT',
    spec: ['-p', 'tcp', ...COMMENT, '-j', CHAINS.outbound],
    purpose: 'outbound TCP goes through TRACEMESH_OUTBOUND',
  };
  if (o.mode === 'redirect') {
    const inbound: ChainDesign = {
      table: 'nat',
      name: CHAINS.inbound,
      rules: [...inboundExclusions(o), { spec: ['-p', 'tcp', '-j', CHAINS.inRedirect], purpose: 'inbound: everything else goes to the inbound listener' }],
    };
    return {
      chains: [inbound, ...nat],
      hooks: [
        { table: 'nat', chain: 'PREROUTING', spec: ['-p', 'tcp', ...COMMENT, '-j', CHAINS.inbound], purpose: 'inbound TCP goes through TRACEMESH_INBOUND' },
        outboundHook,
      ],
      routing: false,
    };
  }
  const mangle: ChainDesign[] = [
    {
      table: 'mangle',
      name: CHAINS.inbound,
      rules: [
        {
          spec: ['-p', 'tcp', '-m', 'mark', '--mark', mark, '-j', 'RETURN'],
          purpose: `inbound: packets marked ${mark} (the proxy's connections from a client's address, and replies to them) are not captured again`,
        },
        ...inboundExclusions(o),
        {
          spec: ['-p', 'tcp', '-m', 'conntrack', '--ctstate', 'RELATED,ESTABLISHED', '-j', CHAINS.divert],
          purpose: 'inbound: packets of established connections are marked and delivered locally',
        },
        { spec: ['-p', 'tcp', '-j', CHAINS.tproxy], purpose: 'inbound: new connections go to TPROXY' },
      ],
    },
    {
      table: 'mangle',
      name: CHAINS.divert,
      rules: [
        { spec: ['-j', 'MARK', '--set-xmark', `${mark}/0xffffffff`], purpose: `mark diverted packets ${mark} (routed by table ${o.routeTable})` },
        { spec: ['-j', 'ACCEPT'], purpose: 'diverted packets are accepted' },
      ],
    },
    {
      table: 'mangle',
      name: CHAINS.tproxy,
      rules: [
        {
          spec: ['!', '-d', LOOPBACK[family], '-p', 'tcp', '-j', 'TPROXY', '--on-port', String(o.inboundPort), '--on-ip', ON_IP[family], '--tproxy-mark', `${mark}/0xffffffff`],
          purpose: `inbound: TPROXY to the inbound listener on port ${o.inboundPort}, keeping the client's address`,
        },
      ],
    },
  ];
  return {
    chains: [...mangle, ...nat],
    hooks: [
      // Before the jump: TRACEMESH_INBOUND ends the chain for what it diverts or TPROXYs (see above).
      {
        table: 'mangle',
        chain: 'PREROUTING',
        spec: ['-p', 'tcp', '-m', 'mark', '--mark', mark, ...COMMENT, '-j', 'CONNMARK', '--save-mark', '--nfmask', '0xffffffff', '--ctmask', '0xffffffff'],
        purpose: `keep the mark ${mark} of the proxy's connections from a client's address as their connection mark`,
      },
      { table: 'mangle', chain: 'PREROUTING', spec: ['-p', 'tcp', ...COMMENT, '-j', CHAINS.inbound], purpose: 'inbound TCP goes through TRACEMESH_INBOUND (mangle)' },
      {
        table: 'mangle',
        chain: 'OUTPUT',
        spec: ['-p', 'tcp', '-m', 'connmark', '--mark', mark, ...COMMENT, '-j', 'CONNMARK', '--restore-mark', '--nfmask', '0xffffffff', '--ctmask', '0xffffffff'],
        purpose: `the app's replies on a connection marked ${mark} get the mark back, so they route to the proxy's socket`,
      },
      outboundHook,
    ],
    routing: true,
  };
}

const hookKey = (chain: string, spec: readonly string[]): string => `${chain} ${spec.join(' ')}`;

/** Commands for one family: stale parts of ours out, wanted chains refilled, routing, missing hooks in. */
function planFamily(o: CaptureOptions, family: IpFamily, design: FamilyDesign, current: FamilyState): RuleCommand[] {
  const tool = iptablesTool(family);
  const steps: RuleCommand[] = [];
  const listings = { nat: parseTableListing(current.rules.nat), mangle: parseTableListing(current.rules.mangle) };
  const present = new Set<string>();

  // Hooks first: a chain can only be deleted once nothing jumps to it. A wanted hook listed
  // twice is kept once; wanted hooks listed in another order than designed (in one built-in
  // chain) are all removed and added again, since their order is part of what they do.
  for (const table of CAPTURE_TABLES) {
    const designed = design.hooks.filter((h) => h.table === table).map((h) => hookKey(h.chain, h.spec));
    const ours = listings[table].rules.filter(isOurHookRule);
    const kept = new Set(ours.map((rule) => hookKey(rule.chain, rule.spec)).filter((key) => designed.includes(key)));
    for (const chain of new Set(ours.map((rule) => rule.chain))) {
      const listed = [...kept].filter((key) => key.startsWith(`${chain} `));
      const inOrder = designed.filter((key) => kept.has(key) && key.startsWith(`${chain} `));
      if (listed.join('\n') !== inOrder.join('\n')) for (const key of listed) kept.delete(key);
    }
    for (const rule of ours) {
      const key = `${table} ${hookKey(rule.chain, rule.spec)}`;
      if (kept.has(hookKey(rule.chain, rule.spec)) && !present.has(key)) {
        present.add(key);
        continue;
      }
      steps.push({ argv: [tool, '-t', table, '-D', rule.chain, ...rule.spec], purpose: `remove a tracemesh rule from ${table} ${rule.chain} that is not wanted` });
    }
  }
  // Every existing chain of ours is flushed before any is deleted: they jump to each other.
  const stale: Array<{ table: CaptureTable; name: string }> = [];
  for (const table of CAPTURE_TABLES) {
    for (const name of listings[table].chains) {
      if (!isOurChain(name)) continue;
      const keep = design.chains.some((c) => c.table === table && c.name === name);
      steps.push({ argv: [tool, '-t', table, '-F', name], purpose: keep ? `empty ${table} ${name} to fill it again` : `empty ${table} ${name}, which is not wanted` });
      if (!keep) stale.push({ table, name });
    }
  }
  for (const { table, name } of stale) steps.push({ argv: [tool, '-t', table, '-X', name], purpose: `delete ${table} ${name}, which is not wanted` });
  for (const chain of design.chains) {
    if (!listings[chain.table].chains.includes(chain.name)) {
      steps.push({ argv: [tool, '-t', chain.table, '-N', chain.name], purpose: `create ${chain.table} ${chain.name}` });
    }
  }
  for (const chain of design.chains) {
    for (const rule of chain.rules) steps.push({ argv: [tool, '-t', chain.table, '-A', chain.name, ...rule.spec], purpose: rule.purpose });
  }

  steps.push(...planRouting(o, family, design.routing, current));

  for (const hook of design.hooks) {
    if (present.has(`${hook.table} ${hookKey(hook.chain, hook.spec)}`)) continue;
    steps.push({ argv: [tool, '-t', hook.table, '-A', hook.chain, ...hook.spec], purpose: hook.purpose });
  }
  for (const table of CAPTURE_TABLES) {
    if (leftEmpty(listings[table], design, table)) {
      // A table we emptied is deleted (what iptables-nft-restore does with a table section
      // and nothing in it), so after a cleanup iptables-save reads as it did before the
      // apply created the table. Only when nothing else is in it and every policy is ACCEPT.
      steps.push({ argv: [`${tool}-restore`], stdin: [`*${table}`, 'COMMIT'], purpose: `delete the ${table} table, which only held tracemesh rules` });
    }
  }
  return steps;
}

/** True when `listing` held something of ours, nothing else, and nothing of ours is wanted in it. */
function leftEmpty(listing: TableListing, design: FamilyDesign, table: CaptureTable): boolean {
  if (design.chains.some((c) => c.table === table) || design.hooks.some((h) => h.table === table)) return false;
  const ours = listing.chains.some(isOurChain) || listing.rules.some(isOurHookRule);
  const others = listing.chains.some((c) => !isOurChain(c)) || listing.rules.some((r) => !isOurChain(r.chain) && !isOurHookRule(r));
  return ours && !others && listing.strictPolicies.length === 0;
}

function planRouting(o: CaptureOptions, family: IpFamily, wanted: boolean, current: FamilyState): RuleCommand[] {
  const ip = ipTool(family);
  const table = String(o.routeTable);
  const mark = formatMark(o.tproxyMark);
  const wantedWords = ['from', 'all', 'fwmark', mark, 'lookup', table].join(' ');
  const steps: RuleCommand[] = [];
  let ruleInPlace = false;
  for (const rule of parseIpRules(current.ipRules)) {
    if (!isOurIpRule(rule, o.routeTable)) continue;
    // Flags such as [detached] are state, not part of the selector.
    const words = rule.words.filter((w) => !w.startsWith('['));
    if (wanted && !ruleInPlace && words.join(' ') === wantedWords) {
      ruleInPlace = true;
      continue;
    }
    steps.push({ argv: [...ip, 'rule', 'del', 'priority', String(rule.priority), ...words], purpose: `remove a policy rule looking up table ${table} that is not wanted` });
  }
  if (!wanted) {
    if (current.routes.some((line) => line.trim() !== '')) {
      steps.push({ argv: [...ip, 'route', 'flush', 'table', table], purpose: `empty route table ${table}` });
    }
    return steps;
  }
  steps.push({
    argv: [...ip, 'route', 'replace', 'local', ANY[family], 'dev', 'lo', 'table', table],
    purpose: `TPROXY: table ${table} delivers marked ${FAMILY_NAME[family]} packets locally`,
  });
  if (!ruleInPlace) {
    steps.push({ argv: [...ip, 'rule', 'add', 'fwmark', mark, 'lookup', table], purpose: `TPROXY: packets marked ${mark} use route table ${table}` });
  }
  return steps;
}

/**
 * The commands that turn `state` into the wanted rules. Against FRESH_STATE this is
 * what `--dry-run` prints; run twice, the second plan re-fills our chains and adds nothing else.
 */
export function planApply(o: CaptureOptions, state: CaptureState): RuleCommand[] {
  const steps: RuleCommand[] = [];
  for (const family of [4, 6] as const) {
    const current = state[family];
    const wanted = o.families.includes(family);
    if (current === undefined && !wanted) continue;
    steps.push(...planFamily(o, family, wanted ? familyDesign(o, family) : NO_DESIGN, current ?? EMPTY_FAMILY_STATE));
  }
  return steps;
}

/** The commands that remove everything of ours in `state` (and nothing else); none when there is nothing. */
export function planCleanup(state: CaptureState, routeTable: number): RuleCommand[] {
  return planApply({ ...NOTHING_WANTED, routeTable }, state);
}

const NOTHING_WANTED: CaptureOptions = {
  mode: 'redirect',
  families: [],
  inboundPort: CAPTURE_DEFAULTS.inboundPort,
  outboundPort: CAPTURE_DEFAULTS.outboundPort,
  adminPort: CAPTURE_DEFAULTS.adminPort,
  proxyUid: CAPTURE_DEFAULTS.proxyUid,
  proxyGid: CAPTURE_DEFAULTS.proxyUid,
  excludeInboundPorts: [],
  excludeOutboundPorts: [],
  excludeOutboundCidrs: [],
  includeOutboundCidrs: 'all',
  neverCaptured: [],
  tproxyMark: CAPTURE_DEFAULTS.tproxyMark,
  routeTable: CAPTURE_DEFAULTS.routeTable,
};

const SAFE_WORD = /^[A-Za-z0-9_@%+=:,./-]+$/;

function quote(word: string): string {
  return word === '!' || SAFE_WORD.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/** A command as one shell line: words quoted only where a shell would read them otherwise (a lone `!` is literal); stdin comes from printf. */
export function formatCommand(command: Pick<RuleCommand, 'argv' | 'stdin'>): string {
  const line = command.argv.map(quote).join(' ');
  if (command.stdin === undefined) return line;
  return `printf '%s\\n' ${command.stdin.map(quote).join(' ')} | ${line}`;
}
