/**
 * `tracemesh demo --transparent`: the same demo with the pods in network
 * namespaces and iptables capture (transparent-stack.ts, on src/netns and
 * `tracemesh iptables`). It needs root for namespaces and iptables, and says
 * so in one line when run without.
 */
import { assertRoot } from '../netns/root-check.js';

export const TRANSPARENT_NEEDS_ROOT =
  '--transparent needs root: it creates network namespaces and iptables rules for the pods; run `tracemesh demo` without it for the explicit-mode demo (no root needed)';

/** Throws the one-line reason the transparent demo cannot run here (TM_ERR_NETNS_NOT_ROOT), or returns when it can. */
export function checkTransparentDemo(uid: number | undefined = process.getuid?.()): void {
  assertRoot(uid, TRANSPARENT_NEEDS_ROOT);
}
