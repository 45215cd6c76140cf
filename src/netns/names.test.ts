import { describe, expect, it } from 'vitest';
import { BASE_PATTERN, namespaceName, ownerPidOf, ownerPrefix, switchPortName } from './names.js';

describe('names of a run', () => {
  it('builds <base><pid>-<what> and reads the owner pid back', () => {
    const prefix = ownerPrefix('tmt', 4242);
    expect(namespaceName(prefix, 'b')).toBe('tmt4242-b');
    expect(ownerPidOf('tmt', 'tmt4242-b')).toBe(4242);
    expect(ownerPidOf('tmt', 'tmt4242')).toBe(4242);
    expect(ownerPidOf('tmt', 'tmt4242-switch')).toBe(4242);
  });

  it('does not take another base\'s names or a name that only looks close', () => {
    expect(ownerPidOf('tm', 'tmt4242-b')).toBeUndefined();
    expect(ownerPidOf('tmt', 'tm4242-b')).toBeUndefined();
    expect(ownerPidOf('tmt', 'tmt4242b')).toBeUndefined();
    expect(ownerPidOf('tmt', 'tmt-b')).toBeUndefined();
    expect(ownerPidOf('tmt', 'tmt0-b')).toBeUndefined();
  });

  it('only allows bases that end with a letter, so digits always belong to the pid', () => {
    expect(BASE_PATTERN.test('tm')).toBe(true);
    expect(BASE_PATTERN.test('t')).toBe(true);
    expect(BASE_PATTERN.test('tm1x')).toBe(true);
    expect(BASE_PATTERN.test('tm1')).toBe(false);
    expect(BASE_PATTERN.test('Tm')).toBe(false);
    expect(BASE_PATTERN.test('abcdefghi')).toBe(false);
  });

  it('keeps switch port names within the 15 characters of an interface name', () => {
    expect(switchPortName(0)).toBe('vp0');
    expect(switchPortName(253).length).toBeLessThanOrEqual(15);
  });
});
