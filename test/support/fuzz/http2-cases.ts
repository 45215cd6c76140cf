/**
 * HTTP/2 fuzz cases (h2c prior knowledge): a valid preface and SETTINGS, then
 * frames that are random, lying about their length, of unknown types, with
 * bad SETTINGS, flow-control abuse, broken HPACK, floods (CONTINUATION, PING,
 * SETTINGS, RST_STREAM "rapid reset"), frames on the wrong streams, or cut
 * short. Each case says what RFC 9113 makes certain about the answer:
 * `connectionError` (the server must GOAWAY or close), `survives` (frames a
 * server must accept; the session must still answer a PING after them),
 * `maxOk` (a malformed request must not be answered 200), and how many
 * streams carry requests that must end.
 */
import {
  F_ACK,
  F_END_HEADERS,
  F_END_STREAM,
  F_PADDED,
  F_PRIORITY,
  PREFACE,
  S_ENABLE_PUSH,
  S_HEADER_TABLE_SIZE,
  S_INITIAL_WINDOW_SIZE,
  S_MAX_CONCURRENT_STREAMS,
  S_MAX_FRAME_SIZE,
  S_MAX_HEADER_LIST_SIZE,
  T_CONTINUATION,
  T_DATA,
  T_HEADERS,
  T_PING,
  T_PRIORITY,
  T_PUSH_PROMISE,
  T_RST_STREAM,
  T_SETTINGS,
  T_WINDOW_UPDATE,
  frame,
  goaway,
  hpack,
  ping,
  priority,
  requestFields,
  rstStream,
  settings,
  windowUpdate,
} from './h2-frames.js';
import type { Random } from './random.js';

export interface Http2Case {
  readonly generator: string;
  readonly bytes: Buffer;
  readonly splits: readonly number[];
  /** Half-close after the last write. */
  readonly endAfterWrite: boolean;
  /** The bytes end with SENTINEL_PING: its ACK shows the server read everything before it. */
  readonly sentinel: boolean;
  /** The bytes begin with a correct preface, so the answer must be HTTP/2 frames. */
  readonly preface: boolean;
  /** Streams carrying complete requests; each must end (END_STREAM or RST_STREAM) unless the session ends. */
  readonly requestStreams: readonly number[];
  /** The bytes contain a connection error for certain: the server must send GOAWAY or close. */
  readonly connectionError: boolean;
  /** Everything sent is legal: the session must survive (the sentinel PING is answered, no GOAWAY). */
  readonly survives: boolean;
  /** Streams whose request is malformed for certain (RFC 9113 §8.1.1): none of them may get a 200. */
  readonly malformedStreams: readonly number[];
}

export interface Http2Target {
  /** `host:port` the listener routes to the h2c upstream. */
  readonly authority: string;
}

/** The opaque data of the PING that ends a case. */
export const SENTINEL = Buffer.from('fuzz-end', 'latin1');

const ALNUM = '0123456789abcdefghijklmnopqrstuvwxyz';

/** What a generator returns: the frames after the preface and the client SETTINGS. */
interface Body {
  frames: Buffer[];
  requestStreams?: number[];
  connectionError?: boolean;
  survives?: boolean;
  malformedStreams?: number[];
  /** The frames leave a header block open or a frame cut: a PING after them would be misread. */
  noSentinel?: boolean;
  /** Replace the preface (the bytes are not HTTP/2 from the first byte). */
  badPreface?: Buffer;
  /** Skip the client SETTINGS frame. */
  noSettings?: boolean;
}

type Generator = (rnd: Random, t: Http2Target) => Body;

function path(rnd: Random): string {
  return `/${rnd.string(rnd.range(0, 10), ALNUM)}`;
}

function headersFrame(streamId: number, block: Buffer, endStream: boolean, endHeaders = true): Buffer {
  return frame(T_HEADERS, (endStream ? F_END_STREAM : 0) | (endHeaders ? F_END_HEADERS : 0), streamId, block);
}

