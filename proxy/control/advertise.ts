/**
 * What a proxy registers as its workload's endpoint when not told. Explicit
 * mode (laptops, the demo): peers call the inbound listener, on its own
 * address when it binds one, else loopback. Transparent capture: peers call
 * the app's own port at this pod's first non-loopback IPv4 address, and
 * their capture rules deliver the connection to the inbound listener.
 */
import { networkInterfaces } from 'node:os';

export function defaultAdvertise(transparent: boolean, host: string | undefined, appPort: number, inboundPort: number): { address: string; port: number } {
  if (!transparent) {
    const specific = host !== undefined && host !== '0.0.0.0' && host !== '::';
    return { address: specific ? host : '127.0.0.1', port: inboundPort };
  }
  const port = appPort !== 0 ? appPort : inboundPort;
  for (const addresses of Object.values(networkInterfaces())) {
    for (const a of addresses ?? []) {
      if (a.family === 'IPv4' && !a.internal) return { address: a.address, port };
    }
  }
  return { address: '127.0.0.1', port };
}
