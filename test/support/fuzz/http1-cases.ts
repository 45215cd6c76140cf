/**
 * HTTP/1 fuzz cases: fully random bytes, byte-level mutations of valid
 * requests, and structure-aware mutations aimed at the places where HTTP/1
 * parsers and proxies go wrong (request line, versions, line endings, field
 * syntax, framing, limits, request targets, CONNECT, pipelining, Expect,
 * Upgrade). Every case says how many requests it holds and, when the
 * mutation makes a request malformed for certain, how many well-formed
 * requests precede it: the proxy may answer those with the upstream's 200,
 * but the malformed one must not reach the upstream (RFC 9112 §3, §5, §6,
 * RFC 9110 §5, §8.6), so no further 2xx may come back.
 */
import type { Random } from './random.js';

export interface Http1Case {
  /** Which generator made it (failure reports group by this). */
  readonly generator: string;
  readonly bytes: Buffer;
  /** Requests in the case a lenient server could answer; the exchange is complete after that many final responses. */
  readonly requests: number;
  /**
   * Set when request number maxOk (0-based) is malformed for certain: at most
   * maxOk 2xx answers may come back. Undefined: any well-formed answer will do.
   */
  readonly maxOk: number | undefined;
  /** Offsets where the bytes are cut into separate writes (ascending, inside the buffer). */
  readonly splits: readonly number[];
  /** Half-close after the last write. */
  readonly endAfterWrite: boolean;
}

/** Where the case's well-formed requests are addressed. */
export interface Http1Target {
  /** `host:port` of a service the listener routes to the upstream (the inbound side routes anything to its app). */
  readonly authority: string;
}

interface Request {
  method: string;
  target: string;
  version: string;
  fields: Array<[string, string]>;
  /** Body bytes exactly as they go on the wire (already chunk-encoded when chunked). */
  body: string;
}

/** What a mutation made: the request's text and whether it is now malformed for certain. */
interface Mutated {
  readonly text: string;
  readonly malformed: boolean;
}

const TCHARS = "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const ALNUM = '0123456789abcdefghijklmnopqrstuvwxyz';
const PATH_CHARS = "abcdefghijklmnopqrstuvwxyz0123456789-._~!$&'()*+,;=:@/%";
/** Bytes that are never allowed in a field name (not tchar). */
const NON_TOKEN = ' "(),/:;<=>?@[\\]{}\t\x00\x01\x7f\x80\xff';
/** Bytes never allowed in a field value: CTLs other than HTAB, and DEL. */
const BAD_VALUE = '\x00\x01\x08\x0b\x0c\x0e\x1f\x7f';
const BODY_METHODS = ['POST', 'PUT', 'PATCH'];
const PLAIN_METHODS = ['GET', 'DELETE', 'OPTIONS'];
const BENIGN_FIELDS: ReadonlyArray<[string, string]> = [
  ['User-Agent', 'fuzz/1.0'],
  ['Accept', '*/*'],
  ['Accept-Encoding', 'gzip, deflate'],
  ['X-Request-Id', 'fuzz-req'],
  ['traceparent', '00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01'],
  ['Cookie', 'a=b; c=d'],
  ['Cache-Control', 'no-cache'],
  ['X-Forwarded-For', '10.0.0.1'],
  ['Connection', 'keep-alive'],
];

function latin1(text: string): Buffer {
  return Buffer.from(text, 'latin1');
}

function serialize(r: Request, eol = '\r\n'): string {
  let text = `${r.method} ${r.target} ${r.version}${eol}`;
  for (const [name, value] of r.fields) text += `${name}: ${value}${eol}`;
  return text + eol + r.body;
}

function chunked(rnd: Random, payload: string): string {
  let out = '';
  let pos = 0;
  while (pos < payload.length) {
    const n = rnd.range(1, Math.max(1, payload.length - pos));
    out += `${n.toString(16)}\r\n${payload.slice(pos, pos + n)}\r\n`;
    pos += n;
  }
  return out + '0\r\n\r\n';
}

