/**
 * The few HTTP calls a proxy makes to the control plane, on node:http with
 * a keep-alive agent (no fetch: undici would stay resident in every sidecar
 * for three small requests a minute). Every call has a deadline.
 */
import http from 'node:http';
import { TracemeshError } from '../../src/lib/errors.js';

/** One per discovery client: stopping one proxy must not cut the requests of another in the same process. */
export function createAgent(): http.Agent {
  return new http.Agent({ keepAlive: true, maxSockets: 4 });
}

export interface SmallResponse {
  readonly status: number;
  readonly body: string;
}

const MAX_RESPONSE_BYTES = 1024 * 1024;

export function send(agent: http.Agent, base: URL, method: string, path: string, body: unknown, timeoutMs: number): Promise<SmallResponse> {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : JSON.stringify(body);
    const req = http.request(
      {
        agent,
        host: base.hostname,
        port: base.port,
        method,
        path,
        headers: payload === undefined ? {} : { 'content-type': 'application/json', 'content-length': Buffer.byteLength(payload) },
        timeout: timeoutMs,
      },
      (res) => {
        const chunks: Buffer[] = [];
        let size = 0;
        res.on('data', (chunk: Buffer) => {
          size += chunk.length;
          if (size > MAX_RESPONSE_BYTES) {
            req.destroy(new TracemeshError('TM_ERR_CP_PROTOCOL', `${method} ${path}: answer larger than ${MAX_RESPONSE_BYTES} bytes`));
            return;
          }
          chunks.push(chunk);
        });
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body: Buffer.concat(chunks).toString('utf8') }));
        res.on('error', reject);
      },
    );
    req.on('timeout', () => req.destroy(new TracemeshError('TM_ERR_CP_UNREACHABLE', `${method} ${base.origin}${path}: no answer within ${timeoutMs} ms`)));
    req.on('error', (err) => reject(err instanceof TracemeshError ? err : new TracemeshError('TM_ERR_CP_UNREACHABLE', `${method} ${base.origin}${path}: ${err.message}`, { cause: err })));
    req.end(payload);
  });
}