/** A complete request on `streamId`: GET without body, or POST with a body in DATA frames. */
function request(rnd: Random, t: Http2Target, streamId: number): Buffer[] {
  if (rnd.chance(0.6)) return [headersFrame(streamId, hpack(requestFields('GET', t.authority, path(rnd))), true)];
  const body = Buffer.from(rnd.string(rnd.range(0, 200), ALNUM), 'latin1');
  const fields = [...requestFields('POST', t.authority, path(rnd)), ['content-length', String(body.length)] as [string, string]];
  const out = [headersFrame(streamId, hpack(fields), false)];
  let pos = 0;
  do {
    const n = rnd.range(0, body.length - pos);
    const last = pos + n >= body.length;
    out.push(frame(T_DATA, last ? F_END_STREAM : 0, streamId, body.subarray(pos, pos + n)));
    pos += n;
  } while (pos < body.length);
  return out;
}

const validRequests: Generator = (rnd, t) => {
  const count = rnd.range(1, 6);
  const frames: Buffer[] = [];
  const streams: number[] = [];
  for (let i = 0; i < count; i++) {
    const id = 1 + 2 * i;
    streams.push(id);
    frames.push(...request(rnd, t, id));
    if (rnd.chance(0.2)) frames.push(windowUpdate(id, rnd.range(1, 65_535)));
  }
  if (rnd.chance(0.3)) frames.push(windowUpdate(0, rnd.range(1, 1_000_000)));
  return { frames, requestStreams: streams, survives: true };
};

const randomFrames: Generator = (rnd) => {
  const frames: Buffer[] = [];
  const count = rnd.range(1, 20);
  for (let i = 0; i < count; i++) {
    const type = rnd.chance(0.8) ? rnd.int(10) : rnd.int(256);
    const stream = rnd.pick([0, 1, 2, 3, 5, rnd.int(0x8000_0000), 0xffff_ffff]);
    frames.push(frame(type, rnd.int(256), stream, rnd.bytes(rnd.range(0, 64))));
  }
  return { frames };
};

const unknownTypes: Generator = (rnd, t) => {
  const frames: Buffer[] = [];
  const count = rnd.range(1, 10);
  for (let i = 0; i < count; i++) frames.push(frame(rnd.range(0x0b, 0xff), rnd.int(256), rnd.pick([0, 1, 3, 7]), rnd.bytes(rnd.range(0, 100))));
  // Extension frames must be ignored (RFC 9113 §4.1, §5.5), also between requests.
  frames.push(...request(rnd, t, 1));
  return { frames, requestStreams: [1], survives: true };
};

const wrongLengths: Generator = (rnd) => {
  switch (rnd.int(7)) {
    case 0:
      return { frames: [frame(T_SETTINGS, 0, 0, rnd.bytes(rnd.pick([1, 5, 7, 11])))], connectionError: true };
    case 1:
      return { frames: [frame(T_SETTINGS, F_ACK, 0, rnd.bytes(6))], connectionError: true };
    case 2:
      return { frames: [frame(T_PING, 0, 0, rnd.bytes(rnd.pick([0, 7, 9, 16])))], connectionError: true };
    case 3:
      return { frames: [frame(T_WINDOW_UPDATE, 0, 0, rnd.bytes(rnd.pick([0, 3, 5])))], connectionError: true };
    case 4:
      return { frames: [frame(T_RST_STREAM, 0, 1, rnd.bytes(rnd.pick([0, 3, 5])))], connectionError: true };
    case 5:
      // HEADERS larger than the default SETTINGS_MAX_FRAME_SIZE (16 KiB): a connection error (§4.2).
      return { frames: [frame(T_HEADERS, F_END_HEADERS | F_END_STREAM, 1, rnd.bytes(16_385))], connectionError: true };
    default: {
      // A header that claims more bytes than follow: the server waits for the rest.
      const payload = rnd.bytes(rnd.range(0, 32));
      return { frames: [frame(rnd.int(10), rnd.int(256), rnd.pick([0, 1]), payload, payload.length + rnd.range(1, 1000))], noSentinel: true };
    }
  }
};

