import { describe, expect, it } from 'vitest';
import { mergeRows, peerRows, type ProxyStatusRow } from './group-status.js';

function row(proxy: string, replica: string, connected: boolean, lastAckMs: number): ProxyStatusRow {
  return { proxy, replica, connected, lastAckMs, sentVersion: 'v', ackedVersion: 'v', nackedVersion: '', nackError: '', state: connected ? 'acked' : 'disconnected', registration: null };
}

describe('mergeRows', () => {
  it('keeps one row per proxy: the replica holding its stream, else the one that heard from it last', () => {
    const merged = mergeRows([row('a', 'r1', false, 50), row('a', 'r2', true, 10), row('b', 'r1', false, 5), row('b', 'r2', false, 9), row('c', 'r1', true, 1)]);
    expect(merged.map((r) => [r.proxy, r.replica]).sort()).toEqual([
      ['a', 'r2'],
      ['b', 'r2'],
      ['c', 'r1'],
    ]);
  });
});

describe('peerRows', () => {
  it('names a peer that does not answer instead of failing the whole answer', async () => {
    const { rows, unreachable } = await peerRows([{ id: 'gone', url: 'http://127.0.0.1:1' }]);
    expect(rows).toEqual([]);
    expect(unreachable).toHaveLength(1);
    expect(unreachable[0]).toMatchObject({ id: 'gone', url: 'http://127.0.0.1:1' });
  });
});