/** A well-formed request: origin-form with Host, a few ordinary fields, and a body when the method has one. */
function validRequest(rnd: Random, t: Http1Target): Request {
  const withBody = rnd.chance(0.4);
  const method = withBody ? rnd.pick(BODY_METHODS) : rnd.pick(PLAIN_METHODS);
  let target = `/${rnd.string(rnd.range(0, 12), ALNUM)}`;
  if (rnd.chance(0.3)) target += `?q=${rnd.string(rnd.range(1, 8), ALNUM)}`;
  const fields: Array<[string, string]> = [['Host', t.authority]];
  const extra = rnd.range(0, 4);
  for (let i = 0; i < extra; i++) {
    const field = rnd.pick(BENIGN_FIELDS);
    fields.push([field[0], field[1]]);
  }
  let body = '';
  if (withBody) {
    const payload = rnd.string(rnd.range(0, 64), ALNUM);
    if (rnd.chance(0.5)) {
      fields.push(['Content-Length', String(payload.length)]);
      body = payload;
    } else {
      fields.push(['Transfer-Encoding', 'chunked']);
      body = chunked(rnd, payload);
    }
  }
  return { method, target, version: 'HTTP/1.1', fields, body };
}

function ok(text: string): Mutated {
  return { text, malformed: false };
}

function bad(text: string): Mutated {
  return { text, malformed: true };
}

/** Inserts a field at a random position after Host. */
function withField(rnd: Random, r: Request, name: string, value: string): Request {
  const fields = r.fields.slice();
  fields.splice(rnd.range(1, fields.length), 0, [name, value]);
  return { ...r, fields };
}

function withoutFraming(r: Request): Request {
  return { ...r, fields: r.fields.filter(([n]) => !/^(content-length|transfer-encoding)$/i.test(n)), body: '' };
}

type Mutation = (rnd: Random, t: Http1Target) => Mutated;

/** Byte-level damage to a valid request: flips, inserts, deletes, duplications. Outcome unknown. */
const byteMutation: Mutation = (rnd, t) => {
  const bytes = [...latin1(serialize(validRequest(rnd, t)))];
  const edits = rnd.range(1, 8);
  for (let i = 0; i < edits && bytes.length > 0; i++) {
    const at = rnd.int(bytes.length);
    switch (rnd.int(5)) {
      case 0:
        bytes[at] = rnd.int(256);
        break;
      case 1:
        bytes.splice(at, 0, rnd.int(256));
        break;
      case 2:
        bytes.splice(at, 1);
        break;
      case 3:
        bytes.splice(at, 0, ...bytes.slice(at, at + rnd.range(1, 16)));
        break;
      default:
        bytes[at] = rnd.pick([0x0d, 0x0a, 0x20, 0x3a, 0x09, 0x00]);
    }
  }
  return ok(Buffer.from(bytes).toString('latin1'));
};

const method: Mutation = (rnd, t) => {
  const r = validRequest(rnd, t);
  if (rnd.chance(0.5)) return ok(serialize({ ...withoutFraming(r), method: rnd.string(rnd.range(1, 16), TCHARS) }));
  // A method with a non-token byte in it (or empty).
  const name = rnd.string(rnd.range(0, 6), TCHARS) + rnd.pick([...NON_TOKEN].filter((c) => c !== ' ')) + rnd.string(rnd.range(0, 6), TCHARS);
  return bad(serialize({ ...withoutFraming(r), method: name }));
};

const requestLine: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const rest = serialize(r).slice(serialize(r).indexOf('\r\n'));
  const line = rnd.pick([
    `${r.method}  ${r.target} HTTP/1.1`,
    `${r.method} ${r.target}  HTTP/1.1`,
    `${r.method} ${r.target} HTTP/1.1 `,
    `${r.method}\t${r.target} HTTP/1.1`,
    `${r.method} ${r.target}\tHTTP/1.1`,
    `${r.method} HTTP/1.1`,
    `${r.method} ${r.target}`,
    `${r.method} ${r.target} `,
    `${r.method}`,
    ` ${r.method} ${r.target} HTTP/1.1`,
    `${r.method} ${r.target} extra HTTP/1.1`,
    `${r.method} ${r.target}\x00 HTTP/1.1`,
    `${r.method} ${r.target}\x7f HTTP/1.1`,
    `${r.method} /a b HTTP/1.1`,
    `${r.method} ${r.target}HTTP/1.1`,
    `${r.method}${r.target} HTTP/1.1`,
  ]);
  return bad(line + rest);
};

