/**
 * The control plane's config store on a real etcd (Debian's etcd-server,
 * started by this file on free ports with a temp data dir): documents, atomic
 * set changes, compare-and-swap between two store instances (as two
 * control-plane replicas), watches across instances, etcd killed and
 * restarted under a watch, compacted history, damaged keys and bad URLs.
 * Each test works under a key prefix of its own.
 */
import { Etcd3 } from 'etcd3';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import type { TracemeshError } from '../../src/lib/errors.js';
import { isTracemeshError } from '../../src/lib/errors.js';
import { createConfigStore } from '../../src/control-plane/store/create-store.js';
import { EtcdConfigStore } from '../../src/control-plane/store/etcd-store.js';
import type { EtcdStoreOptions } from '../../src/control-plane/store/etcd-store.js';
import { isStoreError } from '../../src/control-plane/store/store-errors.js';
import type { DocumentChange, StoreChangeEvent } from '../../src/control-plane/store/types.js';
import { startEtcdGate } from './fixtures/etcd-gate.js';
import type { EtcdGate } from './fixtures/etcd-gate.js';
import { requireEtcdBinary, startEtcd } from './fixtures/etcd-server.js';
import type { EtcdServer } from './fixtures/etcd-server.js';
import { doc, expectStoreError, service } from '../support/store-documents.js';

let etcd: EtcdServer | undefined;
let raw: Etcd3 | undefined;
let prefixCount = 0;
const stores: EtcdConfigStore[] = [];
const gates: EtcdGate[] = [];

beforeAll(async () => {
  requireEtcdBinary();
  etcd = await startEtcd('tmcpstore');
  raw = new Etcd3({ hosts: etcd.url });
});

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const gate of gates.splice(0)) await gate.stop();
});

afterAll(async () => {
  raw?.close();
  await etcd?.stop();
});

function server(): EtcdServer {
  if (etcd === undefined) throw new Error('etcd did not start');
  return etcd;
}

function rawClient(): Etcd3 {
  if (raw === undefined) throw new Error('etcd did not start');
  return raw;
}

/** A prefix per test: tests share one etcd, not each other's keys. */
function freshPrefix(): string {
  prefixCount++;
  return `/tracemesh-test-${process.pid}-${prefixCount}/`;
}

async function openStore(prefix: string, options: Partial<EtcdStoreOptions> = {}): Promise<EtcdConfigStore> {
  const store = new EtcdConfigStore({ urls: [server().url], prefix, ...options });
  stores.push(store);
  await store.start();
  return store;
}


function brief(change: DocumentChange): string {
  if (change.type === 'delete') return `delete ${change.key.kind}/${change.key.namespace}/${change.key.name}`;
  const { kind, metadata } = change.document.document;
  return `put ${kind}/${metadata.namespace}/${metadata.name}`;
}

/** Collects watch events and problems; waits are bounded. */
class Recorder {
  readonly events: StoreChangeEvent[] = [];
  readonly problems: TracemeshError[] = [];
  readonly listener = (event: StoreChangeEvent): void => {
    this.events.push(event);
  };
  readonly onProblem = (error: TracemeshError): void => {
    this.problems.push(error);
  };

  changes(): string[] {
    return this.events.flatMap((event) => event.changes.map(brief));
  }

  async until(what: string, ready: () => boolean, timeoutMs = 10_000): Promise<void> {
    await vi.waitFor(
      () => {
        if (!ready()) throw new Error(`not seen within ${timeoutMs} ms: ${what}; events: ${JSON.stringify(this.changes())}; problems: ${this.problems.map((p) => p.message).join(' | ')}`);
      },
      { timeout: timeoutMs, interval: 20 },
    );
  }
}

