import { describe, expect, it } from 'vitest';
import { ancestorsOf, permissionBitsFor } from './uid-access.js';

describe('what a uid may reach', () => {
  it('lists the directories to search on the way to a path, from the root down', () => {
    expect(ancestorsOf('/root/work/repo')).toEqual(['/', '/root', '/root/work']);
    expect(ancestorsOf('/repo')).toEqual(['/']);
    expect(ancestorsOf('/a/b/../c')).toEqual(['/', '/a']);
  });

  it('applies the owner, then group, then other bits', () => {
    const user = { uid: 1337, gid: 1337 };
    expect(permissionBitsFor(user, { uid: 1337, gid: 0 }, 0o700)).toBe(7);
    expect(permissionBitsFor(user, { uid: 0, gid: 1337 }, 0o750)).toBe(5);
    expect(permissionBitsFor(user, { uid: 0, gid: 0 }, 0o750)).toBe(0);
    expect(permissionBitsFor(user, { uid: 0, gid: 0 }, 0o755)).toBe(5);
  });
});