const badSettings: Generator = (rnd) => {
  switch (rnd.int(7)) {
    case 0:
      return { frames: [settings([[S_ENABLE_PUSH, rnd.range(2, 0xffff_ffff)]])], connectionError: true };
    case 1:
      return { frames: [settings([[S_INITIAL_WINDOW_SIZE, rnd.range(0x8000_0000, 0xffff_ffff)]])], connectionError: true };
    case 2:
      return { frames: [settings([[S_MAX_FRAME_SIZE, rnd.pick([0, 1, 16_383, 0x100_0000, 0xffff_ffff])]])], connectionError: true };
    case 3:
      return { frames: [settings([[S_MAX_CONCURRENT_STREAMS, 1]], 0, rnd.range(1, 9))], connectionError: true };
    case 4:
      // Unknown identifiers must be ignored (§6.5.2).
      return { frames: [settings([[rnd.range(0x7, 0xffff), rnd.next()], [rnd.range(0x7, 0xffff), rnd.next()]])], survives: true };
    case 5:
      // Legal extremes.
      return {
        frames: [settings([[S_HEADER_TABLE_SIZE, rnd.pick([0, 1, 0xffff_ffff])], [S_MAX_CONCURRENT_STREAMS, rnd.pick([0, 1, 0xffff_ffff])], [S_MAX_HEADER_LIST_SIZE, rnd.pick([0, 1, 0xffff_ffff])], [S_MAX_FRAME_SIZE, rnd.pick([16_384, 0xff_ffff])], [S_INITIAL_WINDOW_SIZE, rnd.pick([0, 0x7fff_ffff])]])],
        survives: true,
      };
    default: {
      // A SETTINGS flood: each one owes an ACK.
      const count = rnd.range(100, 2_000);
      const frames: Buffer[] = [];
      for (let i = 0; i < count; i++) frames.push(settings([[S_INITIAL_WINDOW_SIZE, rnd.range(0, 0x7fff_ffff)]]));
      return { frames };
    }
  }
};

const windowUpdates: Generator = (rnd, t) => {
  switch (rnd.int(4)) {
    case 0:
      return { frames: [windowUpdate(0, 0)], connectionError: true };
    case 1:
      // The connection window past 2^31-1 (§6.9.1).
      return { frames: [windowUpdate(0, 0x7fff_ffff), windowUpdate(0, 0x7fff_ffff)], connectionError: true };
    case 2: {
      // A stream's window past 2^31-1 (a stream error) on an open stream.
      const fields = requestFields('POST', t.authority, path(rnd));
      return { frames: [headersFrame(1, hpack(fields), false), windowUpdate(1, 0x7fff_ffff), windowUpdate(1, 0x7fff_ffff), windowUpdate(1, 0)] };
    }
    default:
      return { frames: [windowUpdate(rnd.pick([1, 3, 0x7fff_ffff]), rnd.next())] };
  }
};

const badHpack: Generator = (rnd, t) => {
  switch (rnd.int(4)) {
    case 0:
      // Index 0 and an index past the tables are decoding errors: COMPRESSION_ERROR for the connection (RFC 7541 §6.1).
      return { frames: [headersFrame(1, Buffer.from([0x82, 0x86, rnd.pick([0x80, 0xff, 0xbf])]), true)], connectionError: true };
    case 1:
      // A string longer than the block.
      return { frames: [headersFrame(1, Buffer.from([0x82, 0x86, 0x00, 0x7f, 0xff, 0xff, 0x03, 0x61]), true)], connectionError: true };
    case 2:
      // A Huffman string of garbage, or a literal with an integer overflow.
      return { frames: [headersFrame(1, Buffer.from([0x82, 0x86, 0x00, 0x85, ...rnd.bytes(5), 0x01, 0x61]), true)] };
    default:
      return { frames: [headersFrame(1, Buffer.concat([hpack(requestFields('GET', t.authority, '/')), rnd.bytes(rnd.range(1, 64))]), true)] };
  }
};