describe('EtcdConfigStore: documents by kind, namespace and name', () => {
  it('applies, lists, gets and deletes; the revision is the etcd revision of the last change', async () => {
    const store = await openStore(freshPrefix());
    expect(await store.revision()).toBe(0);
    expect(await store.list()).toEqual({ revision: 0, documents: [] });

    const first = await store.applySet({ put: [service('reviews'), service('ratings', undefined, 'shop'), doc('Route', 'reviews', { hosts: ['reviews'] })] });
    expect(first.revision).toBeGreaterThan(0);
    expect(await store.revision()).toBe(first.revision);
    const listed = await store.list();
    expect(listed.revision).toBe(first.revision);
    expect(listed.documents.map((stored) => `${stored.document.kind}/${stored.document.metadata.namespace}/${stored.document.metadata.name}`)).toEqual([
      'Route/default/reviews',
      'Service/default/reviews',
      'Service/shop/ratings',
    ]);
    // One transaction: every document carries the revision of the change.
    expect(new Set(listed.documents.map((stored) => stored.revision))).toEqual(new Set([first.revision]));
    expect(await store.get('Service', 'shop', 'ratings')).toEqual({ document: service('ratings', undefined, 'shop'), revision: first.revision });
    expect(await store.get('Service', 'default', 'nothing')).toBeUndefined();

    const same = await store.applySet({ put: [service('reviews')] });
    expect(same).toMatchObject({ revision: first.revision, unchanged: [{ name: 'reviews' }] });

    const updated = await store.applySet({ put: [service('reviews', { ports: [] })] });
    expect(updated.revision).toBeGreaterThan(first.revision);
    expect((await store.get('Service', 'default', 'reviews'))?.revision).toBe(updated.revision);
    expect((await store.get('Service', 'shop', 'ratings'))?.revision).toBe(first.revision);

    const deleted = await store.delete('Service', 'shop', 'ratings');
    expect(deleted).toMatchObject({ deleted: [{ name: 'ratings' }] });
    expect(await store.get('Service', 'shop', 'ratings')).toBeUndefined();
    const missing = await store.delete('Service', 'shop', 'ratings');
    expect(missing).toMatchObject({ revision: deleted.revision, deleted: [], notFound: [{ name: 'ratings' }] });
  });

  it('keeps the set across a reopen of the store', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const written = await store.applySet({ put: [service('a'), service('b')] });
    await store.close();
    const reopened = await openStore(prefix);
    expect(await reopened.revision()).toBe(written.revision);
    expect((await reopened.list()).documents).toHaveLength(2);
  });
});

describe('EtcdConfigStore: set changes are atomic', () => {
  it('applies puts and deletes of one change in one transaction, seen by a watcher as one event', async () => {
    const store = await openStore(freshPrefix());
    await store.applySet({ put: [service('a'), service('b'), service('c')] });
    const recorder = new Recorder();
    await store.watch(recorder.listener, { onProblem: recorder.onProblem });
    const change = await store.applySet({
      put: [service('d'), service('a', { ports: [] })],
      delete: [
        { kind: 'Service', namespace: 'default', name: 'b' },
        { kind: 'Service', namespace: 'default', name: 'c' },
      ],
    });
    await recorder.until('the change', () => recorder.events.length > 0);
    expect(recorder.events).toHaveLength(1);
    expect(recorder.events[0]?.revision).toBe(change.revision);
    expect(recorder.events[0]?.changes.map(brief).sort()).toEqual(['delete Service/default/b', 'delete Service/default/c', 'put Service/default/a', 'put Service/default/d']);
  });

  it('writes nothing of a change with a bad document, or one larger than an etcd transaction takes', async () => {
    const store = await openStore(freshPrefix(), { maxTxnOps: 4 });
    const before = (await store.applySet({ put: [service('a')] })).revision;
    await expectStoreError(
      store.applySet({ put: [service('b'), { ...service('c'), kind: 'not a kind' }] }),
      'TM_ERR_CP_STORE_BAD_DOCUMENT',
      /document 1 of the set: not a storable document: kind: expected a kind name/,
    );
    await expectStoreError(
      store.applySet({ put: ['b', 'c', 'd', 'e'].map((name) => service(name)) }),
      'TM_ERR_CP_STORE_TOO_LARGE',
      /writes or deletes 4 documents: 5 operations in one etcd transaction, and etcd at http:\/\/127\.0\.0\.1:\d+ takes at most 4 \(its --max-txn-ops\)/,
    );
    // etcd's own limit (128 by default) when the store is told a larger one: refused by etcd, still nothing written.
    const trusting = await openStore(freshPrefix(), { maxTxnOps: 1000 });
    await expectStoreError(trusting.applySet({ put: Array.from({ length: 200 }, (_, i) => service(`s-${i}`)) }), 'TM_ERR_CP_STORE_TOO_LARGE', /too many operations in txn/);
    expect(await trusting.revision()).toBe(0);
    expect(await store.revision()).toBe(before);
    expect((await store.list()).documents).toHaveLength(1);
  });
});