const version: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const acceptable = ['HTTP/1.0', 'HTTP/1.2', 'HTTP/1.9'];
  const malformed = ['HTTP/9.0', 'HTTP/2.0', 'HTTP/0.9', 'http/1.1', 'HTTP/1.1.1', 'HTTP/1.10', 'HTTP/1', 'HTTP/', 'HTTP/11', 'HTTPS/1.1', 'HTTP/1.a', 'HTTP/a.1', 'HTTP /1.1', 'HTTP/1,1'];
  if (rnd.chance(0.25)) return ok(serialize({ ...r, version: rnd.pick(acceptable) }));
  return bad(serialize({ ...r, version: rnd.pick(malformed) }));
};

const lineEndings: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const text = serialize(r);
  switch (rnd.int(6)) {
    case 0:
      return bad(serialize(r, '\n'));
    case 1:
      return bad(serialize(r, '\r'));
    case 2: {
      // One line ends in a bare LF.
      const lines = text.split('\r\n');
      const at = rnd.range(0, Math.max(0, lines.length - 3));
      return bad([...lines.slice(0, at), `${lines[at] ?? ''}\n${lines[at + 1] ?? ''}`, ...lines.slice(at + 2)].join('\r\n'));
    }
    case 3:
      // A bare CR inside a field value.
      return bad(serialize(withField(rnd, r, 'X-Fuzz', `a\rb`)));
    case 4:
      // CRLF inside a value: the second half is a line without a colon.
      return bad(serialize(withField(rnd, r, 'X-Fuzz', `a\r\nb c`)));
    default:
      // A bare LF inside a value.
      return bad(serialize(withField(rnd, r, 'X-Fuzz', `a\nb`)));
  }
};

const obsFold: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const fold = rnd.pick(['\r\n ', '\r\n\t', '\r\n  \t']);
  return bad(serialize(withField(rnd, r, 'X-Folded', `first${fold}second`)));
};

const fieldName: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const name = rnd.pick([
    // Not ':' (that would only end the name early, leaving a valid field).
    `X-Fuzz${rnd.pick([...NON_TOKEN].filter((c) => c !== ':'))}${rnd.string(rnd.range(0, 4), ALNUM)}`,
    'X-Fuzz ',
    'X-Fuzz\t',
    ' X-Fuzz',
    '',
    'X Fuzz',
    'Host ',
    'Content-Length ',
    'Transfer-Encoding\t',
  ]);
  if (name === '') return bad(serialize(r).replace('\r\n\r\n', '\r\n: empty\r\n\r\n'));
  return bad(serialize(withField(rnd, r, name, 'v')));
};

const fieldValue: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  if (rnd.chance(0.4)) {
    // obs-text (0x80–0xFF) is allowed in values; whether the app likes it is its business.
    return ok(serialize(withField(rnd, r, 'X-Fuzz', latin1String(rnd, rnd.range(1, 16), 0x80, 0xff))));
  }
  const value = rnd.string(rnd.range(0, 4), ALNUM) + rnd.pick([...BAD_VALUE]) + rnd.string(rnd.range(0, 4), ALNUM);
  return bad(serialize(withField(rnd, r, rnd.pick(['X-Fuzz', 'Host', 'Accept', 'Content-Type']), value)));
};

function latin1String(rnd: Random, n: number, lo: number, hi: number): string {
  let s = '';
  for (let i = 0; i < n; i++) s += String.fromCharCode(rnd.range(lo, hi));
  return s;
}

