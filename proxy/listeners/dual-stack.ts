/**
 * Whether this network namespace can listen on IPv6. A listener on `::`
 * takes IPv4 and IPv6 alike (dual stack); where IPv6 is off (no `::`
 * address, or disabled by sysctl) binding it fails, and IPv4 alone is used.
 */
import net from 'node:net';

export async function dualStackOr(fallback: string): Promise<string> {
  const probe = net.createServer();
  const ok = await new Promise<boolean>((resolve) => {
    probe.once('error', () => resolve(false));
    probe.listen({ port: 0, host: '::', ipv6Only: false }, () => resolve(true));
  });
  if (ok) await new Promise<void>((resolve) => probe.close(() => resolve()));
  return ok ? '::' : fallback;
}
