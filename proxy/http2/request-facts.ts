/**
 * RequestFacts (proxy/pipeline/types.ts) over an HTTP/2 request: what routing,
 * balancing and limits read about one stream. Built once per routed stream;
 * header() reads node's header object as it is (lowercase names already), so
 * nothing is copied unless a rule asks.
 */
import type { IncomingHttpHeaders } from 'node:http2';
import type { RequestFacts } from '../pipeline/types.js';
import { headerValue } from './request-headers.js';

export class Http2RequestFacts implements RequestFacts {
  readonly host: string;
  readonly method: string;
  readonly path: string;
  readonly query: string;

  constructor(
    private readonly headers: IncomingHttpHeaders,
    host: string,
    readonly port: number,
    method: string,
    /** :path as received, query included. */
    target: string,
    readonly sourceService: string,
    readonly sourceNamespace: string,
    readonly sourceAddress: string,
  ) {
    this.host = host.toLowerCase();
    this.method = method.toUpperCase();
    const q = target.indexOf('?');
    this.path = q === -1 ? target : target.slice(0, q);
    this.query = q === -1 ? '' : target.slice(q + 1);
  }

  header(name: string): string | undefined {
    return headerValue(this.headers, name);
  }
}
