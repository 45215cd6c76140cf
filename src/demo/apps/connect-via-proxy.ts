/**
 * A raw TCP connection to `host:port` through an explicit-mode proxy, the
 * way an app behind `http_proxy` opens a non-HTTP connection: `CONNECT
 * host:port HTTP/1.1`, wait for a 2xx, then the socket is the tunnel.
 *
 * Plain node:net rather than http.request({ method: 'CONNECT' }): the tunnel
 * is plumbing, and the HTTP instrumentation would otherwise record it as a
 * request of the app.
 */
import net from 'node:net';
import type { Socket } from 'node:net';
import { TracemeshError, errorMessage } from '../../lib/errors.js';
import { parsePeerAddress, parseProxyUrl } from './config.js';
import type { ProxyAddress } from './config.js';

/** The proxy's answer head (status line + headers) may be at most this long. */
export const MAX_CONNECT_RESPONSE_BYTES = 8 * 1024;
export const DEFAULT_CONNECT_TIMEOUT_MS = 5_000;

const HEAD_END = Buffer.from('\r\n\r\n');

export interface ConnectViaProxyOptions {
  /** Covers connecting to the proxy and its answer to CONNECT. */
  timeoutMs?: number;
}

/**
 * Resolves with a socket tunnelled to `host:port` (bytes the proxy sent after
 * its answer are put back in the socket); rejects with TM_ERR_UPSTREAM naming
 * the proxy and the target when the proxy is unreachable, refuses, answers
 * garbage or is too slow. A bad proxy URL or target is TM_ERR_CLI_BAD_VALUE.
 * The caller owns the socket from then on and should listen for 'error' at once.
 */
export function connectViaProxy(
  proxyUrl: string | URL | ProxyAddress,
  host: string,
  port: number,
  options: ConnectViaProxyOptions = {},
): Promise<Socket> {
  let proxy: ProxyAddress;
  let target: string;
  try {
    proxy = typeof proxyUrl === 'string' || proxyUrl instanceof URL ? parseProxyUrl(String(proxyUrl), 'proxy URL') : proxyUrl;
    // Checked, not just joined: a CR/LF in the host would write extra header lines into the CONNECT.
    const peer = parsePeerAddress(`${host}:${port}`, 'CONNECT target');
    target = `${peer.host}:${peer.port}`;
  } catch (err) {
    return Promise.reject(err);
  }
  const timeoutMs = options.timeoutMs ?? DEFAULT_CONNECT_TIMEOUT_MS;
  return new Promise<Socket>((resolve, reject) => {
    const socket = net.connect({ host: proxy.host, port: proxy.port });
    let received: Buffer = Buffer.alloc(0);
    let settled = false;

    const fail = (why: string, cause?: unknown): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      socket.destroy();
      reject(new TracemeshError('TM_ERR_UPSTREAM', `CONNECT ${target} via ${proxy.url}: ${why}`, { cause }));
    };
    const timer = setTimeout(() => fail(`no answer within ${timeoutMs} ms`), timeoutMs);
    timer.unref();

    const onReadable = (): void => {
      for (let chunk: Buffer | null = socket.read() as Buffer | null; chunk !== null; chunk = socket.read() as Buffer | null) {
        received = received.length === 0 ? chunk : Buffer.concat([received, chunk]);
        const end = received.indexOf(HEAD_END);
        if (end === -1) {
          if (received.length <= MAX_CONNECT_RESPONSE_BYTES) continue;
          fail(`answer head longer than ${MAX_CONNECT_RESPONSE_BYTES} bytes`);
          return;
        }
        if (end + HEAD_END.length > MAX_CONNECT_RESPONSE_BYTES) {
          fail(`answer head longer than ${MAX_CONNECT_RESPONSE_BYTES} bytes`);
          return;
        }
        const statusLine = received.toString('latin1', 0, Math.min(received.indexOf('\r\n'), 200));
        const status = /^HTTP\/1\.[01] (\d{3})(?: |$)/.exec(statusLine);
        if (status === null) {
          fail(`answer is not HTTP: '${statusLine.slice(0, 80)}'`);
          return;
        }
        if (!status[1]?.startsWith('2')) {
          fail(`proxy refused: ${statusLine}`);
          return;
        }
        settled = true;
        clearTimeout(timer);
        // Stop reading here; once this listener is gone the stream is neither
        // paused nor flowing, so the caller's first 'data' listener or pipe()
        // gets the bytes that came after the head, unshifted back.
        socket.off('readable', onReadable);
        socket.off('error', onError);
        socket.off('end', onEnd);
        const rest = received.subarray(end + HEAD_END.length);
        if (rest.length > 0) socket.unshift(rest);
        resolve(socket);
        return;
      }
    };
    const onError = (err: Error): void => fail(errorMessage(err), err);
    const onEnd = (): void => fail('proxy closed the connection before answering');

    socket.on('readable', onReadable);
    socket.once('error', onError);
    socket.once('end', onEnd);
    socket.once('connect', () => {
      socket.write(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
    });
  });
}