describe('EtcdConfigStore: two instances, as two control-plane replicas', () => {
  it('gives the loser of a compare-and-swap a conflict it can retry', async () => {
    const prefix = freshPrefix();
    const one = await openStore(prefix);
    const two = await openStore(prefix);
    const base = await one.revision();
    const won = await two.applySet({ put: [service('from-two')] }, base);
    await expectStoreError(one.applySet({ put: [service('from-one')] }, base), 'TM_ERR_CP_STORE_CONFLICT', new RegExp(`is at revision ${won.revision}, not ${base} as expected`));
    expect(await one.get('Service', 'default', 'from-one')).toBeUndefined();
    const retried = await one.applySet({ put: [service('from-one')] }, await one.revision());
    expect(retried.revision).toBeGreaterThan(won.revision);

    for (let round = 0; round < 5; round++) {
      const at = await one.revision();
      const results = await Promise.allSettled([one.applySet({ put: [service(`one-${round}`)] }, at), two.applySet({ put: [service(`two-${round}`)] }, at)]);
      const rejected = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      expect(results.filter((result) => result.status === 'fulfilled')).toHaveLength(1);
      expect(rejected).toHaveLength(1);
      expect(isStoreError(rejected[0]?.reason, 'TM_ERR_CP_STORE_CONFLICT')).toBe(true);
    }
  });

  it('serialises unconditional writers without losing a change', async () => {
    const prefix = freshPrefix();
    const one = await openStore(prefix);
    const two = await openStore(prefix);
    const writes = [];
    for (let i = 0; i < 10; i++) writes.push(one.applySet({ put: [service(`one-${i}`)] }), two.applySet({ put: [service(`two-${i}`)] }));
    const revisions = (await Promise.all(writes)).map((result) => result.revision);
    expect(new Set(revisions).size).toBe(20);
    expect((await one.list()).documents).toHaveLength(20);
  });

  it('lets each see the other\'s writes through watch', async () => {
    const prefix = freshPrefix();
    const one = await openStore(prefix);
    const two = await openStore(prefix);
    const seenByOne = new Recorder();
    const seenByTwo = new Recorder();
    await one.watch(seenByOne.listener, { onProblem: seenByOne.onProblem });
    await two.watch(seenByTwo.listener, { onProblem: seenByTwo.onProblem });

    const put = await one.applySet({ put: [service('a'), service('b')] });
    await seenByTwo.until('a and b', () => seenByTwo.changes().length === 2);
    expect(seenByTwo.events.map((event) => event.revision)).toEqual([put.revision]);
    const removal = await two.delete('Service', 'default', 'a');
    await seenByOne.until('the delete', () => seenByOne.changes().includes('delete Service/default/a'));
    expect(seenByOne.events.at(-1)?.revision).toBe(removal.revision);
    expect(seenByOne.problems).toEqual([]);
    expect(seenByTwo.problems).toEqual([]);
  });
});