const contentLength: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const payload = rnd.string(rnd.range(1, 32), ALNUM);
  const n = payload.length;
  const post = { ...r, method: 'POST', body: payload };
  switch (rnd.int(8)) {
    case 0:
      return ok(serialize({ ...post, fields: [...post.fields, ['Content-Length', String(n)], ['Content-Length', String(n)]] }));
    case 1:
      return ok(serialize({ ...post, fields: [...post.fields, ['Content-Length', `${n}, ${n}`]] }));
    case 2:
      return bad(serialize({ ...post, fields: [...post.fields, ['Content-Length', String(n)], ['Content-Length', String(n + 1)]] }));
    case 3:
      return bad(serialize({ ...post, fields: [...post.fields, ['Content-Length', `${n}, ${n + 1}`]] }));
    case 4:
      return bad(serialize({ ...post, fields: [...post.fields, ['Content-Length', rnd.pick([`-${n}`, `+${n}`, `0x${n.toString(16)}`, `${n} ${n}`, '', 'abc', `${n}.0`, '99999999999999999999', `${n};x`])]] }));
    case 5:
      // Both framings: a classic smuggling shape.
      return bad(serialize({ ...post, fields: [...post.fields, ['Content-Length', String(n)], ['Transfer-Encoding', 'chunked']], body: chunked(rnd, payload) }));
    case 6:
      return bad(serialize({ ...post, fields: [...post.fields, ['Transfer-Encoding', 'chunked'], ['Content-Length', String(n)]], body: chunked(rnd, payload) }));
    default:
      // Truncated body: the upstream cannot answer a request it never received whole.
      return bad(serialize({ ...post, fields: [...post.fields, ['Content-Length', String(n + rnd.range(1, 100))]] }));
  }
};

const transferEncoding: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const payload = rnd.string(rnd.range(1, 32), ALNUM);
  const post = { ...r, method: 'POST', body: chunked(rnd, payload) };
  if (rnd.chance(0.3)) {
    const fine = rnd.pick([' chunked', 'Chunked', 'CHUNKED', 'chunked ', '\tchunked']);
    return ok(serialize({ ...post, fields: [...post.fields, ['Transfer-Encoding', fine]] }));
  }
  const value = rnd.pick(['gzip', 'chunked, gzip', 'gzip, chunked', 'chunked, chunked', 'identity', 'xchunked', 'chunkedx', 'chunk', 'deflate', 'chunked,', ',gzip']);
  if (value === 'chunked,') return ok(serialize({ ...post, fields: [...post.fields, ['Transfer-Encoding', value]] }));
  if (rnd.chance(0.2)) {
    // Chunked in HTTP/1.0 is not a framing a 1.0 recipient knows (RFC 9112 §6.1).
    return bad(serialize({ ...post, version: 'HTTP/1.0', fields: [...post.fields, ['Transfer-Encoding', 'chunked']] }));
  }
  return bad(serialize({ ...post, fields: [...post.fields, ['Transfer-Encoding', value]] }));
};

const chunks: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const head = serialize({ ...r, method: 'POST', fields: [...r.fields, ['Transfer-Encoding', 'chunked']] });
  const body = rnd.pick([
    'fffffffffffffffffff\r\nabc\r\n0\r\n\r\n',
    '10000000000000000\r\nabc\r\n0\r\n\r\n',
    '-1\r\nabc\r\n0\r\n\r\n',
    '0x3\r\nabc\r\n0\r\n\r\n',
    'g\r\nabc\r\n0\r\n\r\n',
    '\r\nabc\r\n0\r\n\r\n',
    '3\r\nabcX\r\n0\r\n\r\n',
    '3\r\nabc0\r\n\r\n',
    '3\nabc\r\n0\r\n\r\n',
    '3\r\nab',
    '5\r\nabc\r\n',
    '3 3\r\nabc\r\n0\r\n\r\n',
    '3\x00\r\nabc\r\n0\r\n\r\n',
  ]);
  if (rnd.chance(0.3)) {
    // Extensions: syntactically dubious, but some proxies pass them on; the outcome is the app's.
    const ext = rnd.pick([';', ';x', ';x=', ';x="unterminated', ';x=\x01', '; x = y', `;${rnd.string(rnd.range(1, 200), TCHARS)}`, ';\xff\xfe']);
    return ok(`${head}3${ext}\r\nabc\r\n0\r\n\r\n`);
  }
  return bad(head + body);
};

