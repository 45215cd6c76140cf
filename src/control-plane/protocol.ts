/**
 * The distribution protocol between the control plane (:15010) and proxies,
 * plain HTTP/1.1 so any client can speak it:
 *
 *   GET  /api/v1/discovery/stream?proxy=ID&serving=VERSION   newline-delimited JSON, control plane → proxy
 *        (serving: the version the proxy serves now, empty for none; a control plane that has just
 *        started holds snapshots back from proxies that serve one, see Distributor.hold):
 *        {"type":"config","version":V,"nonce":N,"documents":[…]}              a whole snapshot
 *        {"type":"delta","version":V,"nonce":N,"base":B,"put":[…],"remove":[{"kind","namespace","name"}…]}
 *                                                                               what changed since version B
 *        {"type":"ping"}                                                        keep-alive, so a dead peer is noticed
 *   POST /api/v1/discovery/ack                {"proxy":ID,"version":V,"nonce":N,"status":"ACK"|"NACK","error":…}
 *
 * A snapshot holds the configuration documents exactly as `--config` files
 * hold them (Service documents with the registered endpoints merged in), in
 * key order (kind, namespace, name), so a proxy validates what it receives
 * with the same code as a static file, and NACKs, with the reason, whatever
 * it cannot apply. V is snapshotVersion (delta.ts) of the whole set.
 *
 * Deltas: a new stream always starts with a whole snapshot. After that the
 * control plane sends deltas against the version it last sent on that
 * stream (the proxy applies messages in order, so that is what it will
 * serve unless it NACKs): `put` holds whole documents added or changed
 * (a registration changes the Service documents it belongs to, and only
 * those are sent), `remove` the keys of documents gone. The proxy applies a
 * delta to the set it serves, which must be version B; checks that the
 * result is version V; validates the whole result exactly as a snapshot;
 * applies it atomically; caches the whole set on disk; and ACKs V. On any
 * mismatch (it serves something other than B, a removal of a document it
 * lacks, a result that is not V) it NACKs V with the reason, and the
 * control plane answers a NACKed delta with the whole snapshot. A NACK of a
 * whole snapshot is final for that version (the proxy keeps serving what
 * it had). Snapshots supersede each other: a proxy that misses one only
 * needs the latest.
 *
 * Bad lines: a line that is not a JSON object, or whose version or nonce
 * cannot be read, cannot be answered and ends the stream (the proxy
 * reconnects and starts from a whole snapshot). A config or delta message
 * that names its version and nonce but is otherwise malformed, or a message
 * of a type the proxy does not know that does, is NACKed with what is wrong.
 */
import { TracemeshError, errorMessage } from '../lib/errors.js';
import type { DeltaKey } from './delta.js';

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

export interface DeltaMessage {
  readonly type: 'delta';
  readonly version: string;
  readonly nonce: string;
  /** The version this delta applies to. */
  readonly base: string;
  readonly put: readonly unknown[];
  readonly remove: readonly DeltaKey[];
}

/** A message that names its version and nonce but cannot be used: NACKed with `error`. */
export interface UnusableMessage {
  readonly type: 'unusable';
  readonly version: string;
  readonly nonce: string;
  readonly error: string;
}

export type StreamMessage = ConfigMessage | DeltaMessage | PingMessage | UnusableMessage;

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

function deltaKeys(value: unknown): DeltaKey[] {
  if (!Array.isArray(value)) fail('delta message: "remove" must be a list');
  return value.map((item: unknown, i) => {
    if (typeof item !== 'object' || item === null || Array.isArray(item)) fail(`delta message: remove[${i}] must be an object {kind, namespace, name}`);
    const record = item as Record<string, unknown>;
    for (const name of ['kind', 'namespace', 'name']) {
      if (typeof record[name] !== 'string') fail(`delta message: remove[${i}].${name} must be a string`);
    }
    return { kind: record['kind'] as string, namespace: record['namespace'] as string, name: record['name'] as string };
  });
}

/** The body of a config or delta message whose version and nonce are known. */
function parseUpdate(record: Record<string, unknown>, version: string, nonce: string): ConfigMessage | DeltaMessage {
  if (record['type'] === 'config') {
    const documents = record['documents'];
    if (!Array.isArray(documents)) fail('config message: "documents" must be a list');
    return { type: 'config', version, nonce, documents };
  }
  if (record['type'] !== 'delta') fail(`unknown message type ${JSON.stringify(record['type'])}`);
  const put = record['put'];
  if (!Array.isArray(put)) fail('delta message: "put" must be a list');
  return { type: 'delta', version, nonce, base: field(record, 'base', 'delta message'), put, remove: deltaKeys(record['remove']) };
}

/**
 * One line of the stream → a message. Throws TM_ERR_CP_PROTOCOL, naming what
 * is wrong, only for a line that cannot be answered (no version and nonce to
 * NACK); any other problem becomes an `unusable` message, to be NACKed.
 */
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
  const what = `discovery stream: ${typeof record['type'] === 'string' ? `${record['type'].slice(0, 40)} ` : ''}message`;
  const version = field(record, 'version', what);
  const nonce = field(record, 'nonce', what);
  try {
    return parseUpdate(record, version, nonce);
  } catch (err) {
    return { type: 'unusable', version, nonce, error: `discovery stream: ${errorMessage(err)}` };
  }
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
