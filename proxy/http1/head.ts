/**
 * One parsed HTTP/1 message head (request or response). A connection owns
 * one per direction and reuses it for every message: field positions are
 * kept as offsets into the decoded head text, and only the values the proxy
 * reads are ever sliced out of it. Every field is set in the constructor so
 * V8 keeps a single shape.
 */
import type { HeaderLookup } from '../telemetry/trace-context.js';
import { HEADER_KIND_COUNT, H_OTHER, headerKind } from './header-kinds.js';

export class HttpHead {
  /** The head as received, decoded as latin1, ending with the empty line (CRLF CRLF). */
  text = '';
  /** Why the last parse failed, for the 400 body and the span; '' when it did not. */
  error = '';

  // Start line. Requests fill method/target, responses statusCode and the reason's offsets.
  method = '';
  target = '';
  /** The x of HTTP/1.x. */
  versionMinor = 1;
  statusCode = 0;
  /** The reason phrase is text[reasonStart, reasonEnd); sliced only when asked for (HTTP/1.0 responses). */
  reasonStart = 0;
  reasonEnd = 0;
  /** Offset just past the start line's CRLF. */
  startLineEnd = 0;

  // Field lines: offsets into `text`, `count` of them valid.
  count = 0;
  readonly lineStarts: number[] = [];
  readonly nameEnds: number[] = [];
  readonly valueStarts: number[] = [];
  readonly valueEnds: number[] = [];
  readonly kinds: number[] = [];
  /** Index of the first field of each kind, -1 when absent. */
  readonly firstOf = new Int32Array(HEADER_KIND_COUNT);

  // Framing and connection semantics, derived while parsing.
  /** -1 when there is no Content-Length. */
  contentLength = -1;
  /** A Transfer-Encoding field is present. */
  transferEncoding = false;
  /** Number of transfer codings listed across all Transfer-Encoding fields. */
  transferCodings = 0;
  /** The last transfer coding is chunked. */
  chunked = false;
  /** chunked appears somewhere other than last (or twice). */
  chunkedMisplaced = false;
  /** A Transfer-Encoding field whose value is not exactly "chunked" (requests accept nothing else). */
  transferNotPlainChunked = false;
  connectionClose = false;
  connectionKeepAlive = false;
  connectionUpgrade = false;
  /** Other Connection options, lowercase: names of fields that end at this hop. */
  readonly connectionTokens: string[] = [];
  hostCount = 0;
  expectContinue = false;
  /** Any B3 propagation field (b3, x-b3-*) is present. */
  hasB3 = false;

  /** Lookup by lowercase name, for extractTraceContext; one function per head, not per request. */
  readonly lookup: HeaderLookup;

  constructor() {
    this.firstOf.fill(-1);
    this.lookup = (lowercaseName: string): string | undefined => this.get(lowercaseName);
  }

  reset(text: string): void {
    this.text = text;
    this.error = '';
    this.method = '';
    this.target = '';
    this.versionMinor = 1;
    this.statusCode = 0;
    this.reasonStart = 0;
    this.reasonEnd = 0;
    this.startLineEnd = 0;
    // Only the kinds the last message had were set: clearing them is cheaper than filling the table.
    const firstOf = this.firstOf;
    const kinds = this.kinds;
    for (let i = 0; i < this.count; i++) firstOf[kinds[i] as number] = -1;
    this.count = 0;
    this.contentLength = -1;
    this.transferEncoding = false;
    this.transferCodings = 0;
    this.chunked = false;
    this.chunkedMisplaced = false;
    this.transferNotPlainChunked = false;
    this.connectionClose = false;
    this.connectionKeepAlive = false;
    this.connectionUpgrade = false;
    if (this.connectionTokens.length !== 0) this.connectionTokens.length = 0;
    this.hostCount = 0;
    this.expectContinue = false;
    this.hasB3 = false;
  }

  /** The reason phrase of a response ('' when none). */
  get reason(): string {
    return this.text.slice(this.reasonStart, this.reasonEnd);
  }

  /** The end of the last field line (where the terminating empty line starts). */
  get fieldsEnd(): number {
    return this.text.length - 2;
  }

  /** The value of field i (OWS trimmed). */
  value(i: number): string {
    return this.text.slice(this.valueStarts[i], this.valueEnds[i]);
  }

  /** The name of field i, lowercase. */
  lowerName(i: number): string {
    return this.text.slice(this.lineStarts[i], this.nameEnds[i]).toLowerCase();
  }

  /** The value of the first field of a kind, or undefined. */
  valueOf(kind: number): string | undefined {
    const i = this.firstOf[kind] ?? -1;
    return i < 0 ? undefined : this.value(i);
  }

  /** All values of a kind joined by ", " (a list field sent as several lines), or undefined. */
  joinedValuesOf(kind: number): string | undefined {
    const first = this.firstOf[kind] ?? -1;
    if (first < 0) return undefined;
    let out = this.value(first);
    for (let i = first + 1; i < this.count; i++) {
      if (this.kinds[i] === kind) out += ', ' + this.value(i);
    }
    return out;
  }

  /** The first value of a field by lowercase name. */
  get(lowercaseName: string): string | undefined {
    const kind = headerKind(lowercaseName);
    if (kind !== H_OTHER) return this.valueOf(kind);
    for (let i = 0; i < this.count; i++) {
      if (this.kinds[i] === H_OTHER && this.lowerName(i) === lowercaseName) return this.value(i);
    }
    return undefined;
  }

  /** Whether field i is named in this message's Connection options (so it ends at this hop). */
  listedInConnection(i: number): boolean {
    const tokens = this.connectionTokens;
    if (tokens.length === 0) return false;
    return tokens.includes(this.lowerName(i));
  }
}
