/**
 * RequestFacts (what routing, balancing and limits read about a request)
 * over the HTTP/1 path's own parsed head: one object per connection, filled
 * per request with the strings already sliced; header() looks a field up in
 * the head only when a rule or a hash key asks for it.
 */
import type { RequestFacts } from '../pipeline/types.js';
import type { HttpHead } from './head.js';
import type { RequestTarget } from './request-target.js';

export class Http1RequestFacts implements RequestFacts {
  host = '';
  port = 0;
  method = '';
  path = '';
  query = '';
  sourceService = '';
  sourceNamespace = '';
  sourceAddress = '';

  constructor(private readonly head: HttpHead) {}

  fill(target: RequestTarget, method: string, sourceService: string, sourceNamespace: string, sourceAddress: string): void {
    this.host = target.host.toLowerCase();
    this.port = target.port;
    this.method = method;
    this.path = target.path;
    this.query = target.query;
    this.sourceService = sourceService;
    this.sourceNamespace = sourceNamespace;
    this.sourceAddress = sourceAddress;
  }

  header(name: string): string | undefined {
    return this.head.get(name);
  }
}
