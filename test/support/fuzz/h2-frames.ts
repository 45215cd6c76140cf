/**
 * Just enough HTTP/2 (RFC 9113) to write frames by hand, right or wrong, and
 * to check what a server wrote back: the 9-byte frame header, a tiny HPACK
 * encoder (static-table indexes and literals without indexing, RFC 7541), and
 * a reader of a server's frame stream. Written here on purpose: a fuzzer must
 * be able to say things a correct library refuses to say.
 */

export const PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');

export const T_DATA = 0x0;
export const T_HEADERS = 0x1;
export const T_PRIORITY = 0x2;
export const T_RST_STREAM = 0x3;
export const T_SETTINGS = 0x4;
export const T_PUSH_PROMISE = 0x5;
export const T_PING = 0x6;
export const T_GOAWAY = 0x7;
export const T_WINDOW_UPDATE = 0x8;
export const T_CONTINUATION = 0x9;

export const F_END_STREAM = 0x1;
export const F_ACK = 0x1;
export const F_END_HEADERS = 0x4;
export const F_PADDED = 0x8;
export const F_PRIORITY = 0x20;

export const S_HEADER_TABLE_SIZE = 0x1;
export const S_ENABLE_PUSH = 0x2;
export const S_MAX_CONCURRENT_STREAMS = 0x3;
export const S_INITIAL_WINDOW_SIZE = 0x4;
export const S_MAX_FRAME_SIZE = 0x5;
export const S_MAX_HEADER_LIST_SIZE = 0x6;

export const DEFAULT_MAX_FRAME_SIZE = 16_384;

/** A frame whose header states `length` (defaults to the payload's; a different one makes a lying frame). */
export function frame(type: number, flags: number, streamId: number, payload: Buffer = Buffer.alloc(0), length = payload.length): Buffer {
  const header = Buffer.alloc(9);
  header.writeUIntBE(length & 0xff_ffff, 0, 3);
  header[3] = type & 0xff;
  header[4] = flags & 0xff;
  header.writeUInt32BE(streamId >>> 0, 5);
  return Buffer.concat([header, payload]);
}

export function settings(pairs: ReadonlyArray<readonly [number, number]>, flags = 0, streamId = 0): Buffer {
  const payload = Buffer.alloc(pairs.length * 6);
  pairs.forEach(([id, value], i) => {
    payload.writeUInt16BE(id & 0xffff, i * 6);
    payload.writeUInt32BE(value >>> 0, i * 6 + 2);
  });
  return frame(T_SETTINGS, flags, streamId, payload);
}

export function ping(opaque: Buffer, flags = 0, streamId = 0): Buffer {
  return frame(T_PING, flags, streamId, opaque);
}

export function windowUpdate(streamId: number, increment: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(increment >>> 0, 0);
  return frame(T_WINDOW_UPDATE, 0, streamId, payload);
}

export function rstStream(streamId: number, code: number): Buffer {
  const payload = Buffer.alloc(4);
  payload.writeUInt32BE(code >>> 0, 0);
  return frame(T_RST_STREAM, 0, streamId, payload);
}

export function goaway(lastStreamId: number, code: number): Buffer {
  const payload = Buffer.alloc(8);
  payload.writeUInt32BE(lastStreamId >>> 0, 0);
  payload.writeUInt32BE(code >>> 0, 4);
  return frame(T_GOAWAY, 0, 0, payload);
}

export function priority(streamId: number, dependsOn: number, weight: number, exclusive = false): Buffer {
  const payload = Buffer.alloc(5);
  payload.writeUInt32BE(((exclusive ? 0x8000_0000 : 0) | dependsOn) >>> 0, 0);
  payload[4] = weight & 0xff;
  return frame(T_PRIORITY, 0, streamId, payload);
}

/** HPACK integer with an N-bit prefix; `high` holds the bits above the prefix in the first byte. */
function hpackInt(value: number, prefixBits: number, high: number): number[] {
  const max = (1 << prefixBits) - 1;
  if (value < max) return [high | value];
  const out = [high | max];
  let rest = value - max;
  while (rest >= 128) {
    out.push((rest % 128) + 128);
    rest = Math.floor(rest / 128);
  }
  out.push(rest);
  return out;
}

function hpackString(text: string): number[] {
  const bytes = Buffer.from(text, 'latin1');
  return [...hpackInt(bytes.length, 7, 0), ...bytes];
}

/** Static-table indexes (RFC 7541 Appendix A) of the names and exact pairs used here. */
const STATIC_PAIR: Readonly<Record<string, number>> = { ':method GET': 2, ':method POST': 3, ':path /': 4, ':scheme http': 6 };
const STATIC_NAME: Readonly<Record<string, number>> = { ':authority': 1, ':method': 2, ':path': 4, ':scheme': 6, 'content-length': 28, 'content-type': 31 };

