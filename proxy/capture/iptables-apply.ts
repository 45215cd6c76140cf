/**
 * Runs the capture plans in the current network namespace: finds the tools on
 * PATH, reads what is there now, runs the plan one command at a time, and on
 * the first failure removes everything of ours again, so a failed apply never
 * leaves capture half installed (or says exactly what it had to leave).
 */
import { execFile } from 'node:child_process';
import { findExecutable } from '../../src/lib/find-executable.js';
import { errorMessage, TracemeshError } from '../../src/lib/errors.js';
import { formatCommand, iptablesTool, planApply, planCleanup, type CaptureOptions, type RuleCommand } from './iptables-rules.js';
import { CAPTURE_TABLES, describeOurs, routesInTable, type CaptureState, type CaptureTable, type FamilyState } from './iptables-state.js';
import type { IpFamily } from './iptables-values.js';

const COMMAND_TIMEOUT_MS = 30_000;

type ToolName = 'iptables' | 'ip6tables' | 'iptables-restore' | 'ip6tables-restore' | 'ip';

/** Absolute paths of the tools; a missing tool is absent. */
export type CaptureTools = { readonly [T in ToolName]?: string };

const INSTALL_HINT: Readonly<Record<ToolName, string>> = {
  iptables: 'the iptables package',
  ip6tables: 'the iptables package',
  'iptables-restore': 'the iptables package',
  'ip6tables-restore': 'the iptables package',
  ip: 'the iproute2 package',
};

export function findTools(pathList: string = process.env['PATH'] ?? ''): CaptureTools {
  const tools: { [T in ToolName]?: string } = {};
  for (const name of ['iptables', 'ip6tables', 'iptables-restore', 'ip6tables-restore', 'ip'] as const) {
    const found = findExecutable(name, pathList);
    if (found !== undefined) tools[name] = found;
  }
  return tools;
}

function requireTool(tools: CaptureTools, name: ToolName, why: string): void {
  if (tools[name] !== undefined) return;
  throw new TracemeshError(
    'TM_ERR_CAPTURE_TOOL_MISSING',
    `${name} is not on PATH (${process.env['PATH'] ?? ''}); it is needed ${why}; install ${INSTALL_HINT[name]}`,
  );
}

interface CommandResult {
  ok: boolean;
  stdout: string;
  /** stderr on one line, or why the process could not run. */
  problem: string;
}

function oneLine(text: string): string {
  return text
    .split('\n')
    .map((line) => line.trim())
    .filter((line) => line !== '' && !line.startsWith('Try `'))
    .join(' / ');
}

function run(tools: CaptureTools, argv: readonly string[], stdin?: readonly string[]): Promise<CommandResult> {
  const [name, ...args] = argv;
  const file = tools[name as ToolName];
  if (file === undefined) return Promise.resolve({ ok: false, stdout: '', problem: `${String(name)} is not on PATH` });
  return new Promise((resolve) => {
    const child = execFile(file, args, { encoding: 'utf8', timeout: COMMAND_TIMEOUT_MS }, (err, stdout, stderr) => {
      if (err === null) {
        resolve({ ok: true, stdout, problem: '' });
        return;
      }
      const exit = (err as { code?: unknown }).code;
      const how = typeof exit === 'number' ? `exit ${exit}` : errorMessage(err);
      resolve({ ok: false, stdout, problem: `${oneLine(stderr) || '(no message)'} (${how})` });
    });
    // A command that reads no stdin may exit before taking it: that error is not the command's.
    child.stdin?.on('error', () => {});
    child.stdin?.end(stdin === undefined ? '' : `${stdin.join('\n')}\n`);
  });
}

async function mustRead(tools: CaptureTools, argv: readonly string[]): Promise<string[]> {
  const result = await run(tools, argv);
  if (!result.ok) throw new TracemeshError('TM_ERR_CAPTURE_RULE_FAILED', `reading the current rules failed: ${formatCommand({ argv })}: ${result.problem}`);
  return result.stdout.split('\n').filter((line) => line.trim() !== '');
}

async function readFamily(tools: CaptureTools, family: IpFamily, routeTable: number): Promise<FamilyState> {
  const tool = iptablesTool(family);
  const rules: Record<CaptureTable, string[]> = { nat: [], mangle: [] };
  for (const table of CAPTURE_TABLES) rules[table] = await mustRead(tools, [tool, '-t', table, '-S']);
  if (tools.ip === undefined) return { rules, ipRules: [], routes: [] };
  // `ip route show table all` without -4 lists IPv6 routes as well.
  const ip = family === 4 ? ['ip', '-4'] : ['ip', '-6'];
  return {
    rules,
    ipRules: await mustRead(tools, [...ip, 'rule', 'show']),
    routes: routesInTable(await mustRead(tools, [...ip, 'route', 'show', 'table', 'all']), routeTable),
  };
}

