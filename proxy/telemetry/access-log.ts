/**
 * The JSON access log (`--access-log FILE|-`): one line per AccessLogEntry.
 *
 * Lines go through a Writable (a file stream, or stdout), which batches
 * writes while one is in flight. The log must never hold the proxy back nor
 * grow without bound: when the output is backed up past `maxBufferedBytes`
 * (a slow disk, a stdout pipe nobody reads), lines are dropped and counted
 * instead of queued. A write error (disk full) stops the log and counts the
 * rest as dropped; it never crashes the proxy.
 */
import { closeSync, createWriteStream, openSync } from 'node:fs';
import type { Writable } from 'node:stream';
import { TracemeshError, errorMessage } from '../../src/lib/errors.js';
import type { AccessLog, AccessLogEntry } from './telemetry.js';

export const DEFAULT_ACCESS_LOG_MAX_BUFFERED_BYTES = 1024 * 1024;

export interface CountingAccessLog extends AccessLog {
  /** Lines not written: the output was backed up or had failed, or the log was closed. */
  readonly droppedLines: number;
  readonly writtenLines: number;
}

export interface AccessLogOptions {
  maxBufferedBytes?: number;
  /** Where the first write error is reported. */
  log?: (message: string) => void;
}

class StreamAccessLog implements CountingAccessLog {
  private dropped = 0;
  private written = 0;
  private failed = false;
  private closing: Promise<void> | undefined = undefined;

  constructor(
    private readonly stream: Writable,
    /** stdout is not ours to end: close() only waits for it to drain. */
    private readonly ownsStream: boolean,
    private readonly maxBufferedBytes: number,
    private readonly log: (message: string) => void,
    what: string,
  ) {
    stream.on('error', (err: unknown) => {
      if (!this.failed) this.log(`access log ${what}: ${errorMessage(err)}; further lines are dropped`);
      this.failed = true;
    });
  }

  get droppedLines(): number {
    return this.dropped;
  }

  get writtenLines(): number {
    return this.written;
  }

  write(entry: AccessLogEntry): void {
    const stream = this.stream;
    if (this.failed || this.closing !== undefined || stream.writableLength >= this.maxBufferedBytes || stream.destroyed) {
      this.dropped++;
      return;
    }
    stream.write(JSON.stringify(entry) + '\n');
    this.written++;
  }

  /** Flushes what is buffered and closes the file (stdout is drained, not closed). Safe twice. */
  close(): Promise<void> {
    this.closing ??= this.closeOnce();
    return this.closing;
  }

  private closeOnce(): Promise<void> {
    const stream = this.stream;
    return new Promise<void>((resolve) => {
      if (stream.destroyed || this.failed) {
        resolve();
        return;
      }
      if (this.ownsStream) {
        stream.once('close', () => resolve());
        stream.end();
        return;
      }
      if (stream.writableLength === 0) {
        resolve();
        return;
      }
      stream.once('drain', () => resolve());
      stream.once('error', () => resolve());
    });
  }
}

/** An access log over any Writable; `ownsStream` says whether close() ends it. */
export function accessLogOnStream(stream: Writable, ownsStream: boolean, options: AccessLogOptions = {}, what = 'stream'): CountingAccessLog {
  const max = options.maxBufferedBytes ?? DEFAULT_ACCESS_LOG_MAX_BUFFERED_BYTES;
  if (!Number.isInteger(max) || max < 1) {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `access log maxBufferedBytes must be a positive integer, got ${max}`);
  }
  return new StreamAccessLog(stream, ownsStream, max, options.log ?? (() => {}), what);
}

/**
 * Opens the access log: '-' is stdout, anything else a file opened for
 * appending (created if missing). The file is opened here, synchronously, so a
 * bad path fails start-up with a message naming it instead of failing later.
 */
export function openAccessLog(target: string, options: AccessLogOptions = {}): CountingAccessLog {
  if (target === '-') return accessLogOnStream(process.stdout, false, options, 'stdout');
  if (target.trim() === '') throw new TracemeshError('TM_ERR_CONFIG_INVALID', 'access log path is empty (use - for stdout)');
  let fd: number;
  try {
    fd = openSync(target, 'a');
  } catch (err) {
    throw new TracemeshError('TM_ERR_CONFIG_INVALID', `cannot open access log ${target}: ${errorMessage(err)}`, { cause: err });
  }
  try {
    return accessLogOnStream(createWriteStream(target, { fd, flags: 'a' }), true, options, target);
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}