const malformedRequest: Generator = (rnd, t) => {
  const base = requestFields('GET', t.authority, path(rnd));
  const fields = rnd.pick<Array<[string, string]>>([
    base.filter(([n]) => n !== ':path'),
    base.filter(([n]) => n !== ':method'),
    base.filter(([n]) => n !== ':scheme'),
    [...base, [':path', '/twice']],
    [...base, ['connection', 'keep-alive']],
    [...base, ['transfer-encoding', 'chunked']],
    [...base, ['te', 'gzip']],
    [...base, ['upgrade', 'h2c']],
    [...base, ['X-Upper', 'v']],
    [...base, [':bogus', 'v']],
    [['x-first', 'v'], ...base],
    [...base.filter(([n]) => n !== ':path'), [':path', '']],
  ]);
  if (rnd.chance(0.2)) {
    // Fields with bytes RFC 9113 §8.2.1 forbids. nghttp2 drops such a regular field and passes the
    // rest of the request on (NGHTTP2_ERR_IGN_HTTP_HEADER), so node never shows it to the proxy:
    // the request may be answered, but the field must not travel on.
    const bad = rnd.pick<[string, string]>([['x-bad', 'a\r\nb'], ['x-nul', 'a\x00b'], ['bad name', 'v'], ['x-lf', 'a\nb']]);
    return { frames: [headersFrame(1, hpack([...base, bad]), true)], requestStreams: [1] };
  }
  return { frames: [headersFrame(1, hpack(fields), true)], requestStreams: [1], malformedStreams: [1] };
};

const continuation: Generator = (rnd, t) => {
  const block = hpack(requestFields('GET', t.authority, path(rnd)));
  switch (rnd.int(4)) {
    case 0:
      return { frames: [frame(T_CONTINUATION, F_END_HEADERS, 1, block)], connectionError: true };
    case 1:
      // A header block interrupted by another frame (§6.10).
      return { frames: [headersFrame(1, block, true, false), ping(Buffer.alloc(8))], connectionError: true };
    case 2: {
      // A block split across HEADERS and CONTINUATION frames, finished properly.
      const cut = rnd.range(0, block.length);
      return {
        frames: [headersFrame(1, block.subarray(0, cut), true, false), frame(T_CONTINUATION, F_END_HEADERS, 1, block.subarray(cut))],
        requestStreams: [1],
        survives: true,
      };
    }
    default: {
      // A CONTINUATION flood that never ends its block (CVE-2024-27983 class).
      const frames = [headersFrame(1, block, true, false)];
      const count = rnd.range(100, 3_000);
      const filler = hpack([['x-flood', rnd.string(rnd.range(1, 40), ALNUM)]]);
      for (let i = 0; i < count; i++) frames.push(frame(T_CONTINUATION, 0, 1, rnd.chance(0.9) ? filler : rnd.bytes(rnd.range(0, 64))));
      return { frames, noSentinel: true };
    }
  }
};

const wrongStreams: Generator = (rnd, t) => {
  const block = hpack(requestFields('GET', t.authority, path(rnd)));
  switch (rnd.int(9)) {
    case 0:
      return { frames: [headersFrame(0, block, true)], connectionError: true };
    case 1:
      return { frames: [frame(T_DATA, F_END_STREAM, 0, Buffer.from('x'))], connectionError: true };
    case 2:
      // Client-initiated streams are odd (§5.1.1).
      return { frames: [headersFrame(rnd.pick([2, 4, 100]), block, true)], connectionError: true };
    case 3:
      // DATA on an idle stream (§5.1).
      return { frames: [frame(T_DATA, F_END_STREAM, rnd.pick([1, 3, 9]), Buffer.from('x'))], connectionError: true };
    case 4:
      return { frames: [rstStream(rnd.pick([1, 5]), 8)], connectionError: true };
    case 5:
      // Stream ids must increase (§5.1.1); nghttp2 ignores a lower one (it may be a stream it already closed), so no certainty here.
      return { frames: [headersFrame(5, block, true), headersFrame(3, block, true)] };
    case 6:
      // Clients never push (§8.4).
      return { frames: [frame(T_PUSH_PROMISE, F_END_HEADERS, 1, Buffer.concat([Buffer.from([0, 0, 0, 2]), block]))], connectionError: true };
    case 7:
      // DATA after the stream's END_STREAM: a stream (or connection) error, never a crash.
      return { frames: [headersFrame(1, block, true), frame(T_DATA, 0, 1, Buffer.from('late')), frame(T_DATA, F_END_STREAM, 1, Buffer.from('later'))] };
    default:
      return { frames: [frame(T_RST_STREAM, 0, 0, Buffer.from([0, 0, 0, 8]))], connectionError: true };
  }
};

