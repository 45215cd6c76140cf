/** Readiness probes with deadlines: one HTTP GET, and a poll until it answers. */
import http from 'node:http';
import net from 'node:net';
import type { ManagedProcess } from './processes.js';

export interface ProbeAnswer {
  status: number;
  bodyBytes: number;
  headers: http.IncomingHttpHeaders;
}

const PROBE_TIMEOUT_MS = 2_000;
const POLL_MS = 50;
const MAX_PROBE_BODY = 1024 * 1024;

/** One GET to 127.0.0.1:port with its own connection. */
export function httpGet(port: number, hostHeader: string, path = '/'): Promise<ProbeAnswer> {
  return new Promise((resolve, reject) => {
    const request = http.get({ host: '127.0.0.1', port, path, agent: false, headers: { host: hostHeader }, timeout: PROBE_TIMEOUT_MS }, (response) => {
      let bodyBytes = 0;
      response.on('data', (chunk: Buffer) => {
        bodyBytes += chunk.length;
        if (bodyBytes > MAX_PROBE_BODY) response.destroy(new Error(`probe body over ${MAX_PROBE_BODY} bytes`));
      });
      response.on('end', () => resolve({ status: response.statusCode ?? 0, bodyBytes, headers: response.headers }));
      response.on('error', reject);
    });
    request.on('timeout', () => request.destroy(new Error(`no answer within ${PROBE_TIMEOUT_MS} ms`)));
    request.on('error', reject);
  });
}

/**
 * Polls `probe` until it returns true, the process exits (its output is in the
 * error), or the deadline passes (the last probe error is in the message).
 */
export async function waitReady(what: string, probe: () => Promise<boolean>, timeoutMs: number, process?: ManagedProcess): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    if (process?.exited === true) {
      throw new Error(`${process.label} exited (${process.describeExit()}) before ${what}; output: ${process.tail.trim().slice(-2000) || '(none)'}`);
    }
    try {
      if (await probe()) return;
      last = 'probe said not ready';
    } catch (err) {
      last = err instanceof Error ? err.message : String(err);
    }
    if (Date.now() > deadline) throw new Error(`${what}: not ready within ${timeoutMs} ms (${last})`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** A port that was free a moment ago on 127.0.0.1 (for programs that take a port number, not 0). */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = net.createServer();
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port: 0 }, () => {
      const address = server.address();
      const port = typeof address === 'object' && address !== null ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}
