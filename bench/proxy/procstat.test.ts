import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { afterEach, describe, expect, it } from 'vitest';
import { UsageWindow, coreTicks, processTicks, processTree, rssBytes } from './procstat.js';

describe('procstat', () => {
  let child: ChildProcess | undefined;
  let grandchild: number | undefined;
  afterEach(() => {
    child?.kill('SIGKILL');
    if (grandchild !== undefined) {
      try {
        process.kill(grandchild, 'SIGKILL');
      } catch {
        // already gone
      }
    }
    child = undefined;
    grandchild = undefined;
  });

  it('reads CPU ticks and RSS of a live process, nothing of a gone one', () => {
    expect(processTicks(process.pid)).toBeGreaterThanOrEqual(0);
    expect(rssBytes(process.pid)).toBeGreaterThan(10 * 1024 * 1024);
    expect(processTicks(2 ** 22 + 1)).toBeUndefined();
    expect(rssBytes(2 ** 22 + 1)).toBe(0);
    expect(coreTicks().busy.length).toBeGreaterThan(0);
    expect(coreTicks().process).toBeGreaterThan(0);
  });

  it('finds a process and its children, and measures them over a window', async () => {
    // A shell that starts a child which burns CPU (at most 20 s, killed sooner): the window must count the grandchild.
    child = spawn('sh', ['-c', 'node -e "const end = Date.now() + 20000; while (Date.now() < end) {}" & wait'], { stdio: 'ignore' });
    const pid = child.pid!;
    const deadline = Date.now() + 10_000;
    while (processTree(pid).length < 2 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    const tree = processTree(pid);
    grandchild = tree[1];
    expect(tree[0]).toBe(pid);
    expect(tree.length).toBe(2);
    const window = new UsageWindow([{ name: 'burner', pids: [pid] }]);
    const busyUntil = Date.now() + 10_000;
    // Poll until at least one tick of CPU was charged to the group (clock ticks are 10 ms).
    for (;;) {
      await new Promise((r) => setTimeout(r, 50));
      const ticks = processTicks(tree[1]!) ?? 0;
      if (ticks > 2 || Date.now() > busyUntil) break;
    }
    await new Promise((r) => setTimeout(r, 150));
    const usage = window.stop();
    const group = usage.groups[0]!;
    expect(group.name).toBe('burner');
    expect(group.processes).toBe(2);
    expect(group.cpuSeconds).toBeGreaterThan(0);
    expect(group.peakRssBytes).toBeGreaterThan(1024 * 1024);
    expect(window.stop()).toBe(usage);
  });
});
