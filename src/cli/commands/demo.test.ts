import { describe, expect, it } from 'vitest';
import { runCaptured } from '../../../test/support/api-fixtures.js';
import { TRANSPARENT_NEEDS_ROOT, checkTransparentDemo } from '../../demo/transparent.js';
import { isTracemeshError } from '../../lib/errors.js';
import { demoCommand, demoFlags } from './demo.js';

describe('tracemesh demo flags', () => {
  const bad: Array<[string[], string]> = [
    [['--rate', '0'], "--rate: '0' is not a whole number from 1 to 1000"],
    [['--rate', 'fast'], "--rate: 'fast' is not a whole number from 1 to 1000"],
    [['--rate', '5000'], "--rate: '5000' is not a whole number from 1 to 1000"],
    [['--duration', '30s'], "--duration: '30s' is not a whole number from 1 to 86400"],
    [['--duration', '-1'], '--duration needs a value'],
    [['--duration', '0'], "--duration: '0' is not a whole number from 1 to 86400"],
    [['--data-dir', ''], "--data-dir: '' is not a directory"],
  ];
  for (const [argv, message] of bad) {
    it(`refuses ${argv.join(' ')} in one line with exit code 2`, async () => {
      const result = await runCaptured([demoCommand], ['demo', ...argv]);
      expect(result.code).toBe(2);
      expect(result.stderr).toBe(`tracemesh demo: ${message} (see tracemesh demo --help)\n`);
      expect(result.stdout).toBe('');
    });
  }

  it('refuses an unknown flag with exit code 2', async () => {
    const result = await runCaptured([demoCommand], ['demo', '--speed', '3']);
    expect(result.code).toBe(2);
    expect(result.stderr.split('\n').filter(Boolean)).toHaveLength(1);
    expect(result.stderr).toContain('--speed');
  });

  it('has defaults for everything', () => {
    expect(demoFlags({ values: {}, positionals: [] })).toEqual({
      dataDir: './.tracemesh',
      configDir: undefined,
      rate: 20,
      durationSeconds: undefined,
      ui: true,
      transparent: false,
    });
    expect(demoFlags({ values: { duration: '30', rate: '50', 'no-ui': true, 'data-dir': '/tmp/x' }, positionals: [] })).toMatchObject({
      durationSeconds: 30,
      rate: 50,
      ui: false,
      dataDir: '/tmp/x',
    });
  });

  it('--transparent says in one line why it cannot run without root', async () => {
    expect(() => checkTransparentDemo(1000)).toThrow(TRANSPARENT_NEEDS_ROOT);
    try {
      checkTransparentDemo(1000);
    } catch (err) {
      expect(isTracemeshError(err, 'TM_ERR_NETNS_NOT_ROOT')).toBe(true);
    }
    if (process.getuid?.() !== 0) {
      const result = await runCaptured([demoCommand], ['demo', '--transparent']);
      expect(result.code).toBe(1);
      expect(result.stderr).toBe(`tracemesh demo: ${TRANSPARENT_NEEDS_ROOT}\n`);
    }
  });

  it('--transparent as root passes the check (the namespaced demo itself runs in test/system/demo-transparent.test.ts)', () => {
    expect(() => checkTransparentDemo(0)).not.toThrow();
  });
});
