/**
 * What a SIGKILLed demo leaves: its children (own process groups) keep
 * running. The next start reads the old state.json and stops every recorded
 * pid that still runs its recorded command, and nothing else. First on
 * stand-in processes, then with the real demo: start it, SIGKILL it, start
 * it again, and the first run's children are gone.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { compileTracemesh } from '../../src/demo/build.test-helper.js';
import { runsCommand, stopLeftovers, survivingChildren } from '../../src/demo/leftovers.js';
import { readDemoState, writeDemoState } from '../../src/demo/state-file.js';
import type { DemoState, DemoStateChild } from '../../src/demo/state-file.js';
import { isProcessAlive } from '../../src/netns/stale.js';
import { isTracemeshError } from '../../src/lib/errors.js';

const dirs: string[] = [];
const started: ChildProcess[] = [];

function tempDir(lead: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), lead));
  dirs.push(dir);
  return dir;
}

/** A detached stand-in child; `stubborn` ignores SIGTERM. */
function standIn(stubborn: boolean): { proc: ChildProcess; command: string[] } {
  const source = `${stubborn ? "process.on('SIGTERM', () => {});" : ''} setInterval(() => {}, 1000); console.log('up');`;
  const command = [process.execPath, '-e', source, 'tracemesh-leftover-test'];
  const proc = spawn(command[0] as string, command.slice(1), { detached: true, stdio: ['ignore', 'pipe', 'ignore'] });
  started.push(proc);
  return { proc, command };
}

function upLine(proc: ChildProcess): Promise<void> {
  return new Promise((resolve) => createInterface({ input: proc.stdout! }).once('line', () => resolve()));
}

