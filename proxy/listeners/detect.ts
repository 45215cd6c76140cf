/**
 * Protocol detection on accept, before any protocol code runs (Envoy's
 * listener filters): HTTP/2 prior knowledge by its connection preface, TLS by
 * its record header (the SNI is read and the bytes are kept), HTTP/1.x by a
 * known method and a space, anything else opaque TCP. A client that sends
 * nothing within `timeoutMs` is treated as a server-first protocol (SMTP,
 * MySQL…) and goes to TCP, so such protocols never hang.
 */
import type { Socket } from 'node:net';
import type { DetectedProtocol } from './accepted.js';
import { readSni, tlsRecordBytesMissing } from './tls-sni.js';

const H2_PREFACE = Buffer.from('PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n', 'latin1');
/** TLS records are at most 16 KiB + header; a ClientHello bigger than that is read as far as this. */
const MAX_TLS_PEEK = 16 * 1024 + 5;

const HTTP1_METHODS = ['GET', 'POST', 'PUT', 'DELETE', 'HEAD', 'OPTIONS', 'PATCH', 'CONNECT', 'TRACE'].map((m) => Buffer.from(`${m} `, 'latin1'));
const LONGEST_METHOD = Math.max(...HTTP1_METHODS.map((m) => m.length));

type Verdict = DetectedProtocol | 'more';

function startsWithPrefixOf(buf: Buffer, pattern: Buffer): 'yes' | 'partial' | 'no' {
  const n = Math.min(buf.length, pattern.length);
  for (let i = 0; i < n; i++) if (buf[i] !== pattern[i]) return 'no';
  return buf.length >= pattern.length ? 'yes' : 'partial';
}

/** Classifies the bytes seen so far; 'more' while they are a prefix of something recognisable. */
export function classify(buf: Buffer): Verdict {
  if (buf.length === 0) return 'more';
  const h2 = startsWithPrefixOf(buf, H2_PREFACE);
  if (h2 === 'yes') return 'h2c';
  if (buf[0] === 0x16) {
    if (buf.length < 3) return 'more';
    if (buf[1] === 0x03 && (buf[2] as number) <= 0x04) {
      return tlsRecordBytesMissing(buf) > 0 && buf.length < MAX_TLS_PEEK ? 'more' : 'tls';
    }
    return 'tcp';
  }
  let partial = h2 === 'partial';
  for (const method of HTTP1_METHODS) {
    const m = startsWithPrefixOf(buf, method);
    if (m === 'yes') return 'http1';
    if (m === 'partial') partial = true;
  }
  if (partial && buf.length < LONGEST_METHOD + H2_PREFACE.length) return 'more';
  return 'tcp';
}

export interface Detection {
  protocol: DetectedProtocol;
  head: Buffer;
  sni: string;
}

/**
 * Reads from a fresh socket until the protocol is known, the detection
 * timeout passes, or the client closes (undefined: nothing to forward). The
 * socket is left paused with no 'data' listener; the bytes read are returned.
 */
export function detectProtocol(socket: Socket, timeoutMs: number, done: (detection: Detection | undefined) => void): void {
  let head: Buffer = Buffer.alloc(0);
  let finished = false;

  const finish = (protocol: DetectedProtocol | undefined): void => {
    if (finished) return;
    finished = true;
    clearTimeout(timer);
    socket.removeListener('data', onData);
    socket.removeListener('end', onEnd);
    socket.removeListener('close', onEnd);
    socket.pause();
    if (protocol === undefined) {
      done(undefined);
      return;
    }
    done({ protocol, head, sni: protocol === 'tls' ? readSni(head) : '' });
  };
  const onData = (chunk: Buffer): void => {
    head = head.length === 0 ? chunk : Buffer.concat([head, chunk]);
    const verdict = classify(head);
    if (verdict !== 'more') finish(verdict);
  };
  // A client that half-closes before we decided still gets its bytes forwarded as TCP.
  const onEnd = (): void => finish(head.length === 0 ? undefined : 'tcp');
  const timer = setTimeout(() => finish(classifyFinal(head)), timeoutMs);
  socket.on('data', onData);
  socket.once('end', onEnd);
  socket.once('close', onEnd);
  // A socket handed over paused (a CONNECT tunnel) must flow again; resume only after a 'data' listener exists.
  socket.resume();
}

/** At the timeout: whatever was recognisable so far decides; nothing at all means server-first TCP. */
function classifyFinal(head: Buffer): DetectedProtocol {
  if (head.length > 0 && head[0] === 0x16) return 'tls';
  return 'tcp';
}
