/** Ports for the demo's listeners: any free one, or a well-known one when it is free. */
import net from 'node:net';

function tryListen(port: number): Promise<number | undefined> {
  return new Promise((resolve) => {
    const server = net.createServer();
    server.once('error', () => resolve(undefined));
    server.listen(port, '127.0.0.1', () => {
      const address = server.address();
      const bound = typeof address === 'object' && address !== null ? address.port : undefined;
      server.close(() => resolve(bound));
    });
  });
}

/**
 * A port nothing listens on right now (bound, then released). For the apps,
 * whose port their sidecar must be told before they start; another process
 * could take it in between, which then fails the app's start with EADDRINUSE.
 */
export async function freePort(): Promise<number> {
  const port = await tryListen(0);
  if (port === undefined) throw new Error('no free port on 127.0.0.1');
  return port;
}

/** `preferred` when it is free (so `tracemesh trace` and friends work without --api), else 0 (the listener picks one). */
export async function preferredOrAny(preferred: number): Promise<number> {
  return (await tryListen(preferred)) ?? 0;
}
