import { describe, expect, it } from 'vitest';
import { isTracemeshError } from '../lib/errors.js';
import { applySnapshotDelta, diffSnapshots, indexSnapshot, snapshotVersion } from './delta.js';
import { parseStreamMessage } from './protocol.js';

const doc = (kind: string, name: string, spec: unknown = {}, namespace = 'default'): unknown => ({ apiVersion: 'tracemesh.dev/v1', kind, metadata: { name, namespace }, spec });

function errorOf(action: () => unknown): { code: string; message: string } {
  try {
    action();
  } catch (err) {
    if (isTracemeshError(err)) return { code: err.code, message: err.message };
    throw err;
  }
  throw new Error('no error');
}

describe('snapshot deltas', () => {
  const base = [doc('Route', 'r', { path: '/a' }), doc('Service', 'a', { ports: [1] }), doc('Service', 'b', { ports: [2] })];
  const next = [doc('Route', 'r', { path: '/b' }), doc('Service', 'a', { ports: [1] }), doc('Service', 'c', { ports: [3] })];

  it('diffs two snapshots into the changed and added documents and the removed keys, and applying it rebuilds the same set and version', () => {
    const diff = diffSnapshots(indexSnapshot(base)!, indexSnapshot(next)!);
    const put = JSON.parse(diff.put) as unknown[];
    const remove = JSON.parse(diff.remove) as { kind: string; namespace: string; name: string }[];
    expect(put).toEqual([doc('Route', 'r', { path: '/b' }), doc('Service', 'c', { ports: [3] })]);
    expect(remove).toEqual([{ kind: 'Service', namespace: 'default', name: 'b' }]);
    expect(diff.changes).toBe(3);
    const rebuilt = applySnapshotDelta(base, { put, remove });
    expect(rebuilt).toEqual(next);
    expect(snapshotVersion(rebuilt)).toBe(snapshotVersion(next));
  });

  it('an unchanged set is an empty delta; key order is kind, namespace, name whatever the put order', () => {
    const same = diffSnapshots(indexSnapshot(base)!, indexSnapshot(base)!);
    expect(same).toEqual({ put: '[]', remove: '[]', changes: 0 });
    const merged = applySnapshotDelta(base, { put: [doc('Service', 'a', {}, 'zz'), doc('AuthorizationPolicy', 'p')], remove: [] });
    expect(merged.map((d) => (d as { kind: string; metadata: { name: string; namespace: string } }).metadata)).toEqual([
      { name: 'p', namespace: 'default' },
      { name: 'r', namespace: 'default' },
      { name: 'a', namespace: 'default' },
      { name: 'b', namespace: 'default' },
      { name: 'a', namespace: 'zz' },
    ]);
  });

  it('a set with a document without a key or a key twice cannot be indexed (it goes out whole)', () => {
    expect(indexSnapshot([{ kind: 'Service', metadata: {} }])).toBeUndefined();
    expect(indexSnapshot([doc('Service', 'a'), doc('Service', 'a')])).toBeUndefined();
    expect(indexSnapshot([])?.size).toBe(0);
  });

  it('refuses what cannot be applied, naming it: a removal the base lacks, a key twice, a document without a key', () => {
    expect(errorOf(() => applySnapshotDelta(base, { put: [], remove: [{ kind: 'Service', namespace: 'default', name: 'zzz' }] }))).toEqual({
      code: 'TM_ERR_CP_PROTOCOL',
      message: 'delta: remove[0] (Service default/zzz) is not in the base',
    });
    expect(errorOf(() => applySnapshotDelta(base, { put: [doc('Service', 'b')], remove: [{ kind: 'Service', namespace: 'default', name: 'b' }] })).message).toBe(
      'delta: put[0] (Service default/b) is also removed or put twice',
    );
    expect(errorOf(() => applySnapshotDelta(base, { put: [{ kind: 'Service' }], remove: [] })).message).toBe('delta: put[0] has no kind and metadata.name');
    expect(errorOf(() => applySnapshotDelta([42], { put: [], remove: [] })).message).toBe('delta: document 0 of the base has no kind and metadata.name');
  });
});

describe('stream messages', () => {
  it('reads a delta message', () => {
    const line = JSON.stringify({ type: 'delta', version: 'v2', nonce: 'n2', base: 'v1', put: [doc('Route', 'r')], remove: [{ kind: 'Service', namespace: 'default', name: 'b' }] });
    expect(parseStreamMessage(line)).toEqual({ type: 'delta', version: 'v2', nonce: 'n2', base: 'v1', put: [doc('Route', 'r')], remove: [{ kind: 'Service', namespace: 'default', name: 'b' }] });
  });

  it('a malformed message that names its version and nonce is unusable (to be NACKed) with the reason', () => {
    const cases: [unknown, string][] = [
      [{ type: 'delta', version: 'v', nonce: 'n', put: [], remove: [] }, 'discovery stream: delta message: "base" must be a non-empty string of at most 256 characters'],
      [{ type: 'delta', version: 'v', nonce: 'n', base: 'b', put: {}, remove: [] }, 'discovery stream: delta message: "put" must be a list'],
      [{ type: 'delta', version: 'v', nonce: 'n', base: 'b', put: [], remove: [{ kind: 'Service', name: 'x' }] }, 'discovery stream: delta message: remove[0].namespace must be a string'],
      [{ type: 'config', version: 'v', nonce: 'n', documents: 'all' }, 'discovery stream: config message: "documents" must be a list'],
      [{ type: 'patch', version: 'v', nonce: 'n' }, 'discovery stream: unknown message type "patch"'],
    ];
    for (const [value, error] of cases) expect(parseStreamMessage(JSON.stringify(value))).toEqual({ type: 'unusable', version: 'v', nonce: 'n', error });
  });

  it('a line that cannot be answered throws TM_ERR_CP_PROTOCOL', () => {
    expect(errorOf(() => parseStreamMessage('{"type":"delta","nonce":"n"}'))).toEqual({
      code: 'TM_ERR_CP_PROTOCOL',
      message: 'discovery stream: delta message: "version" must be a non-empty string of at most 256 characters',
    });
    expect(errorOf(() => parseStreamMessage('[1]')).message).toBe('discovery stream: a line is not a JSON object');
    expect(errorOf(() => parseStreamMessage('nope')).code).toBe('TM_ERR_CP_PROTOCOL');
  });
});