async function waitFor(what: string, check: () => boolean, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

function state(children: DemoStateChild[], demoPid = 999_999_999): DemoState {
  return { demoPid, running: true, startedAt: '2026-01-01T00:00:00.000Z', children, urls: {} };
}

afterEach(() => {
  for (const proc of started.splice(0)) {
    try {
      process.kill(-(proc.pid as number), 'SIGKILL');
    } catch {
      // gone
    }
  }
});

afterAll(() => {
  for (const dir of dirs) rmSync(dir, { recursive: true, force: true });
});

describe('leftovers of an earlier run', () => {
  it('matches a command line exactly or as the end of a wrapper chain, never a different one', () => {
    expect(runsCommand(['node', 'cli.js', 'proxy'], ['node', 'cli.js', 'proxy'])).toBe(true);
    expect(runsCommand(['ip', 'netns', 'exec', 'ns', 'setpriv', '--', 'node', 'cli.js', 'proxy'], ['node', 'cli.js', 'proxy'])).toBe(true);
    expect(runsCommand(['node', 'cli.js', 'collector'], ['node', 'cli.js', 'proxy'])).toBe(false);
    expect(runsCommand(['cli.js', 'proxy'], ['node', 'cli.js', 'proxy'])).toBe(false);
    expect(runsCommand(['node'], [])).toBe(false);
  });

  it('keeps only children that are alive and still run their recorded command', () => {
    const children: DemoStateChild[] = [
      { label: 'gone', pid: 11, command: ['node', 'a'] },
      { label: 'reused pid', pid: 12, command: ['node', 'b'] },
      { label: 'ours', pid: 13, command: ['node', 'c'] },
    ];
    const commands: Record<number, string[]> = { 12: ['bash'], 13: ['node', 'c'] };
    const found = survivingChildren(children, { isAlive: (pid) => pid !== 11, commandLine: (pid) => commands[pid] });
    expect(found.map((c) => c.label)).toEqual(['ours']);
  });

  it('reads no state from a missing file, and says why a corrupt one is ignored', () => {
    const dir = tempDir('tracemesh-leftovers-');
    expect(readDemoState(path.join(dir, 'none.json'))).toEqual({ state: undefined, problem: undefined });
    writeFileSync(path.join(dir, 'bad.json'), '{ not json');
    const bad = readDemoState(path.join(dir, 'bad.json'));
    expect(bad.state).toBeUndefined();
    expect(bad.problem).toMatch(/bad\.json is not JSON/);
    // A round-1 state (no command lines): nothing in it can be verified, so nothing is stopped.
    writeFileSync(path.join(dir, 'old.json'), JSON.stringify({ demoPid: 1, running: false, children: [{ label: 'x', pid: 1 }] }));
    expect(readDemoState(path.join(dir, 'old.json')).state?.children).toEqual([]);
  });

  it('stops the survivors (SIGTERM, SIGKILL for one that ignores it) in one line, and leaves a pid running something else alone', async () => {
    const dir = tempDir('tracemesh-leftovers-');
    const polite = standIn(false);
    const stubborn = standIn(true);
    const other = standIn(false);
    await Promise.all([upLine(polite.proc), upLine(stubborn.proc), upLine(other.proc)]);
    const file = path.join(dir, 'state.json');
    writeDemoState(
      file,
      state([
        { label: 'collector', pid: polite.proc.pid as number, command: polite.command },
        { label: 'web proxy', pid: stubborn.proc.pid as number, command: stubborn.command },
        // Its pid, but another command: a reused pid is not ours to stop.
        { label: 'web app', pid: other.proc.pid as number, command: [process.execPath, 'web.js'] },
      ]),
    );
    const line = await stopLeftovers(file, 500);
    expect(line).toMatch(/^tracemesh demo: stopped 2 processes an earlier run \(pid 999999999\) left running \(SIGTERM, 1 needed SIGKILL\): collector \(pid \d+\), web proxy \(pid \d+\)$/);
    expect(isProcessAlive(polite.proc.pid as number)).toBe(false);
    expect(isProcessAlive(stubborn.proc.pid as number)).toBe(false);
    expect(isProcessAlive(other.proc.pid as number)).toBe(true);
    // A state whose pids are gone: nothing to say.
    expect(await stopLeftovers(file, 500)).toBeUndefined();
  });

  it('refuses to start while the recorded demo itself still runs', async () => {
    const dir = tempDir('tracemesh-leftovers-');
    const running = spawn(process.execPath, ['-e', 'setInterval(() => {}, 1000)', 'demo'], { detached: true, stdio: 'ignore' });
    started.push(running);
    await waitFor('the stand-in demo', () => readFileSync(`/proc/${running.pid}/cmdline`, 'utf8').includes('demo'), 5_000);
    const file = path.join(dir, 'state.json');
    writeDemoState(file, state([], running.pid));
    const err = await stopLeftovers(file, 500).catch((e: unknown) => e);
    expect(isTracemeshError(err, 'TM_ERR_DEMO_NOT_READY')).toBe(true);
    expect(String(err)).toContain(`another tracemesh demo (pid ${running.pid}) is running with this data dir`);
  });
});

describe('tracemesh demo after a SIGKILLed run', () => {
  let buildDir = '';
  let dataDir = '';
  const demos: ChildProcess[] = [];

  beforeAll(() => {
    buildDir = compileTracemesh();
    dataDir = tempDir('tracemesh-demo-leftovers-data-');
  });

  afterAll(() => {
    for (const demo of demos) if (demo.exitCode === null && demo.signalCode === null) demo.kill('SIGKILL');
    try {
      for (const child of (JSON.parse(readFileSync(path.join(dataDir, 'demo/state.json'), 'utf8')) as DemoState).children) {
        try {
          process.kill(-child.pid, 'SIGKILL');
        } catch {
          // gone
        }
      }
    } catch {
      // no state
    }
    if (buildDir !== '') rmSync(buildDir, { recursive: true, force: true });
  });

  /** Starts `tracemesh demo` and resolves with its output so far once a line matches `until`. */
  function startDemo(until: RegExp, timeoutMs: number): Promise<{ demo: ChildProcess; output: () => string; line: string }> {
    const demo = spawn(process.execPath, [path.join(buildDir, 'src/cli/main.js'), 'demo', '--no-ui', '--data-dir', dataDir], {
      env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir() },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    demos.push(demo);
    let text = '';
    demo.stderr?.on('data', (chunk: Buffer) => (text += chunk.toString('utf8')));
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error(`no line matching ${until} within ${timeoutMs} ms; output:\n${text}`)), timeoutMs);
      demo.once('exit', (code) => reject(new Error(`the demo exited (${code}) before ${until}; output:\n${text}`)));
      createInterface({ input: demo.stdout! }).on('line', (line) => {
        text += `${line}\n`;
        if (until.test(line)) {
          clearTimeout(timer);
          resolve({ demo, output: () => text, line });
        }
      });
    });
  }

  it('stops the children the killed run left, says so, and runs on', async () => {
    const first = await startDemo(/^control plane ready: /, 120_000);
    const before = readDemoState(path.join(dataDir, 'demo/state.json')).state as DemoState;
    expect(before.children.map((c) => c.label)).toEqual(['collector', 'control plane']);
    const firstExit = new Promise((resolve) => first.demo.once('exit', resolve));
    first.demo.kill('SIGKILL');
    await firstExit;
    // Their own process groups: they outlive the demo.
    for (const child of before.children) expect(isProcessAlive(child.pid), child.label).toBe(true);

    const second = await startDemo(/^tracemesh demo: stopped 2 processes an earlier run/, 60_000);
    expect(second.line).toContain(`(pid ${first.demo.pid})`);
    for (const child of before.children) expect(isProcessAlive(child.pid), child.label).toBe(false);
    // The second run goes on with a collector of its own (the first one's store lock is free again).
    const secondExit = new Promise<number | null>((resolve) => second.demo.once('exit', (code) => resolve(code)));
    await waitFor('the second run\'s collector', () => second.output().includes('collector ready: '), 120_000);
    second.demo.kill('SIGTERM');
    await secondExit;
    const after = readDemoState(path.join(dataDir, 'demo/state.json')).state as DemoState;
    expect(after.running).toBe(false);
    expect(after.children.filter((c) => isProcessAlive(c.pid))).toEqual([]);
  }, 300_000);
});
