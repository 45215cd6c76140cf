import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { isTracemeshError } from '../../src/lib/errors.js';
import { accessLogOnStream, openAccessLog } from './access-log.js';
import type { AccessLogEntry } from './telemetry.js';

function entry(i: number): AccessLogEntry {
  return {
    start_time: new Date(Date.UTC(2025, 0, 1, 0, 0, i)).toISOString(),
    direction: 'outbound',
    protocol: 'http1',
    method: 'GET',
    authority: 'reviews:9080',
    path: `/reviews/${i}?x="quoted"`,
    response_code: 200,
    grpc_status: '',
    response_flags: '-',
    bytes_received: 0,
    bytes_sent: 1024,
    duration_ms: 1.234,
    upstream_host: '127.0.0.1:25006',
    downstream_remote_address: '127.0.0.1:50000',
    source_service: 'productpage',
    destination_service: 'reviews',
    request_id: `req-${i}`,
    trace_id: '4bf92f3577b34da6a3ce929d0e0e4736',
    user_agent: 'curl/8',
  };
}

/** A Writable that takes writes but never finishes them until released: a stuck output. */
class StuckWritable extends Writable {
  private pending: Array<() => void> = [];
  constructor() {
    super({ highWaterMark: 1024 });
  }
  override _write(_chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.pending.push(callback);
  }
  release(): void {
    // Each callback lets the stream hand over the next buffered chunk.
    while (this.pending.length > 0) this.pending.shift()!();
  }
}

let dir: string;

beforeEach(() => {
  dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-access-log-'));
});

afterEach(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('access log', () => {
  it('writes one JSON line per entry to a file and flushes on close', async () => {
    const file = path.join(dir, 'access.log');
    const log = openAccessLog(file);
    for (let i = 0; i < 3; i++) log.write(entry(i));
    await log.close();
    await log.close();
    const lines = readFileSync(file, 'utf8').split('\n');
    expect(lines.pop()).toBe('');
    expect(lines.map((l) => JSON.parse(l) as AccessLogEntry)).toEqual([entry(0), entry(1), entry(2)]);
    expect(log.writtenLines).toBe(3);
    expect(log.droppedLines).toBe(0);
  });

  it('appends to an existing file', async () => {
    const file = path.join(dir, 'access.log');
    const first = openAccessLog(file);
    first.write(entry(1));
    await first.close();
    const second = openAccessLog(file);
    second.write(entry(2));
    await second.close();
    expect(readFileSync(file, 'utf8').trim().split('\n')).toHaveLength(2);
  });

  it('fails with an error naming the path when the file cannot be opened', () => {
    for (const bad of [path.join(dir, 'missing-dir', 'access.log'), dir]) {
      let caught: unknown;
      try {
        openAccessLog(bad);
      } catch (err) {
        caught = err;
      }
      expect(isTracemeshError(caught, 'TM_ERR_CONFIG_INVALID'), bad).toBe(true);
      expect((caught as Error).message).toContain(bad);
    }
    expect(() => openAccessLog('  ')).toThrow(/empty/);
  });

  it('drops and counts lines instead of buffering past the bound when the output is stuck', async () => {
    const out = new StuckWritable();
    const log = accessLogOnStream(out, true, { maxBufferedBytes: 4096 });
    const lineBytes = JSON.stringify(entry(0)).length + 1;
    for (let i = 0; i < 1000; i++) log.write(entry(i));
    expect(out.writableLength).toBeLessThan(4096 + lineBytes * 2);
    expect(log.droppedLines).toBeGreaterThan(900);
    expect(log.writtenLines + log.droppedLines).toBe(1000);
    // Once the output moves again, lines are written again.
    out.release();
    await new Promise((resolve) => setImmediate(resolve));
    out.release();
    const before = log.writtenLines;
    log.write(entry(1001));
    expect(log.writtenLines).toBe(before + 1);
    out.release();
    const closed = log.close();
    out.release();
    await closed;
  });

  it('a write error stops the log without throwing; later lines are counted as dropped', async () => {
    const messages: string[] = [];
    const broken = new Writable({
      write(_chunk, _encoding, callback) {
        callback(new Error('ENOSPC: no space left on device'));
      },
    });
    const log = accessLogOnStream(broken, true, { log: (m) => messages.push(m) }, '/var/log/access.log');
    log.write(entry(0));
    await new Promise((resolve) => setImmediate(resolve));
    log.write(entry(1));
    log.write(entry(2));
    expect(log.droppedLines).toBe(2);
    expect(messages).toEqual([expect.stringMatching(/access log \/var\/log\/access\.log: ENOSPC/)]);
    await log.close();
  });

  it('writes to stdout for "-" and does not close stdout', async () => {
    const log = openAccessLog('-');
    await log.close();
    expect(process.stdout.destroyed).toBe(false);
    expect(process.stdout.writable).toBe(true);
  });
});
