import { lookup } from 'node:dns/promises';
import net from 'node:net';
import type { Writable } from 'node:stream';
import { applyCapture, cleanupCapture, findTools, namespaceHasIpv6, planCleanupNow } from '../../../proxy/capture/iptables-apply.js';
import {
  CAPTURE_DEFAULTS,
  formatCommand,
  planApply,
  type CaptureMode,
  type CaptureOptions,
  type NeverCaptured,
  type RuleCommand,
} from '../../../proxy/capture/iptables-rules.js';
import { FRESH_STATE } from '../../../proxy/capture/iptables-state.js';
import { hostCidr, parseCidrList, parsePortList, type Cidr, type IpFamily, type Parsed } from '../../../proxy/capture/iptables-values.js';
import { errorMessage, TracemeshError } from '../../lib/errors.js';
import type { Command, ParsedArgs } from '../command.js';
import { booleanFlag, portFlag, stringFlag } from '../flag-values.js';

const MAX_ID = 4_294_967_294;
const RESERVED_TABLES: ReadonlyMap<number, string> = new Map([
  [253, 'default'],
  [254, 'main'],
  [255, 'local'],
]);

function bad(flag: string, message: string): TracemeshError {
  return new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--${flag}: ${message}`);
}

function parsedFlag<T>(flag: string, parsed: Parsed<T>): T {
  if (!parsed.ok) throw bad(flag, parsed.problem);
  return parsed.value;
}

function modeFlag(args: ParsedArgs): CaptureMode {
  const text = stringFlag(args, 'mode') ?? 'redirect';
  if (text !== 'redirect' && text !== 'tproxy') throw bad('mode', `'${text}' is not redirect or tproxy`);
  return text;
}

function listenPortFlag(args: ParsedArgs, flag: string, fallback: number): number {
  const port = portFlag(args, flag, fallback);
  if (port === 0) throw bad(flag, "'0' is not a port a proxy listens on");
  return port;
}

/** A whole number in [min, max], written in decimal or (when `hex`) as 0x…. */
function numberFlag(args: ParsedArgs, flag: string, fallback: number, min: number, max: number, what: string): number {
  const text = stringFlag(args, flag);
  if (text === undefined) return fallback;
  const value = /^\d{1,10}$/.test(text) ? Number(text) : /^0x[0-9a-f]{1,8}$/i.test(text) ? parseInt(text, 16) : NaN;
  if (!(value >= min && value <= max)) throw bad(flag, `'${text}' is not ${what}`);
  return value;
}

function ipv6Flag(args: ParsedArgs): 'auto' | 'on' | 'off' {
  const text = stringFlag(args, 'ipv6') ?? 'auto';
  if (text !== 'auto' && text !== 'on' && text !== 'off') throw bad('ipv6', `'${text}' is not auto, on or off`);
  return text;
}

/** `HOST:PORT`, `[V6]:PORT` or `http(s)://HOST:PORT` → host and port. */
function hostPort(flag: string, text: string, defaultPortFor: (protocol: string) => number | undefined): { host: string; port: number } {
  const withScheme = /^[a-z][a-z0-9+.-]*:\/\//i.test(text) ? text : `tcp://${text}`;
  let url: URL;
  try {
    url = new URL(withScheme);
  } catch {
    throw bad(flag, `'${text}' is not HOST:PORT or a URL`);
  }
  const port = url.port === '' ? defaultPortFor(url.protocol) : Number(url.port);
  if (url.hostname === '' || port === undefined || port === 0) throw bad(flag, `'${text}' is not HOST:PORT or a URL with a host and port`);
  return { host: url.hostname.replace(/^\[(.*)\]$/, '$1'), port };
}

/** Every address `host` resolves to (an address resolves to itself). */
async function resolveHost(flag: string, host: string): Promise<Cidr[]> {
  if (net.isIP(host) !== 0) return [hostCidr(host) as Cidr];
  try {
    const found = await lookup(host, { all: true, verbatim: true });
    return found.map((entry) => hostCidr(entry.address)).filter((cidr): cidr is Cidr => cidr !== undefined);
  } catch (err) {
    throw bad(flag, `cannot resolve '${host}' (${(err as { code?: string }).code ?? errorMessage(err)})`);
  }
}

/** The collector and the control plane: the proxy reaches them, the app's traffic to them is never captured. */
async function neverCapturedFlags(args: ParsedArgs): Promise<NeverCaptured[]> {
  const found: NeverCaptured[] = [];
  const collector = stringFlag(args, 'collector');
  if (collector !== undefined && collector !== 'none') {
    const { host, port } = hostPort('collector', collector, (protocol) => (protocol === 'https:' ? 443 : protocol === 'http:' ? 80 : undefined));
    for (const cidr of await resolveHost('collector', host)) found.push({ what: 'collector', host: cidr, port });
  }
  const controlPlane = stringFlag(args, 'control-plane');
  if (controlPlane !== undefined) {
    if (!/^https?:\/\//i.test(controlPlane)) throw bad('control-plane', `'${controlPlane}' is not an http:// or https:// URL`);
    const { host, port } = hostPort('control-plane', controlPlane, (protocol) => (protocol === 'https:' ? 443 : 80));
    for (const cidr of await resolveHost('control-plane', host)) found.push({ what: 'control plane', host: cidr, port });
  }
  return found;
}

/** Checks every flag of an apply; `families` is decided by the caller (it may look at the namespace). */
export async function captureOptionsFromFlags(args: ParsedArgs, families: readonly IpFamily[]): Promise<CaptureOptions> {
  const inboundPort = listenPortFlag(args, 'inbound-port', CAPTURE_DEFAULTS.inboundPort);
  const outboundPort = listenPortFlag(args, 'outbound-port', CAPTURE_DEFAULTS.outboundPort);
  const adminPort = listenPortFlag(args, 'admin-port', CAPTURE_DEFAULTS.adminPort);
  if (new Set([inboundPort, outboundPort, adminPort]).size !== 3) {
    throw bad('inbound-port', `the inbound (${inboundPort}), outbound (${outboundPort}) and admin (${adminPort}) ports must differ`);
  }
  const proxyUid = numberFlag(args, 'proxy-uid', CAPTURE_DEFAULTS.proxyUid, 1, MAX_ID, 'a user id other than root (1-4294967294)');
  const include = stringFlag(args, 'include-outbound-cidrs') ?? '*';
  return {
    mode: modeFlag(args),
    families,
    inboundPort,
    outboundPort,
    adminPort,
    proxyUid,
    proxyGid: numberFlag(args, 'proxy-gid', proxyUid, 1, MAX_ID, 'a group id other than root (1-4294967294)'),
    excludeInboundPorts: parsedFlag('exclude-inbound-ports', parsePortList(stringFlag(args, 'exclude-inbound-ports') ?? '')),
    excludeOutboundPorts: parsedFlag('exclude-outbound-ports', parsePortList(stringFlag(args, 'exclude-outbound-ports') ?? '')),
    excludeOutboundCidrs: parsedFlag('exclude-outbound-cidrs', parseCidrList(stringFlag(args, 'exclude-outbound-cidrs') ?? '')),
    includeOutboundCidrs: include.trim() === '*' ? 'all' : parsedFlag('include-outbound-cidrs', parseCidrList(include)),
    neverCaptured: await neverCapturedFlags(args),
    tproxyMark: numberFlag(args, 'tproxy-mark', CAPTURE_DEFAULTS.tproxyMark, 1, 0xffff_ffff, 'a mark (1-0xffffffff)'),
    routeTable: routeTableFlag(args),
  };
}

function routeTableFlag(args: ParsedArgs): number {
  const table = numberFlag(args, 'route-table', CAPTURE_DEFAULTS.routeTable, 1, 0xffff_ffff, 'a route table number (1-4294967295)');
  const reserved = RESERVED_TABLES.get(table);
  if (reserved !== undefined) throw bad('route-table', `'${table}' is the kernel's '${reserved}' table; pick another (default ${CAPTURE_DEFAULTS.routeTable})`);
  return table;
}

function printCommands(steps: readonly RuleCommand[], out: Writable): void {
  out.write(steps.map((step) => `${formatCommand(step)}\n`).join(''));
}

export const iptablesCommand: Command = {
  name: 'iptables',
  summary: "Install, print (--dry-run) or remove (--cleanup) the rules that send a pod's TCP traffic through its sidecar",
  usage:
    'tracemesh iptables [--mode redirect|tproxy] [--proxy-uid 1337] [--exclude-inbound-ports 22,8080-8090] ' +
    '[--exclude-outbound-ports LIST] [--exclude-outbound-cidrs LIST] [--include-outbound-cidrs *|LIST] ' +
    '[--collector HOST:PORT] [--control-plane URL] [--ipv6 auto|on|off] [--dry-run] [--cleanup]',
  flags: {
    mode: { type: 'string', valueName: 'MODE', description: 'redirect (nat REDIRECT) or tproxy (mangle TPROXY for inbound, keeps client addresses)', default: 'redirect' },
    'inbound-port': { type: 'string', valueName: 'PORT', description: 'the proxy\'s inbound listener', default: '15006' },
    'outbound-port': { type: 'string', valueName: 'PORT', description: 'the proxy\'s outbound listener', default: '15001' },
    'admin-port': { type: 'string', valueName: 'PORT', description: 'the proxy\'s admin port, never captured either way', default: '15000' },
    'proxy-uid': { type: 'string', valueName: 'UID', description: 'the proxy runs as this user; its traffic is never captured', default: '1337' },
    'proxy-gid': { type: 'string', valueName: 'GID', description: 'the proxy runs with this group; its traffic is never captured (default: the UID)' },
    'exclude-inbound-ports': { type: 'string', valueName: 'LIST', description: 'inbound ports not captured, e.g. 22,8080-8090' },
    'exclude-outbound-ports': { type: 'string', valueName: 'LIST', description: 'outbound destination ports not captured' },
    'exclude-outbound-cidrs': { type: 'string', valueName: 'LIST', description: 'outbound destinations not captured, e.g. 10.0.0.0/8,fd00::/8' },
    'include-outbound-cidrs': { type: 'string', valueName: 'LIST', description: "outbound destinations captured: '*' for all, a list for only those", default: '*' },
    collector: { type: 'string', valueName: 'HOST:PORT', description: "the collector the proxy exports to; that address and port are never captured ('none' for no collector)" },
    'control-plane': { type: 'string', valueName: 'URL', description: 'the control plane the proxy talks to; its address and port are never captured' },
    ipv6: { type: 'string', valueName: 'WHEN', description: 'ip6tables rules too: auto (when an interface that is up has a global or ULA IPv6 address), on, off', default: 'auto' },
    'tproxy-mark': { type: 'string', valueName: 'MARK', description: 'fwmark for TPROXY policy routing; also the SO_MARK of the proxy\'s connections from client addresses, which the rules exempt and route back', default: '0x539' },
    'route-table': { type: 'string', valueName: 'N', description: 'route table for TPROXY (local default dev lo); every ip rule looking it up is ours', default: '133' },
    'dry-run': { type: 'boolean', description: 'print the commands, one per line, instead of running them: an apply as planned for a namespace without our rules; with --cleanup, what would be removed now' },
    cleanup: { type: 'boolean', description: 'remove our chains, our rules in built-in chains and our ip rules and routes; nothing else' },
  },
  examples: [
    'ip netns exec pod-a tracemesh iptables --exclude-inbound-ports 22 --collector collector:4317',
    'tracemesh iptables --mode tproxy --dry-run',
    'tracemesh iptables --cleanup',
  ],
  async run(args, io) {
    const dryRun = booleanFlag(args, 'dry-run');
    if (booleanFlag(args, 'cleanup')) {
      const routeTable = routeTableFlag(args);
      if (dryRun) {
        printCommands(await planCleanupNow(routeTable), io.stdout);
        return 0;
      }
      const { ran } = await cleanupCapture(routeTable);
      io.stdout.write(
        ran.length === 0
          ? 'tracemesh iptables: nothing to remove (no tracemesh chains, rules or routes in this namespace)\n'
          : `tracemesh iptables: removed the tracemesh capture rules (${ran.length} commands run)\n`,
      );
      return 0;
    }
    const ipv6 = ipv6Flag(args);
    // Every flag is checked before the namespace is looked at, so a typo never waits on `ip`.
    const checked = await captureOptionsFromFlags(args, [4]);
    const withIpv6 = ipv6 === 'on' || (ipv6 === 'auto' && (await namespaceHasIpv6(findTools())));
    const families: IpFamily[] = withIpv6 ? [4, 6] : [4];
    const options: CaptureOptions = { ...checked, families };
    if (dryRun) {
      printCommands(planApply(options, FRESH_STATE), io.stdout);
      return 0;
    }
    const { ran } = await applyCapture(options);
    io.stdout.write(
      `tracemesh iptables: ${options.mode === 'tproxy' ? 'TPROXY' : 'REDIRECT'} capture in place for ${families.map((f) => `IPv${f}`).join(' and ')}: ` +
        `inbound TCP → :${options.inboundPort}, outbound TCP → :${options.outboundPort}, ` +
        `traffic of UID ${options.proxyUid} / GID ${options.proxyGid} not captured (${ran.length} commands run)\n`,
    );
    return 0;
  },
};
