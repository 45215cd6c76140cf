/**
 * A GET of a JSON answer from a peer demo service over HTTP/1.1, direct or
 * through the explicit-mode proxy (an absolute-form request line,
 * `GET http://reviews:9080/reviews/42`, sent to the proxy's outbound
 * listener, which is how `http_proxy` clients talk to a forward proxy).
 * node:http comes from loadHttp(), so the HTTP instrumentation makes the
 * CLIENT span and puts the traceparent on the request.
 */
import type { Agent, IncomingMessage } from 'node:http';
import { TracemeshError, errorMessage } from '../../lib/errors.js';
import type { loadHttp } from '../instrument.js';
import type { PeerAddress, ProxyAddress } from './config.js';

type Http = ReturnType<typeof loadHttp>;

export interface HttpJsonClientOptions {
  /** The peer's name for people and errors (`reviews`). */
  readonly peer: string;
  /** Where the peer listens, as this app names it (`reviews:9080` behind a proxy). */
  readonly target: PeerAddress;
  /** Explicit-mode proxy; undefined connects to `target` directly. */
  readonly proxy: ProxyAddress | undefined;
  /** The whole exchange, from sending to the last byte of the answer. */
  readonly timeoutMs: number;
}

export interface JsonAnswer {
  readonly status: number;
  readonly body: unknown;
}

/** Answers bigger than this are a bug in the peer; the demo's are a few hundred bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;
const MAX_SOCKETS = 64;

export class HttpJsonClient {
  private readonly http: Http;
  private readonly options: HttpJsonClientOptions;
  private readonly agent: Agent;
  private readonly where: string;

  constructor(http: Http, options: HttpJsonClientOptions) {
    this.http = http;
    this.options = options;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: MAX_SOCKETS });
    this.where = `${options.peer} at ${options.target.host}:${options.target.port}`;
  }

  /** GET `path`; resolves with any status (the caller decides what an error is), rejects on transport failures and bad JSON. */
  get(path: string): Promise<JsonAnswer> {
    const { target, proxy, timeoutMs } = this.options;
    const authority = `${target.host}:${target.port}`;
    const requestOptions =
      proxy === undefined
        ? { host: target.host, port: target.port, path }
        : { host: proxy.host, port: proxy.port, path: `http://${authority}${path}` };
    return new Promise<JsonAnswer>((resolve, reject) => {
      const request = this.http.request(
        { ...requestOptions, method: 'GET', agent: this.agent, headers: { host: authority, accept: 'application/json' }, timeout: timeoutMs },
        (response: IncomingMessage) => {
          const chunks: Buffer[] = [];
          let size = 0;
          response.on('data', (chunk: Buffer) => {
            size += chunk.length;
            if (size > MAX_ANSWER_BYTES) {
              request.destroy(new Error(`answer larger than ${MAX_ANSWER_BYTES} bytes`));
              return;
            }
            chunks.push(chunk);
          });
          response.once('error', (err) => reject(this.failure(err)));
          response.once('end', () => {
            const text = Buffer.concat(chunks).toString('utf8');
            let body: unknown;
            try {
              body = text === '' ? undefined : JSON.parse(text);
            } catch {
              reject(new TracemeshError('TM_ERR_UPSTREAM', `${this.where}: HTTP ${response.statusCode ?? 0} with an answer that is not JSON`));
              return;
            }
            resolve({ status: response.statusCode ?? 0, body });
          });
        },
      );
      request.once('timeout', () => request.destroy(new Error(`no answer within ${timeoutMs} ms`)));
      request.once('error', (err) => reject(this.failure(err)));
      request.end();
    });
  }

  close(): void {
    this.agent.destroy();
  }

  private failure(err: unknown): TracemeshError {
    return new TracemeshError('TM_ERR_UPSTREAM', `${this.where}: ${errorMessage(err)}`, { cause: err });
  }
}
