/**
 * The distribution protocol between the control plane (:15010) and proxies,
 * plain HTTP/1.1 so any client can speak it:
 *
 *   GET  /api/v1/discovery/stream?proxy=ID&serving=VERSION   newline-delimited JSON, control plane → proxy
 *        (serving: the version the proxy serves now, empty for none; a control plane that has just
 *        started holds snapshots back from proxies that serve one, see Distributor.hold):
 *        {"type":"config","version":V,"nonce":N,"documents":[…]}   a whole snapshot, every time it changes
 *        {"type":"ping"}                                             keep-alive, so a dead peer is noticed
 *   POST /api/v1/discovery/ack                {"proxy":ID,"version":V,"nonce":N,"status":"ACK"|"NACK","error":…}
 *
 * A snapshot holds the configuration documents exactly as `--config` files
 * hold them (Service documents with the registered endpoints merged in), so
 * a proxy validates what it receives with the same code as a static file,
 * and NACKs, with the reason, whatever it cannot apply. Snapshots supersede
 * each other: a proxy that misses one only needs the latest.
 */
import { TracemeshError } from '../lib/errors.js';

export const DISCOVERY_STREAM_PATH = '/api/v1/discovery/stream';
export const DISCOVERY_ACK_PATH = '/api/v1/discovery/ack';
export const REGISTRY_PATH = '/api/v1/registry';

/** A snapshot line larger than this is refused by both sides. */
export const MAX_MESSAGE_BYTES = 32 * 1024 * 1024;

export interface ConfigMessage {
  readonly type: 'config';
  readonly version: string;
  /** Identifies this send; an ACK for an older nonce is stale and ignored. */
  readonly nonce: string;
  readonly documents: readonly unknown[];
}

export interface PingMessage {
  readonly type: 'ping';
}

export type StreamMessage = ConfigMessage | PingMessage;

export type AckStatus = 'ACK' | 'NACK';

export interface AckRequest {
  readonly proxy: string;
  readonly version: string;
  readonly nonce: string;
  readonly status: AckStatus;
  /** NACK: why the proxy could not apply the version. */
  readonly error?: string;
}

function fail(message: string): never {
  throw new TracemeshError('TM_ERR_CP_PROTOCOL', message);
}

function field(record: Record<string, unknown>, name: string, where: string): string {
  const value = record[name];
  if (typeof value !== 'string' || value.length === 0 || value.length > 256) fail(`${where}: "${name}" must be a non-empty string of at most 256 characters`);
  return value;
}

/** One line of the stream → a message; throws TM_ERR_CP_PROTOCOL naming what is wrong. */
export function parseStreamMessage(line: string): StreamMessage {
  let value: unknown;
  try {
    value = JSON.parse(line);
  } catch (err) {
    fail(`discovery stream: a line is not JSON (${(err as Error).message})`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('discovery stream: a line is not a JSON object');
  const record = value as Record<string, unknown>;
  if (record['type'] === 'ping') return { type: 'ping' };
  if (record['type'] !== 'config') fail(`discovery stream: unknown message type ${JSON.stringify(record['type'])}`);
  const documents = record['documents'];
  if (!Array.isArray(documents)) fail('discovery stream: config message: "documents" must be a list');
  return { type: 'config', version: field(record, 'version', 'config message'), nonce: field(record, 'nonce', 'config message'), documents };
}

/** An ACK request body → the request; throws TM_ERR_CP_PROTOCOL naming what is wrong. */
export function parseAckRequest(value: unknown): AckRequest {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) fail('ack: the body must be a JSON object');
  const record = value as Record<string, unknown>;
  const status = record['status'];
  if (status !== 'ACK' && status !== 'NACK') fail(`ack: "status" must be ACK or NACK, not ${JSON.stringify(status)}`);
  const error = record['error'];
  if (error !== undefined && typeof error !== 'string') fail('ack: "error" must be a string');
  if (status === 'NACK' && (error === undefined || error.length === 0)) fail('ack: a NACK must say why in "error"');
  return {
    proxy: field(record, 'proxy', 'ack'),
    version: field(record, 'version', 'ack'),
    nonce: field(record, 'nonce', 'ack'),
    status,
    ...(error === undefined ? {} : { error: error.slice(0, 8192) }),
  };
}

/**
 * Splits a byte stream into lines. Bounded: a line longer than `maxBytes`
 * is an error, not an ever-growing buffer.
 */
export class LineSplitter {
  private pending: Buffer[] = [];
  private pendingBytes = 0;

  constructor(private readonly maxBytes = MAX_MESSAGE_BYTES) {}

  push(chunk: Buffer): string[] {
    const lines: string[] = [];
    let start = 0;
    for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
      const piece = chunk.subarray(start, nl);
      this.check(piece.length);
      const line = this.pendingBytes === 0 ? piece.toString('utf8') : Buffer.concat([...this.pending, piece]).toString('utf8');
      this.pending = [];
      this.pendingBytes = 0;
      if (line.trim().length > 0) lines.push(line);
      start = nl + 1;
    }
    if (start < chunk.length) {
      const rest = chunk.subarray(start);
      this.check(rest.length);
      this.pending.push(rest);
      this.pendingBytes += rest.length;
    }
    return lines;
  }

  private check(extra: number): void {
    if (this.pendingBytes + extra > this.maxBytes) fail(`discovery stream: a message is larger than ${this.maxBytes} bytes`);
  }
}
