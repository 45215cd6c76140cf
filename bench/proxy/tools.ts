/**
 * The external programs the benchmark drives (wrk, HAProxy, nginx, taskset):
 * found on PATH or in the sbin directories, installed from the Debian
 * packages with apt-get when missing and we are root, and their versions for
 * the report.
 */
import { execFileSync, spawnSync } from 'node:child_process';
import path from 'node:path';
import { findExecutable as findOnSearchPath } from '../../src/lib/find-executable.js';

export type Tool = 'wrk' | 'haproxy' | 'nginx' | 'taskset';

/** The Debian package that ships each tool. */
const PACKAGE: Readonly<Record<Tool, string>> = { wrk: 'wrk', haproxy: 'haproxy', nginx: 'nginx', taskset: 'util-linux' };

const APT_TIMEOUT_MS = 15 * 60_000;

/** PATH, then the sbin directories a non-login root shell may lack (haproxy and nginx live there). */
export function findExecutable(name: string): string | undefined {
  return findOnSearchPath(name, [process.env['PATH'] ?? '', '/usr/sbin', '/sbin', '/usr/local/sbin'].join(path.delimiter));
}

function apt(args: readonly string[], log: (message: string) => void): void {
  log(`apt-get ${args.join(' ')}`);
  const result = spawnSync('apt-get', args, {
    env: { ...process.env, DEBIAN_FRONTEND: 'noninteractive' },
    stdio: ['ignore', 'pipe', 'pipe'],
    timeout: APT_TIMEOUT_MS,
    encoding: 'utf8',
  });
  if (result.error !== undefined) throw new Error(`apt-get ${args.join(' ')}: ${result.error.message}`);
  if (result.status !== 0) throw new Error(`apt-get ${args.join(' ')} exited with ${result.status}: ${(result.stderr || result.stdout).slice(-2000)}`);
}

/**
 * Paths of `tools`, installing the missing ones (`apt-get update` first) when
 * running as root. Throws naming the missing tools and the command otherwise.
 */
export function ensureTools(tools: readonly Tool[], log: (message: string) => void): Map<Tool, string> {
  const found = new Map<Tool, string>();
  const missing: Tool[] = [];
  for (const tool of tools) {
    const where = findExecutable(tool);
    if (where === undefined) missing.push(tool);
    else found.set(tool, where);
  }
  if (missing.length === 0) return found;
  const packages = [...new Set(missing.map((tool) => PACKAGE[tool]))];
  const command = `apt-get update && apt-get install -y --no-install-recommends ${packages.join(' ')}`;
  if (process.getuid?.() !== 0) throw new Error(`missing ${missing.join(', ')}: install them as root with \`${command}\``);
  log(`installing ${packages.join(', ')} (missing: ${missing.join(', ')})`);
  apt(['update'], log);
  apt(['install', '-y', '--no-install-recommends', ...packages], log);
  for (const tool of missing) {
    const where = findExecutable(tool);
    if (where === undefined) throw new Error(`${tool} is still missing after \`${command}\``);
    found.set(tool, where);
  }
  return found;
}

/** First line a program prints about its version (some print it on stderr, some exit non-zero). */
export function versionLine(executable: string, args: readonly string[]): string {
  const result = spawnSync(executable, args, { encoding: 'utf8', timeout: 10_000 });
  const text = `${result.stdout ?? ''}${result.stderr ?? ''}`.trim();
  return text.split('\n', 1)[0]?.trim() || 'unknown';
}

/** The Debian package version, when dpkg knows it. */
export function packageVersion(pkg: string): string | undefined {
  try {
    return execFileSync('dpkg-query', ['-W', '-f=${Version}', pkg], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'ignore'] }).trim() || undefined;
  } catch {
    return undefined;
  }
}