const hugeHead: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  switch (rnd.int(4)) {
    case 0:
      // One field line over 60 KiB.
      return bad(serialize(withField(rnd, r, 'X-Big', 'a'.repeat(rnd.range(61 * 1024, 70 * 1024)))));
    case 1: {
      // More than 100 fields, each small.
      const fields = r.fields.slice();
      const count = rnd.range(101, 160);
      for (let i = 0; i < count; i++) fields.push([`X-F${i}`, 'v']);
      return bad(serialize({ ...r, fields }));
    }
    case 2:
      // Target over 16 KiB.
      return bad(serialize({ ...r, target: `/${'u'.repeat(rnd.range(16 * 1024 + 1, 20 * 1024))}` }));
    default: {
      // Many medium fields adding up to more than 60 KiB.
      const fields = r.fields.slice();
      for (let i = 0; i < 40; i++) fields.push([`X-M${i}`, 'm'.repeat(1600)]);
      return bad(serialize({ ...r, fields }));
    }
  }
};

const absoluteForm: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const path = `/${rnd.string(rnd.range(0, 8), PATH_CHARS)}`;
  if (rnd.chance(0.25)) return ok(serialize({ ...r, target: `http://${t.authority}${path}` }));
  const host = t.authority.split(':')[0] ?? 'x';
  const target = rnd.pick([
    `http://${host}:0${path}`,
    `http://${host}:99999${path}`,
    `http://${host}:65536${path}`,
    `http://${host}:8a${path}`,
    `http://${host}:-1${path}`,
    `http://[::1${path}`,
    `http://[::1:8080${path}`,
    `http://[zz::1]:80${path}`,
    `http://${path}`,
    `http://:8080${path}`,
    `http://user@${t.authority}${path}`,
    `http://${host}\x7f:80${path}`,
    `http://ho st:80${path}`,
    `https://${t.authority}${path}`,
    `ftp://${t.authority}${path}`,
    `${t.authority}${path}`,
  ]);
  return bad(serialize({ ...r, target }));
};

const hostField: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const host = t.authority.split(':')[0] ?? 'x';
  switch (rnd.int(3)) {
    case 0:
      return bad(serialize({ ...r, fields: r.fields.filter(([n]) => n !== 'Host') }));
    case 1:
      return bad(serialize({ ...r, fields: [...r.fields, ['Host', t.authority]] }));
    default: {
      const value = rnd.pick([`${host}:0`, `${host}:99999`, `${host}:abc`, '[::1', `${host} x`, `${host}/x`, `user@${host}`, `${host}:80:80`]);
      return bad(serialize({ ...r, fields: [['Host', value], ...r.fields.slice(1)] }));
    }
  }
};

const connect: Mutation = (rnd, t) => {
  const host = t.authority.split(':')[0] ?? 'x';
  if (rnd.chance(0.25)) {
    // A tunnel to the service with a request inside (inbound listeners refuse CONNECT).
    return ok(`CONNECT ${t.authority} HTTP/1.1\r\nHost: ${t.authority}\r\n\r\n${serialize(validRequest(rnd, t))}`);
  }
  const target = rnd.pick([host, `:${t.authority.split(':')[1] ?? '80'}`, `${host}:0`, `${host}:99999`, `${host}:`, '[::1:80', '/path', `http://${t.authority}/`, `${host}:8a`, `us er@${host}:80`, '']);
  return bad(`CONNECT ${target} HTTP/1.1\r\nHost: ${target}\r\n\r\n`);
};

const expect: Mutation = (rnd, t) => {
  const r = validRequest(rnd, t);
  const value = rnd.pick(['100-continue', '100-Continue', 'junk', '100-continue, junk', '', '200-ok', latin1String(rnd, 8, 0x80, 0xff)]);
  return ok(serialize(withField(rnd, r, 'Expect', value)));
};

const upgrade: Mutation = (rnd, t) => {
  const r = withoutFraming(validRequest(rnd, t));
  const value = rnd.pick(['websocket', 'h2c', 'junk/1.0', '', '\xff\xfe', 'websocket, h2c', 'TLS/1.2']);
  const conn = rnd.pick(['Upgrade', 'upgrade, keep-alive', 'close, Upgrade', 'junk']);
  return ok(serialize({ ...r, method: 'GET', fields: [...r.fields, ['Connection', conn], ['Upgrade', value]] }));
};

/** A request cut short before its end; the head or body never completes (slowloris when not half-closed). */
const truncated: Mutation = (rnd, t) => {
  const text = serialize(validRequest(rnd, t));
  return bad(text.slice(0, rnd.range(1, text.length - 1)));
};

