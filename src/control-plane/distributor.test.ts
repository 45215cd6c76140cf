import { afterEach, describe, expect, it } from 'vitest';
import { Distributor, type StreamSink } from './distributor.js';
import { parseStreamMessage, type ConfigMessage, type DeltaMessage } from './protocol.js';

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
  /** Every config and delta message, in order. */
  updates(): (ConfigMessage | DeltaMessage)[] {
    return this.lines.map((l) => parseStreamMessage(l.trimEnd())).filter((m): m is ConfigMessage | DeltaMessage => m.type === 'config' || m.type === 'delta');
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
    // It has v2 on this stream already: release sends it nothing again.
    expect(empty.configs()).toHaveLength(2);
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

  describe('deltas', () => {
    /** A Service with `n` endpoints: large enough that a one-document change is worth a delta. */
    const service = (name: string, n: number, extra = ''): unknown => ({
      apiVersion: 'tracemesh.dev/v1',
      kind: 'Service',
      metadata: { name, namespace: 'default' },
      spec: { ports: [{ name: 'http', port: 80, protocol: 'http' }], endpoints: Array.from({ length: n }, (_, i) => ({ address: `10.0.0.${i + 1}`, port: 8080, labels: { extra } })) },
    });
    const route = (name: string, path: string): unknown => ({ apiVersion: 'tracemesh.dev/v1', kind: 'Route', metadata: { name, namespace: 'default' }, spec: { path } });

    it('a stream starts with the whole snapshot; then each change goes as a delta from the version last sent, shared by every stream', () => {
      const d = distributor();
      const v1 = d.publish([service('a', 20), service('b', 20), route('r', '/one')]);
      const one = new RecordingSink();
      const two = new RecordingSink();
      d.attach('p1', one);
      d.attach('p2', two);
      const v2 = d.publish([service('a', 20), service('b', 20), route('r', '/two')]);
      const v3 = d.publish([service('a', 20), route('r', '/two')]);
      const updates = one.updates();
      expect(updates.map((m) => [m.type, m.version])).toEqual([
        ['config', v1],
        ['delta', v2],
        ['delta', v3],
      ]);
      expect(updates[1]).toMatchObject({ base: v1, put: [route('r', '/two')], remove: [] });
      expect(updates[2]).toMatchObject({ base: v2, put: [], remove: [{ kind: 'Service', namespace: 'default', name: 'b' }] });
      // One line per base and version, shared: the same bytes on both streams.
      expect(two.lines).toEqual(one.lines);
      expect(updates[1]?.nonce).not.toBe(updates[0]?.nonce);
    });

    it('documents go out in key order whatever order they were given in, so a proxy rebuilding the set gets the same version', () => {
      const d = distributor();
      const v = d.publish([route('r', '/x'), service('b', 1), service('a', 1)]);
      expect(d.publish([service('a', 1), route('r', '/x'), service('b', 1)])).toBe(v);
      const sink = new RecordingSink();
      d.attach('p', sink);
      expect(sink.configs()[0]?.documents.map((doc) => (doc as { metadata: { name: string } }).metadata.name)).toEqual(['r', 'a', 'b']);
    });

    it('a NACKed delta is answered with the whole snapshot; ACKs of either nonce count', () => {
      const d = distributor();
      d.publish([service('a', 20), route('r', '/one')]);
      const sink = new RecordingSink();
      d.attach('p', sink);
      const v2 = d.publish([service('a', 20), route('r', '/two')]);
      const delta = sink.updates()[1] as DeltaMessage;
      expect(delta.type).toBe('delta');
      expect(d.ack({ proxy: 'p', version: v2, nonce: delta.nonce, status: 'NACK', error: 'delta from version x, but this proxy serves y' })).toBe(true);
      const full = sink.updates()[2] as ConfigMessage;
      expect(full).toMatchObject({ type: 'config', version: v2 });
      expect(full.documents).toEqual([route('r', '/two'), service('a', 20)]);
      // Not shown as NACKed: the proxy is being sent the whole snapshot.
      expect(d.status()[0]).toMatchObject({ state: 'connected', nackedVersion: '' });
      expect(d.ack({ proxy: 'p', version: v2, nonce: full.nonce, status: 'ACK' })).toBe(true);
      expect(d.status()[0]).toMatchObject({ state: 'acked', ackedVersion: v2 });
      // A second NACK of the same delta (a retried delivery) sends nothing more.
      d.ack({ proxy: 'p', version: v2, nonce: delta.nonce, status: 'NACK', error: 'again' });
      expect(sink.updates()).toHaveLength(3);
    });

    it('after a NACKed whole snapshot, and on a new stream, the next send is whole again', () => {
      const d = distributor();
      d.publish([service('a', 20), route('r', '/one')]);
      const sink = new RecordingSink();
      d.attach('p', sink);
      const first = sink.configs()[0] as ConfigMessage;
      d.ack({ proxy: 'p', version: first.version, nonce: first.nonce, status: 'NACK', error: 'refused' });
      d.publish([service('a', 20), route('r', '/two')]);
      expect(sink.updates().map((m) => m.type)).toEqual(['config', 'config']);
      const again = new RecordingSink();
      d.attach('p', again);
      expect(again.updates().map((m) => m.type)).toEqual(['config']);
      d.publish([service('a', 20), route('r', '/three')]);
      expect(again.updates().map((m) => m.type)).toEqual(['config', 'delta']);
    });

    it('a base older than the kept history, documents without a key, or a delta no smaller than the snapshot go out whole', () => {
      const d = distributor();
      d.publish([route('r', '/0')]);
      const slow = new RecordingSink(1);
      d.attach('slow', slow);
      for (let i = 1; i <= 20; i++) d.publish([route('r', `/${i}`)]);
      slow.drained();
      // Its base (the first version) has left the history; also a delta replacing the only document is no smaller.
      expect(slow.updates().map((m) => m.type)).toEqual(['config', 'config']);
      const keyless = distributor();
      keyless.publish([{ kind: 'Service', metadata: {} }, service('a', 20)]);
      const sink = new RecordingSink();
      keyless.attach('p', sink);
      keyless.publish([{ kind: 'Service', metadata: {} }, service('a', 20, 'changed')]);
      expect(sink.updates().map((m) => m.type)).toEqual(['config', 'config']);
    });
  });
});