const priorities: Generator = (rnd, t) => {
  const block = hpack(requestFields('GET', t.authority, path(rnd)));
  switch (rnd.int(4)) {
    case 0:
      // A stream depending on itself: a stream error (§5.3.1), never a loop.
      return { frames: [priority(1, 1, rnd.int(256))] };
    case 1: {
      const prio = Buffer.alloc(5);
      prio.writeUInt32BE(3, 0);
      prio[4] = 16;
      return { frames: [frame(T_HEADERS, F_END_HEADERS | F_END_STREAM | F_PRIORITY, 3, Buffer.concat([prio, block]))] };
    }
    case 2:
      return { frames: [frame(T_PRIORITY, 0, 1, rnd.bytes(rnd.pick([0, 4, 6])))] };
    default: {
      // A priority tree of many streams, legal.
      const frames: Buffer[] = [];
      const count = rnd.range(10, 200);
      for (let i = 0; i < count; i++) {
        const id = 1 + 2 * i;
        const parent = 1 + 2 * rnd.int(count);
        frames.push(priority(id, parent === id ? 0 : parent, rnd.int(256), rnd.chance(0.3)));
      }
      frames.push(...request(rnd, t, 501));
      return { frames, requestStreams: [501] };
    }
  }
};

const padding: Generator = (rnd, t) => {
  const block = hpack(requestFields('GET', t.authority, path(rnd)));
  if (rnd.chance(0.5)) {
    // Pad length at least the payload's length (§6.2).
    const padLength = block.length + 1 + rnd.range(0, 10);
    return { frames: [frame(T_HEADERS, F_END_HEADERS | F_END_STREAM | F_PADDED, 1, Buffer.concat([Buffer.from([padLength & 0xff]), block]))], connectionError: padLength <= 255 };
  }
  // Correct padding.
  const pad = rnd.range(0, 40);
  return {
    frames: [frame(T_HEADERS, F_END_HEADERS | F_END_STREAM | F_PADDED, 1, Buffer.concat([Buffer.from([pad]), block, Buffer.alloc(pad)]))],
    requestStreams: [1],
    survives: true,
  };
};

const rapidReset: Generator = (rnd, t) => {
  // Open-and-cancel streams (CVE-2023-44487 class), bounded.
  const count = rnd.range(20, 300);
  const frames: Buffer[] = [];
  const block = hpack(requestFields('GET', t.authority, '/reset'));
  for (let i = 0; i < count; i++) {
    const id = 1 + 2 * i;
    frames.push(headersFrame(id, block, true), rstStream(id, 8));
  }
  return { frames };
};

const pingFlood: Generator = (rnd) => {
  const count = rnd.range(100, 3_000);
  const frames: Buffer[] = [];
  for (let i = 0; i < count; i++) frames.push(ping(rnd.bytes(8), rnd.chance(0.1) ? F_ACK : 0));
  return { frames };
};

const goawayThenMore: Generator = (rnd, t) => ({
  frames: [...request(rnd, t, 1), goaway(rnd.pick([0, 1, 0x7fff_ffff]), rnd.range(0, 13)), ...request(rnd, t, 3), ping(rnd.bytes(8)), goaway(0, 2)],
});

const emptyData: Generator = (rnd, t) => {
  // Empty DATA frames without END_STREAM cost the server work and give nothing (CVE-2019-9518 class).
  const frames = [headersFrame(1, hpack([...requestFields('POST', t.authority, '/'), ['content-length', '0']]), false)];
  const count = rnd.range(100, 3_000);
  for (let i = 0; i < count; i++) frames.push(frame(T_DATA, 0, 1));
  frames.push(frame(T_DATA, F_END_STREAM, 1));
  return { frames };
};