/**
 * What the namespace holds now. IPv4 must be readable. IPv6 is read when ip6tables is
 * installed; when IPv6 is not wanted and cannot be read (no ip6tables, or a kernel
 * without it) nothing of ours can be there, so it is left out rather than failing.
 */
export async function readCaptureState(tools: CaptureTools, routeTable: number, ipv6Wanted: boolean): Promise<CaptureState> {
  requireTool(tools, 'iptables', 'to read and change IPv4 rules');
  const v4 = await readFamily(tools, 4, routeTable);
  if (tools.ip6tables === undefined) return { 4: v4 };
  try {
    return { 4: v4, 6: await readFamily(tools, 6, routeTable) };
  } catch (err) {
    if (ipv6Wanted) throw err;
    return { 4: v4 };
  }
}

/** True when an interface that is up has a global or unique-local IPv6 address. */
export async function namespaceHasIpv6(tools: CaptureTools): Promise<boolean> {
  requireTool(tools, 'ip', 'to look for IPv6 addresses (--ipv6 auto); or pass --ipv6 on|off');
  const lines = await mustRead(tools, ['ip', '-6', '-o', 'addr', 'show', 'up', 'scope', 'global']);
  return lines.length > 0;
}

/** Commands run, in order. */
export interface RunReport {
  ran: RuleCommand[];
}

/** Removes everything of ours; the text says how that went, for the message of the failure that caused it. */
async function rollBack(tools: CaptureTools, routeTable: number, ipv6Wanted: boolean): Promise<string> {
  let state: CaptureState;
  try {
    state = await readCaptureState(tools, routeTable, ipv6Wanted);
  } catch (err) {
    return `rollback could not read the rules (${errorMessage(err)}); run 'tracemesh iptables --cleanup'`;
  }
  for (const step of planCleanup(state, routeTable)) {
    const result = await run(tools, step.argv, step.stdin);
    if (!result.ok) return `rollback stopped at ${formatCommand(step)}: ${result.problem}; ${await leftBehind(tools, routeTable, ipv6Wanted)}`;
  }
  const left = await leftBehind(tools, routeTable, ipv6Wanted);
  return left === 'nothing of tracemesh is left' ? 'rolled back: no tracemesh rules, chains or routes are left in this namespace (capture is off)' : `rolled back, but ${left}`;
}

async function leftBehind(tools: CaptureTools, routeTable: number, ipv6Wanted: boolean): Promise<string> {
  try {
    const items = describeOurs(await readCaptureState(tools, routeTable, ipv6Wanted), routeTable);
    return items.length === 0 ? 'nothing of tracemesh is left' : `left in place: ${items.join('; ')}; run 'tracemesh iptables --cleanup'`;
  } catch (err) {
    return `what is left could not be read (${errorMessage(err)})`;
  }
}

function failure(step: RuleCommand, problem: string, aftermath: string): Error {
  return new TracemeshError('TM_ERR_CAPTURE_RULE_FAILED', `${formatCommand(step)} failed (${step.purpose}): ${problem}; ${aftermath}`);
}

/** Installs the capture rules for `options` in this namespace; idempotent; all or nothing. */
export async function applyCapture(options: CaptureOptions, tools: CaptureTools = findTools()): Promise<RunReport> {
  const ipv6Wanted = options.families.includes(6);
  requireTool(tools, 'iptables', 'to install IPv4 capture rules');
  if (ipv6Wanted) requireTool(tools, 'ip6tables', 'to install IPv6 capture rules (or pass --ipv6 off)');
  if (options.mode === 'tproxy') requireTool(tools, 'ip', 'for the policy routing of --mode tproxy');
  const state = await readCaptureState(tools, options.routeTable, ipv6Wanted);
  const ran: RuleCommand[] = [];
  for (const step of planApply(options, state)) {
    const result = await run(tools, step.argv, step.stdin);
    if (!result.ok) throw failure(step, result.problem, await rollBack(tools, options.routeTable, ipv6Wanted));
    ran.push(step);
  }
  return { ran };
}

/** The commands `cleanupCapture` would run now (for `--cleanup --dry-run`). */
export async function planCleanupNow(routeTable: number, tools: CaptureTools = findTools()): Promise<RuleCommand[]> {
  return planCleanup(await readCaptureState(tools, routeTable, false), routeTable);
}

/** Removes our chains, our rules in built-in chains, our ip rules and routes; nothing else. Idempotent. */
export async function cleanupCapture(routeTable: number, tools: CaptureTools = findTools()): Promise<RunReport> {
  const ran: RuleCommand[] = [];
  for (const step of await planCleanupNow(routeTable, tools)) {
    const result = await run(tools, step.argv, step.stdin);
    if (!result.ok) throw failure(step, result.problem, await leftBehind(tools, routeTable, false));
    ran.push(step);
  }
  return { ran };
}
