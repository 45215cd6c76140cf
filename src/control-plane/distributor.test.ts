import { afterEach, describe, expect, it } from 'vitest';
import { Distributor, type StreamSink } from './distributor.js';
import { parseStreamMessage, type ConfigMessage } from './protocol.js';

/** A stream that keeps what it was sent and fills up after `capacity` lines until drained. */
class RecordingSink implements StreamSink {
  lines: string[] = [];
  closed = false;
  private drain: (() => void) | undefined;
  constructor(private capacity = Infinity) {}
  write(line: Buffer): boolean {
    this.lines.push(line.toString('utf8'));
    return this.lines.length < this.capacity;
  }
  onDrain(callback: () => void): void {
    this.drain = callback;
  }
  close(): void {
    this.closed = true;
  }
  drained(): void {
    this.capacity = Infinity;
    this.drain?.();
  }
  configs(): ConfigMessage[] {
    return this.lines.map((l) => parseStreamMessage(l.trimEnd())).filter((m): m is ConfigMessage => m.type === 'config');
  }
}

const distributors: Distributor[] = [];
afterEach(() => distributors.splice(0).forEach((d) => d.close()));

let clock = 42;
afterEach(() => {
  clock = 42;
});

function distributor(): Distributor {
  const d = new Distributor({ pingIntervalMs: 60_000, maxProxies: 100, forgetDisconnectedMs: 60_000, now: () => clock });
  distributors.push(d);
  return d;
}

const docsA = [{ kind: 'Service', metadata: { name: 'a' } }];
const docsB = [{ kind: 'Service', metadata: { name: 'b' } }];

describe('distributor', () => {
  it('sends the current snapshot on attach and every new one to every stream; the same documents are no new version', () => {
    const d = distributor();
    const v1 = d.publish(docsA);
    const one = new RecordingSink();
    const two = new RecordingSink();
    d.attach('p1', one);
    d.attach('p2', two);
    expect(d.publish([{ metadata: { name: 'a' }, kind: 'Service' }])).toBe(v1);
    const v2 = d.publish(docsB);
    expect(v2).not.toBe(v1);
    expect(one.configs().map((m) => m.version)).toEqual([v1, v2]);
    expect(two.configs().map((m) => [m.version, m.documents])).toEqual([
      [v1, docsA],
      [v2, docsB],
    ]);
  });

  it('a slow stream gets nothing more while full, then only the latest snapshot', () => {
    const d = distributor();
    const v1 = d.publish(docsA);
    const slow = new RecordingSink(1);
    d.attach('slow', slow);
    d.publish(docsB);
    const v3 = d.publish([{ kind: 'Service', metadata: { name: 'c' } }]);
    expect(slow.lines).toHaveLength(1);
    slow.drained();
    expect(slow.configs().map((m) => m.version)).toEqual([v1, v3]);
  });

  it('records ACK and NACK for the snapshot last sent, ignores stale ones, and reports each proxy state', () => {
    const d = distributor();
    const v1 = d.publish(docsA);
    const sink = new RecordingSink();
    d.attach('p1', sink);
    const first = sink.configs()[0] as ConfigMessage;
    const v2 = d.publish(docsB);
    const second = sink.configs()[1] as ConfigMessage;
    expect(d.ack({ proxy: 'p1', version: v1, nonce: first.nonce, status: 'ACK' })).toBe(false);
    expect(d.ack({ proxy: 'nobody', version: v2, nonce: second.nonce, status: 'ACK' })).toBe(false);
    expect(d.status()[0]).toMatchObject({ proxy: 'p1', state: 'connected', sentVersion: v2, ackedVersion: '' });
    expect(d.ack({ proxy: 'p1', version: v2, nonce: second.nonce, status: 'NACK', error: 'route r1: bad regex' })).toBe(true);
    expect(d.status()[0]).toMatchObject({ state: 'nacked', nackedVersion: v2, nackError: 'route r1: bad regex', lastAckMs: 42 });
    expect(d.ack({ proxy: 'p1', version: v2, nonce: second.nonce, status: 'ACK' })).toBe(true);
    expect(d.status()[0]).toMatchObject({ state: 'acked', ackedVersion: v2, nackedVersion: '' });
  });

  it('a proxy that reconnects replaces its old stream, and a closed stream shows as disconnected', () => {
    const d = distributor();
    d.publish(docsA);
    const old = new RecordingSink();
    const detachOld = d.attach('p1', old);
    const fresh = new RecordingSink();
    const detach = d.attach('p1', fresh);
    expect(old.closed).toBe(true);
    detachOld(); // the old stream's close arriving late must not detach the new one
    expect(d.status()[0]?.connected).toBe(true);
    detach();
    expect(d.status()[0]).toMatchObject({ connected: false, state: 'disconnected' });
  });

  it('while held, sends only to proxies that serve nothing; release sends the latest to every one', () => {
    const d = distributor();
    d.hold();
    d.publish(docsA);
    const serving = new RecordingSink();
    const empty = new RecordingSink();
    d.attach('serving', serving, 'abc123');
    d.attach('empty', empty, '');
    const v2 = d.publish(docsB);
    expect(serving.configs()).toEqual([]);
    expect(empty.configs().map((m) => m.documents)).toEqual([docsA, docsB]);
    expect(d.status().find((s) => s.proxy === 'serving')).toMatchObject({ state: 'connected', sentVersion: '' });
    expect(d.held).toBe(true);
    d.release();
    expect(d.held).toBe(false);
    expect(serving.configs().map((m) => m.version)).toEqual([v2]);
    expect(empty.configs()).toHaveLength(3);
    d.release(); // a second release sends nothing more
    expect(serving.configs()).toHaveLength(1);
  });

  it('forgets a proxy disconnected for longer than forgetDisconnectedMs, not one that came back', () => {
    const d = distributor();
    d.publish(docsA);
    const detachGone = d.attach('gone', new RecordingSink());
    const detachBack = d.attach('back', new RecordingSink());
    detachGone();
    detachBack();
    clock += 30_000;
    d.attach('back', new RecordingSink());
    expect(d.status().map((s) => [s.proxy, s.state])).toEqual([
      ['gone', 'disconnected'],
      ['back', 'connected'],
    ]);
    clock += 30_001;
    expect(d.status().map((s) => s.proxy)).toEqual(['back']);
  });
});
