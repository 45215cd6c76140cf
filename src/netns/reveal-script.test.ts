import { describe, expect, it } from 'vitest';
import { coveredAncestors, isInside, revealScript } from './reveal-script.js';

describe('the reveal script', () => {
  it('binds read-only to a stash, covers the closed ancestor with tmpfs, moves the bind back, then execs', () => {
    const script = revealScript([{ path: '/root/work/repo', closedAncestor: '/root' }], '/tmp/tracemesh-netns-tmt1');
    expect(script.split('\n')).toEqual([
      'set -e',
      'umask 022',
      "mkdir -p '/tmp/tracemesh-netns-tmt1/reveal-0'",
      "mount --bind '/root/work/repo' '/tmp/tracemesh-netns-tmt1/reveal-0'",
      "mount -o remount,bind,ro '/tmp/tracemesh-netns-tmt1/reveal-0'",
      "mount -t tmpfs -o mode=0755,size=1m tracemesh-reveal '/root'",
      "mkdir -p '/root/work/repo'",
      "mount --move '/tmp/tracemesh-netns-tmt1/reveal-0' '/root/work/repo'",
      'exec "$@"',
    ]);
  });

  it('covers each closed ancestor once and skips one inside another', () => {
    expect(
      coveredAncestors([
        { path: '/home/u/a/repo', closedAncestor: '/home/u' },
        { path: '/home/u/b/repo', closedAncestor: '/home/u' },
        { path: '/home/u/x/y/z', closedAncestor: '/home/u/x' },
        { path: '/srv/p/q', closedAncestor: '/srv/p' },
      ]),
    ).toEqual(['/home/u', '/srv/p']);
  });

  it('quotes paths with spaces and quotes as single shell words', () => {
    const script = revealScript([{ path: "/root/it's here", closedAncestor: '/root' }], '/tmp/s');
    expect(script).toContain("mount --bind '/root/it'\\''s here' '/tmp/s/reveal-0'");
  });

  it('knows what lies inside what', () => {
    expect(isInside('/a/b', '/a')).toBe(true);
    expect(isInside('/a', '/a')).toBe(false);
    expect(isInside('/ab', '/a')).toBe(false);
    expect(isInside('/a', '/a/b')).toBe(false);
  });
});