/** Mutations whose result is malformed for certain, for the pipelined mixes. */
const MALFORMING: readonly Mutation[] = [requestLine, lineEndings, obsFold, fieldName, hostField, absoluteForm];

const STRUCTURED: ReadonlyArray<readonly [string, Mutation]> = [
  ['byte-mutation', byteMutation],
  ['method', method],
  ['request-line', requestLine],
  ['version', version],
  ['line-endings', lineEndings],
  ['obs-fold', obsFold],
  ['field-name', fieldName],
  ['field-value', fieldValue],
  ['content-length', contentLength],
  ['transfer-encoding', transferEncoding],
  ['chunks', chunks],
  ['huge-head', hugeHead],
  ['absolute-form', absoluteForm],
  ['host-field', hostField],
  ['connect', connect],
  ['expect', expect],
  ['upgrade', upgrade],
  ['truncated', truncated],
];

/** Random write boundaries: usually none, sometimes a few, sometimes many (down to single bytes for short inputs). */
function splitsFor(rnd: Random, length: number): number[] {
  if (length < 2 || rnd.chance(0.6)) return [];
  const parts = rnd.chance(0.3) ? Math.min(length, 64) : rnd.range(2, Math.min(length, 8));
  const cuts = new Set<number>();
  while (cuts.size < parts - 1) cuts.add(rnd.range(1, length - 1));
  return [...cuts].sort((a, b) => a - b);
}

/**
 * The methods protocol sniffers know a request line by. Bytes that do not
 * start with one of them and a space are not HTTP/1 to a sniffer: an inbound
 * listener passes them to the app as opaque TCP, so what comes back is the
 * app's answer, not the proxy's.
 */
const SNIFFED_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'].map((m) => latin1(`${m} `));

function sniffedAsHttp1(bytes: Buffer): boolean {
  return SNIFFED_METHODS.some((m) => bytes.subarray(0, m.length).equals(m));
}

function make(rnd: Random, generator: string, bytes: Buffer, requests: number, maxOk: number | undefined): Http1Case {
  const judged = maxOk !== undefined && (maxOk > 0 || sniffedAsHttp1(bytes)) ? maxOk : undefined;
  return { generator, bytes, requests, maxOk: judged, splits: splitsFor(rnd, bytes.length), endAfterWrite: rnd.chance(0.5) };
}

/** One fuzz case; the same Random state always gives the same case. */
export function http1Case(rnd: Random, t: Http1Target): Http1Case {
  const roll = rnd.float();
  if (roll < 0.1) {
    // Random bytes; half of them behind a method so detection hands them to the HTTP/1 parser, not to TCP.
    const prefix = rnd.chance(0.5) ? `${rnd.pick(['GET', 'POST', 'PUT', 'OPTIONS'])} ` : '';
    return make(rnd, 'random-bytes', Buffer.concat([latin1(prefix), rnd.bytes(rnd.range(1, 512))]), 1, undefined);
  }
  if (roll < 0.2) {
    // Pipelined: valid requests, then a malformed one, then maybe more valid ones (which must never be answered).
    const before = rnd.range(1, 4);
    const after = rnd.range(0, 2);
    let text = '';
    for (let i = 0; i < before; i++) text += serialize(validRequest(rnd, t));
    const m = rnd.pick(MALFORMING)(rnd, t);
    text += m.text;
    for (let i = 0; i < after; i++) text += serialize(validRequest(rnd, t));
    return make(rnd, 'pipelined-mix', latin1(text), before + 1 + after, m.malformed ? before : undefined);
  }
  const [generator, mutation] = rnd.pick(STRUCTURED);
  // Behind a valid request, a malformed one is read by the proxy's own parser (detection only knows method names).
  const prefixed = rnd.chance(0.3);
  const m = mutation(rnd, t);
  const prefix = prefixed ? serialize(validRequest(rnd, t)) : '';
  const first = prefixed ? 1 : 0;
  return make(rnd, generator, latin1(prefix + m.text), first + 1, m.malformed ? first : undefined);
}

/** A plain valid GET, for the checks before and after the fuzzing. */
export function validGet(t: Http1Target, path = '/after-fuzz'): Buffer {
  return latin1(`GET ${path} HTTP/1.1\r\nHost: ${t.authority}\r\nConnection: close\r\n\r\n`);
}
