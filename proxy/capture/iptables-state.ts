/**
 * What a network namespace holds right now, as the tools print it
 * (`iptables -t T -S`, `ip rule show`, `ip route show table N`), and how to
 * tell our part of it from everyone else's: chains named TRACEMESH_*, and rules
 * in built-in chains that jump to one of them or carry the comment `tracemesh`.
 */
import type { IpFamily } from './iptables-values.js';

export type CaptureTable = 'nat' | 'mangle';
export const CAPTURE_TABLES: readonly CaptureTable[] = ['nat', 'mangle'];

/** Every chain of ours starts with this; the prefix is reserved. */
export const CHAIN_PREFIX = 'TRACEMESH_';
/** Carried by each rule we add to a built-in chain, so cleanup finds it whatever options made it. */
export const RULE_COMMENT = 'tracemesh';

const BUILTIN_CHAINS: ReadonlySet<string> = new Set(['PREROUTING', 'INPUT', 'FORWARD', 'OUTPUT', 'POSTROUTING']);

export interface FamilyState {
  /** `iptables -t <table> -S` (or ip6tables) lines, per table. */
  rules: Readonly<Record<CaptureTable, readonly string[]>>;
  /** `ip rule show` (or `ip -6 rule show`) lines. */
  ipRules: readonly string[];
  /** Routes in our table (`ip route show table all`, filtered by routesInTable). */
  routes: readonly string[];
}

/** A family is absent when its tool is not installed: nothing of ours can be there. */
export type CaptureState = { readonly [F in IpFamily]?: FamilyState };

export const EMPTY_FAMILY_STATE: FamilyState = { rules: { nat: [], mangle: [] }, ipRules: [], routes: [] };

/** A namespace without any rules: what `--dry-run` plans against. */
export const FRESH_STATE: CaptureState = { 4: EMPTY_FAMILY_STATE, 6: EMPTY_FAMILY_STATE };

/** A rule as `-S` lists it: the chain and the words after it. */
export interface ListedRule {
  chain: string;
  spec: string[];
}

export interface TableListing {
  /** User-defined chains (`-N`), in listing order. */
  chains: string[];
  rules: ListedRule[];
  /** Built-in chains whose policy (`-P`) is not ACCEPT. */
  strictPolicies: string[];
}

/** Splits a `-S` line into words the way a shell would: iptables quotes comments with spaces. */
export function splitListedLine(line: string): string[] {
  const words: string[] = [];
  let word = '';
  let inWord = false;
  let quoted = false;
  for (let i = 0; i < line.length; i += 1) {
    const ch = line[i] as string;
    if (quoted) {
      if (ch === '\\' && i + 1 < line.length) {
        i += 1;
        word += line[i];
      } else if (ch === '"') {
        quoted = false;
      } else {
        word += ch;
      }
    } else if (ch === '"') {
      quoted = true;
      inWord = true;
    } else if (ch === ' ' || ch === '\t') {
      if (inWord) words.push(word);
      word = '';
      inWord = false;
    } else {
      word += ch;
      inWord = true;
    }
  }
  if (inWord) words.push(word);
  return words;
}

export function parseTableListing(lines: readonly string[]): TableListing {
  const listing: TableListing = { chains: [], rules: [], strictPolicies: [] };
  for (const line of lines) {
    const [verb, chain, ...spec] = splitListedLine(line);
    if (chain === undefined) continue;
    if (verb === '-N') listing.chains.push(chain);
    else if (verb === '-A') listing.rules.push({ chain, spec });
    else if (verb === '-P' && spec[0] !== 'ACCEPT') listing.strictPolicies.push(chain);
  }
  return listing;
}

export function isBuiltinChain(chain: string): boolean {
  return BUILTIN_CHAINS.has(chain);
}

export function isOurChain(chain: string): boolean {
  return chain.startsWith(CHAIN_PREFIX);
}

/** A rule of ours in a built-in chain: it jumps to one of our chains or carries our comment. */
export function isOurHookRule(rule: ListedRule): boolean {
  if (!isBuiltinChain(rule.chain)) return false;
  for (let i = 0; i + 1 < rule.spec.length; i += 1) {
    const word = rule.spec[i];
    const next = rule.spec[i + 1] as string;
    if ((word === '-j' || word === '-g') && isOurChain(next)) return true;
    if (word === '--comment' && next === RULE_COMMENT) return true;
  }
  return false;
}

/** `32765:\tfrom all fwmark 0x539 lookup 133` → priority and the selector/action words. */
export interface ListedIpRule {
  priority: number;
  words: string[];
}

export function parseIpRules(lines: readonly string[]): ListedIpRule[] {
  const rules: ListedIpRule[] = [];
  for (const line of lines) {
    const match = /^(\d+):\s+(.*)$/.exec(line.trim());
    if (match === null) continue;
    rules.push({ priority: Number(match[1]), words: (match[2] as string).split(/\s+/) });
  }
  return rules;
}

/** Every rule that looks up our route table is ours, whatever mark selects it. */
export function isOurIpRule(rule: ListedIpRule, routeTable: number): boolean {
  const at = rule.words.indexOf('lookup');
  return at !== -1 && rule.words[at + 1] === String(routeTable);
}

/** Routes of `ip route show table all` that sit in our table. */
export function routesInTable(lines: readonly string[], routeTable: number): string[] {
  return lines
    .map((line) => line.trim())
    .filter((line) => {
      const words = line.split(/\s+/);
      const at = words.indexOf('table');
      return at !== -1 && words[at + 1] === String(routeTable);
    });
}

/** Everything of ours in `state`, one phrase per item, for a message saying what was left behind. */
export function describeOurs(state: CaptureState, routeTable: number): string[] {
  const items: string[] = [];
  for (const family of [4, 6] as const) {
    const current = state[family];
    if (current === undefined) continue;
    const name = family === 4 ? 'IPv4' : 'IPv6';
    for (const table of CAPTURE_TABLES) {
      const listing = parseTableListing(current.rules[table]);
      const chains = listing.chains.filter(isOurChain);
      if (chains.length > 0) items.push(`${name} ${table} chains ${chains.join(', ')}`);
      for (const rule of listing.rules.filter(isOurHookRule)) items.push(`${name} ${table} rule '-A ${rule.chain} ${rule.spec.join(' ')}'`);
    }
    for (const rule of parseIpRules(current.ipRules).filter((r) => isOurIpRule(r, routeTable))) {
      items.push(`${name} ip rule '${rule.priority}: ${rule.words.join(' ')}'`);
    }
    if (current.routes.length > 0) items.push(`${name} routes in table ${routeTable}`);
  }
  return items;
}
