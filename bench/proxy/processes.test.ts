import { afterEach, describe, expect, it } from 'vitest';
import { Processes } from './processes.js';

describe('Processes', () => {
  const processes = new Processes();
  afterEach(async () => {
    await processes.stopAll(500);
  });

  it('runs a command pinned to a core and hands over the stdout line it waits for', async () => {
    const child = processes.spawn('echo', process.execPath, ['-e', 'console.log("noise"); console.log("listening 1234"); setInterval(() => {}, 1000)'], { core: 0 });
    const match = await child.waitForLine(/^listening (\d+)$/, 10_000);
    expect(match[1]).toBe('1234');
    expect(child.commandLine).toMatch(/^taskset -c 0 /);
    await child.stop();
    expect(child.exited).toBe(true);
  });

  it('rejects the wait with the output when the process exits first', async () => {
    const child = processes.spawn('failing', process.execPath, ['-e', 'console.error("bad flag --x"); process.exit(2)'], { core: 0 });
    await expect(child.waitForLine(/^listening/, 10_000)).rejects.toThrow(/failing exited \(code 2\) before it was ready; output: bad flag --x/);
  });

  it('kills with SIGKILL a process that ignores SIGTERM, after the grace period', async () => {
    const child = processes.spawn('stubborn', process.execPath, ['-e', 'process.on("SIGTERM", () => {}); console.log("ready"); setInterval(() => {}, 1000)'], { core: 0 });
    await child.waitForLine(/^ready$/, 10_000);
    await child.stop(200);
    expect(child.exitSignal).toBe('SIGKILL');
  });
});
