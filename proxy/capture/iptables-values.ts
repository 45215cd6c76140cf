/**
 * The values capture rules are made of (port ranges, CIDRs), parsed from text
 * and written back in the exact form iptables prints them, so a rule we build
 * reads the same in `iptables -S` as in `--dry-run`.
 */
import net from 'node:net';

export type IpFamily = 4 | 6;

/** One port (`first === last`) or an inclusive range. */
export interface PortRange {
  first: number;
  last: number;
}

/** A network in canonical form: host bits cleared, IPv6 compressed as inet_ntop does. */
export interface Cidr {
  family: IpFamily;
  address: string;
  prefix: number;
}

/** A parse result: the value, or what was wrong with the text (the caller names the flag). */
export type Parsed<T> = { ok: true; value: T } | { ok: false; problem: string };

const PORT_ITEM = /^(\d{1,5})(?:[-:](\d{1,5}))?$/;

/** `22,8080-8090,9000:9010` → ranges, in order, duplicates dropped. Empty text is an empty list. */
export function parsePortList(text: string): Parsed<PortRange[]> {
  const ranges: PortRange[] = [];
  if (text.trim() === '') return { ok: true, value: ranges };
  const seen = new Set<string>();
  for (const raw of text.split(',')) {
    const item = raw.trim();
    const match = PORT_ITEM.exec(item);
    const first = Number(match?.[1]);
    const last = match?.[2] === undefined ? first : Number(match[2]);
    if (match === null || first < 1 || last > 65535 || first > last) {
      return { ok: false, problem: `'${item}' is not a port (1-65535) or a range such as 8080-8090` };
    }
    const key = `${first}:${last}`;
    if (!seen.has(key)) ranges.push({ first, last });
    seen.add(key);
  }
  return { ok: true, value: ranges };
}

/** The `--dport` argument: `80` or `8080:8090`. */
export function formatPortRange(range: PortRange): string {
  return range.first === range.last ? String(range.first) : `${range.first}:${range.last}`;
}

function ipv4Bytes(text: string): number[] {
  return text.split('.').map(Number);
}

/** Eight 16-bit groups of an address net.isIPv6 accepted (zone ids are refused earlier). */
function ipv6Groups(text: string): number[] {
  let head = text;
  const tail: number[] = [];
  const lastColon = text.lastIndexOf(':');
  if (text.includes('.')) {
    const [a, b, c, d] = ipv4Bytes(text.slice(lastColon + 1)) as [number, number, number, number];
    tail.push((a << 8) | b, (c << 8) | d);
    head = text.slice(0, lastColon + 1);
    if (head.endsWith(':') && !head.endsWith('::')) head = head.slice(0, -1);
  }
  const [left = '', right] = head.split('::');
  const parse = (part: string): number[] => (part === '' ? [] : part.split(':').map((g) => parseInt(g, 16)));
  const leftGroups = parse(left);
  if (right === undefined) return [...leftGroups, ...tail];
  const rightGroups = [...parse(right), ...tail];
  const zeros = new Array<number>(8 - leftGroups.length - rightGroups.length).fill(0);
  return [...leftGroups, ...zeros, ...rightGroups];
}

/** inet_ntop's form (glibc): longest run of two or more zero groups as `::`, the first on a tie. */
function formatIpv6(groups: readonly number[]): string {
  let bestStart = -1;
  let bestLength = 0;
  for (let i = 0; i < 8; ) {
    if (groups[i] !== 0) {
      i += 1;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j += 1;
    if (j - i > bestLength) {
      bestStart = i;
      bestLength = j - i;
    }
    i = j;
  }
  if (bestLength < 2) bestStart = -1;
  // glibc writes IPv4-compatible and IPv4-mapped addresses with a dotted tail.
  if (bestStart === 0 && (bestLength === 6 || (bestLength === 5 && groups[5] === 0xffff))) {
    const g6 = groups[6] as number;
    const g7 = groups[7] as number;
    const dotted = `${g6 >> 8}.${g6 & 0xff}.${g7 >> 8}.${g7 & 0xff}`;
    return bestLength === 6 ? `::${dotted}` : `::ffff:${dotted}`;
  }
  const hex = groups.map((g) => g.toString(16));
  if (bestStart === -1) return hex.join(':');
  return `${hex.slice(0, bestStart).join(':')}::${hex.slice(bestStart + bestLength).join(':')}`;
}

function maskBits(values: number[], bitsPerValue: number, prefix: number): number[] {
  return values.map((value, index) => {
    const keep = Math.max(0, Math.min(bitsPerValue, prefix - index * bitsPerValue));
    const mask = keep === 0 ? 0 : ((0xffff_ffff << (bitsPerValue - keep)) >>> 0) & ((1 << bitsPerValue) - 1);
    return value & mask;
  });
}

/** `10.1.0.0/16`, `fd00::/8`, or a bare address (a /32 or /128). Host bits are cleared, as iptables does. */
export function parseCidr(text: string): Parsed<Cidr> {
  const [address = '', prefixText, extra] = text.split('/');
  const family = net.isIPv4(address) ? 4 : net.isIPv6(address) && !address.includes('%') ? 6 : 0;
  if (family === 0 || extra !== undefined) {
    return { ok: false, problem: `'${text}' is not an IPv4 or IPv6 address or CIDR (e.g. 10.0.0.0/8, fd00::/8)` };
  }
  const bits = family === 4 ? 32 : 128;
  const prefix = prefixText === undefined ? bits : /^\d{1,3}$/.test(prefixText) ? Number(prefixText) : NaN;
  if (!(prefix >= 0 && prefix <= bits)) {
    return { ok: false, problem: `'${text}' has a prefix length outside 0-${bits}` };
  }
  if (family === 4) {
    return { ok: true, value: { family, prefix, address: maskBits(ipv4Bytes(address), 8, prefix).join('.') } };
  }
  return { ok: true, value: { family, prefix, address: formatIpv6(maskBits(ipv6Groups(address), 16, prefix)) } };
}

/** A comma-separated CIDR list; empty text is an empty list. */
export function parseCidrList(text: string): Parsed<Cidr[]> {
  const cidrs: Cidr[] = [];
  if (text.trim() === '') return { ok: true, value: cidrs };
  for (const raw of text.split(',')) {
    const parsed = parseCidr(raw.trim());
    if (!parsed.ok) return parsed;
    if (!cidrs.some((c) => c.address === parsed.value.address && c.prefix === parsed.value.prefix)) cidrs.push(parsed.value);
  }
  return { ok: true, value: cidrs };
}

export function formatCidr(cidr: Cidr): string {
  return `${cidr.address}/${cidr.prefix}`;
}

/** An address (as the resolver returns it) as a single-host CIDR. */
export function hostCidr(address: string): Cidr | undefined {
  const parsed = parseCidr(address);
  return parsed.ok ? parsed.value : undefined;
}
