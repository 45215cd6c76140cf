/**
 * `tracemesh demo --transparent`: the same demo with the pods in network
 * namespaces and iptables capture (src/netns, `tracemesh iptables`). It
 * needs root for namespaces and iptables, and says so in one line when run
 * without. The namespaced launch itself is not written yet: as root it
 * says that, instead of pretending.
 */
import { TracemeshError } from '../lib/errors.js';
import { assertRoot } from '../netns/root-check.js';

export const TRANSPARENT_NEEDS_ROOT =
  '--transparent needs root: it creates network namespaces and iptables rules for the pods; run `tracemesh demo` without it for the explicit-mode demo (no root needed)';
export const TRANSPARENT_NOT_YET =
  '--transparent is not available yet: the namespaced demo launch is unfinished; run `tracemesh demo` without it (explicit mode), or see test/system/transparent-capture.test.ts for transparent capture today';

/** Throws the one-line reason the transparent demo cannot run here. */
export function checkTransparentDemo(uid: number | undefined = process.getuid?.()): never {
  assertRoot(uid, TRANSPARENT_NEEDS_ROOT);
  throw new TracemeshError('TM_ERR_PROXY_MODE_UNAVAILABLE', TRANSPARENT_NOT_YET);
}