const truncated: Generator = (rnd, t) => {
  const all = Buffer.concat([...validRequests(rnd, t).frames, ...randomFrames(rnd, t).frames]);
  return { frames: [all.subarray(0, rnd.range(1, all.length - 1))], noSentinel: true };
};

const byteFlips: Generator = (rnd, t) => {
  const all = Buffer.concat(validRequests(rnd, t).frames);
  const flips = rnd.range(1, 6);
  for (let i = 0; i < flips; i++) all[rnd.int(all.length)] = rnd.int(256);
  return { frames: [all], noSentinel: true };
};

const badPreface: Generator = (rnd) => {
  const preface = Buffer.from(PREFACE);
  const cut = rnd.chance(0.5);
  if (!cut) preface[rnd.int(preface.length)] = rnd.int(256);
  return { frames: [rnd.bytes(rnd.range(0, 64))], badPreface: cut ? preface.subarray(0, rnd.range(1, preface.length - 1)) : preface, noSentinel: true, noSettings: true };
};

const noSettings: Generator = (rnd, t) => ({ frames: [...request(rnd, t, 1)], noSettings: true });

const GENERATORS: ReadonlyArray<readonly [string, Generator, number]> = [
  // name, generator, weight
  ['valid-requests', validRequests, 3],
  ['random-frames', randomFrames, 4],
  ['unknown-types', unknownTypes, 1],
  ['wrong-lengths', wrongLengths, 2],
  ['bad-settings', badSettings, 2],
  ['window-update', windowUpdates, 1],
  ['bad-hpack', badHpack, 2],
  ['malformed-request', malformedRequest, 2],
  ['continuation', continuation, 2],
  ['wrong-streams', wrongStreams, 2],
  ['priority', priorities, 1],
  ['padding', padding, 1],
  ['rapid-reset', rapidReset, 1],
  ['ping-flood', pingFlood, 1],
  ['goaway-then-frames', goawayThenMore, 1],
  ['empty-data', emptyData, 1],
  ['truncated', truncated, 2],
  ['byte-flips', byteFlips, 2],
  ['bad-preface', badPreface, 1],
  ['no-settings', noSettings, 1],
];
const TOTAL_WEIGHT = GENERATORS.reduce((sum, [, , w]) => sum + w, 0);

function pickGenerator(rnd: Random): readonly [string, Generator, number] {
  let roll = rnd.int(TOTAL_WEIGHT);
  for (const entry of GENERATORS) {
    roll -= entry[2];
    if (roll < 0) return entry;
  }
  return GENERATORS[0] as readonly [string, Generator, number];
}

function splitsFor(rnd: Random, length: number): number[] {
  if (length < 2 || rnd.chance(0.7)) return [];
  const parts = rnd.range(2, Math.min(length, 16));
  const cuts = new Set<number>();
  while (cuts.size < parts - 1) cuts.add(rnd.range(1, length - 1));
  return [...cuts].sort((a, b) => a - b);
}

/** One fuzz case; the same Random state always gives the same case. */
export function http2Case(rnd: Random, t: Http2Target): Http2Case {
  const [generator, generate] = pickGenerator(rnd);
  const body = generate(rnd, t);
  const sentinel = body.noSentinel !== true && body.badPreface === undefined;
  const parts: Buffer[] = [body.badPreface ?? PREFACE];
  if (body.noSettings !== true) parts.push(settings(rnd.chance(0.5) ? [] : [[S_ENABLE_PUSH, 0], [S_INITIAL_WINDOW_SIZE, rnd.range(1024, 1 << 20)]]));
  parts.push(...body.frames);
  if (sentinel) parts.push(ping(SENTINEL));
  const bytes = Buffer.concat(parts);
  return {
    generator,
    bytes,
    splits: splitsFor(rnd, bytes.length),
    // A half-close would let the server end the session before it answers what `survives` and `requestStreams` wait for.
    endAfterWrite: body.survives !== true && body.requestStreams === undefined && rnd.chance(0.5),
    sentinel,
    preface: body.badPreface === undefined,
    requestStreams: body.requestStreams ?? [],
    connectionError: body.connectionError === true,
    survives: body.survives === true,
    malformedStreams: body.malformedStreams ?? [],
  };
}