/** A header block: indexed when the pair is in the static table, else a literal without indexing (no dynamic state to get wrong). */
export function hpack(fields: ReadonlyArray<readonly [string, string]>): Buffer {
  const out: number[] = [];
  for (const [name, value] of fields) {
    const pair = STATIC_PAIR[`${name} ${value}`];
    if (pair !== undefined) {
      out.push(...hpackInt(pair, 7, 0x80));
      continue;
    }
    const nameIndex = STATIC_NAME[name];
    if (nameIndex !== undefined) out.push(...hpackInt(nameIndex, 4, 0x00));
    else out.push(0x00, ...hpackString(name));
    out.push(...hpackString(value));
  }
  return Buffer.from(out);
}

/** The fields of a plain request to `authority`. */
export function requestFields(method: string, authority: string, path: string): Array<[string, string]> {
  return [
    [':method', method],
    [':scheme', 'http'],
    [':authority', authority],
    [':path', path],
  ];
}

/** What a server wrote, frame by frame, and whether it was well-formed for a server. */
export interface H2Answer {
  /** The first frame was a SETTINGS frame (the server preface). */
  readonly sawPreface: boolean;
  readonly frames: number;
  /** GOAWAY error code, -1 when none came. */
  readonly goawayCode: number;
  /** Client streams that got END_STREAM or RST_STREAM from the server. */
  readonly endedStreams: ReadonlySet<number>;
  /** Streams whose response HEADERS began with the indexed `:status: 200` (0x88). */
  readonly okStreams: ReadonlySet<number>;
  /** PING ACKs seen, by opaque payload (hex). */
  readonly pingAcks: ReadonlySet<string>;
  /** What is wrong with the stream, undefined when nothing. */
  readonly malformed: string | undefined;
}

/** Types a server may send: everything but PUSH_PROMISE (push is off) and unknown extension frames node does not send. */
const SERVER_TYPES = new Set([T_DATA, T_HEADERS, T_PRIORITY, T_RST_STREAM, T_SETTINGS, T_PING, T_GOAWAY, T_WINDOW_UPDATE, T_CONTINUATION]);
/** Frames about the connection (stream 0 only) and frames about a stream (never stream 0). */
const CONNECTION_TYPES = new Set([T_SETTINGS, T_PING, T_GOAWAY]);
const STREAM_TYPES = new Set([T_DATA, T_HEADERS, T_PRIORITY, T_RST_STREAM, T_CONTINUATION]);

function checkFrame(type: number, flags: number, streamId: number, length: number): string | undefined {
  if (!SERVER_TYPES.has(type)) return `frame type ${type} from a server`;
  if (CONNECTION_TYPES.has(type) && streamId !== 0) return `frame type ${type} on stream ${streamId}`;
  if (STREAM_TYPES.has(type) && streamId === 0) return `frame type ${type} on stream 0`;
  if (STREAM_TYPES.has(type) && streamId % 2 === 0) return `frame type ${type} on even stream ${streamId} (push is off)`;
  if (type === T_SETTINGS && ((flags & F_ACK) !== 0 ? length !== 0 : length % 6 !== 0)) return `SETTINGS with length ${length}`;
  if (type === T_PING && length !== 8) return `PING with length ${length}`;
  if (type === T_GOAWAY && length < 8) return `GOAWAY with length ${length}`;
  if ((type === T_RST_STREAM || type === T_WINDOW_UPDATE) && length !== 4) return `frame type ${type} with length ${length}`;
  return undefined;
}

/**
 * Reads a server's bytes as frames. A last frame cut short is not an error
 * (the connection may have been cut by either side mid-write).
 */
export function readH2Answer(data: Buffer): H2Answer {
  const endedStreams = new Set<number>();
  const okStreams = new Set<number>();
  const pingAcks = new Set<string>();
  let pos = 0;
  let frames = 0;
  let goawayCode = -1;
  let sawPreface = false;
  let malformed: string | undefined;
  while (pos + 9 <= data.length && malformed === undefined) {
    const length = data.readUIntBE(pos, 3);
    const type = data[pos + 3] as number;
    const flags = data[pos + 4] as number;
    const streamId = data.readUInt32BE(pos + 5) & 0x7fff_ffff;
    if (frames === 0) {
      sawPreface = type === T_SETTINGS && (flags & F_ACK) === 0;
      if (!sawPreface) malformed = `first frame is type ${type}, not SETTINGS`;
    }
    malformed ??= checkFrame(type, flags, streamId, length);
    if (pos + 9 + length > data.length) break;
    const payload = data.subarray(pos + 9, pos + 9 + length);
    if (type === T_GOAWAY && length >= 8) goawayCode = payload.readUInt32BE(4);
    if (type === T_PING && (flags & F_ACK) !== 0) pingAcks.add(payload.toString('hex'));
    if (type === T_RST_STREAM) endedStreams.add(streamId);
    if ((type === T_HEADERS || type === T_DATA) && (flags & F_END_STREAM) !== 0) endedStreams.add(streamId);
    if (type === T_HEADERS && (flags & (F_PADDED | F_PRIORITY)) === 0 && payload[0] === 0x88) okStreams.add(streamId);
    frames++;
    pos += 9 + length;
  }
  return { sawPreface, frames, goawayCode, endedStreams, okStreams, pingAcks, malformed };
}