describe('EtcdConfigStore: watch across an etcd restart and compacted history', () => {
  /**
   * The watching store reaches etcd through a gate, so it stays away (and the
   * test knows it) while etcd is killed, restarted and written to by the other
   * store; then the gate opens and the watch must catch up.
   */
  async function awayScenario(compactWhileAway: boolean): Promise<{ recorder: Recorder; writer: EtcdConfigStore }> {
    const prefix = freshPrefix();
    const gate = await startEtcdGate({ host: '127.0.0.1', port: Number(new URL(server().url).port) });
    gates.push(gate);
    const watching = new EtcdConfigStore({ urls: [gate.url], prefix });
    stores.push(watching);
    await watching.start();
    const writer = await openStore(prefix);
    const recorder = new Recorder();
    await watching.watch(recorder.listener, { onProblem: recorder.onProblem });
    await writer.applySet({ put: [service('before')] });
    await recorder.until('before', () => recorder.changes().includes('put Service/default/before'));

    gate.close();
    await server().kill();
    await recorder.until('the outage reported', () => recorder.problems.some((problem) => isStoreError(problem, 'TM_ERR_CP_STORE_UNAVAILABLE')));
    expect(recorder.problems[0]?.message).toContain(gate.url);
    await server().restart();

    // The writer's client may need a moment after the restart (its own pause after failures): retry, bounded.
    const whileAway = [{ put: [service('away-1')] }, { put: [service('away-2'), service('before', { ports: [] })] }, { put: [], delete: [{ kind: 'Service', namespace: 'default', name: 'away-1' }] }];
    for (const change of whileAway) await vi.waitFor(() => writer.applySet(change), { timeout: 20_000, interval: 250 });
    if (compactWhileAway) await rawClient().kv.compact({ revision: String(await writer.revision()), physical: true });
    expect(recorder.changes()).toEqual(['put Service/default/before']);

    gate.open();
    await recorder.until('every change made while away', () => recorder.changes().includes('put Service/default/away-2'), 30_000);
    expect(recorder.events.at(-1)?.revision).toBe(await writer.revision());
    return { recorder, writer };
  }

  it('resumes after etcd is killed and restarted, and sees every change made while it was away', async () => {
    const { recorder, writer } = await awayScenario(false);
    await recorder.until('the last change', () => recorder.changes().includes('delete Service/default/away-1'));
    expect(recorder.changes()).toEqual([
      'put Service/default/before',
      'put Service/default/away-1',
      'put Service/default/away-2',
      'put Service/default/before',
      'delete Service/default/away-1',
    ]);
    // And it goes on watching.
    await writer.applySet({ put: [service('after')] });
    await recorder.until('after', () => recorder.changes().includes('put Service/default/after'));
  });

  it('reads the whole set again when the history it missed was compacted, and reports the net change', async () => {
    const { recorder, writer } = await awayScenario(true);
    // away-1 came and went while the watcher was away: the net change does not have it.
    expect(recorder.changes()).toEqual(['put Service/default/before', 'put Service/default/away-2', 'put Service/default/before']);
    expect(recorder.events.at(-1)?.resync).toBe(false);
    await writer.applySet({ put: [service('after')] });
    await recorder.until('after', () => recorder.changes().includes('put Service/default/after'));
  });

  it('catches up from fromRevision, and resyncs when etcd compacted that history away', async () => {
    const store = await openStore(freshPrefix());
    const first = await store.applySet({ put: [service('a'), service('b')] });
    await store.applySet({ put: [service('c')], delete: [{ kind: 'Service', namespace: 'default', name: 'a' }] });
    const last = await store.applySet({ put: [service('b', { ports: [] })] });

    const catching = new Recorder();
    await store.watch(catching.listener, { fromRevision: first.revision });
    await catching.until('changes after the first', () => catching.changes().length >= 3);
    expect(catching.changes()).toEqual(['put Service/default/c', 'delete Service/default/a', 'put Service/default/b']);
    expect(catching.events.at(-1)?.revision).toBe(last.revision);
    expect(catching.events.every((event) => !event.resync)).toBe(true);

    await rawClient().kv.compact({ revision: String(last.revision), physical: true });
    const late = new Recorder();
    await store.watch(late.listener, { fromRevision: first.revision });
    await late.until('a resync', () => late.events.some((event) => event.resync));
    expect(late.events[0]?.revision).toBe(last.revision);
    expect(late.changes()).toEqual(['put Service/default/b', 'put Service/default/c']);
  });
});

describe('EtcdConfigStore: damaged keys and unreachable etcd', () => {
  it('names the key and the URL of a document that is not JSON, in list() and in a watch', async () => {
    const prefix = freshPrefix();
    const store = await openStore(prefix);
    const recorder = new Recorder();
    await store.watch(recorder.listener, { onProblem: recorder.onProblem });
    await rawClient().put(`${prefix}docs/Service/default/broken`).value('{"apiVersion":');
    const pattern = new RegExp(`etcd key ${prefix}docs/Service/default/broken at ${server().url.replace(/[.]/g, '\\.')}: not valid JSON`);
    await expectStoreError(store.list(), 'TM_ERR_CP_STORE_CORRUPT', pattern);
    await recorder.until('the damaged key reported', () => recorder.problems.length > 0);
    expect(recorder.problems[0]?.message).toMatch(pattern);
    await rawClient().put(`${prefix}docs/Service/default/broken`).value(JSON.stringify(service('other')));
    await expectStoreError(store.list(), 'TM_ERR_CP_STORE_CORRUPT', /holds Service\/default\/other, but its place is for Service\/default\/broken/);
  });

  it('says within a bounded time that etcd cannot be reached, naming the URL', async () => {
    for (const url of ['http://127.0.0.1:1', 'http://nonexistent.invalid:2379']) {
      const store = new EtcdConfigStore({ urls: [url], startTimeoutMs: 1_500 });
      stores.push(store);
      const started = Date.now();
      await expectStoreError(store.start(), 'TM_ERR_CP_STORE_UNAVAILABLE', new RegExp(`etcd at ${url.replace(/[.]/g, '\\.')} did not answer within 1500 ms: .+`));
      expect(Date.now() - started).toBeLessThan(5_000);
      await expectStoreError(store.list(), 'TM_ERR_CP_STORE_CLOSED', /not started/);
    }
    let badFlag: unknown;
    try {
      createConfigStore({ etcd: 'etcd.example:2379' });
    } catch (err) {
      badFlag = err;
    }
    expect(isTracemeshError(badFlag, 'TM_ERR_CLI_BAD_VALUE')).toBe(true);
  });
});
