import { cp, mkdir, mkdtemp, readdir, readFile, rm, utimes, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterEach, describe, expect, it, vi } from 'vitest';
import type { TracemeshError } from '../../lib/errors.js';
import { generationDir, generationName } from './directory-layout.js';
import { DirectoryConfigStore } from './directory-store.js';
import { pruneGenerations, PRUNE_MIN_AGE_MS } from './directory-writer.js';
import type { DirectoryStoreOptions } from './directory-store.js';
import { isStoreError } from './store-errors.js';
import type { ConfigDocument, DocumentChange, JsonValue, StoreChangeEvent } from './types.js';
import { doc, expectStoreError, service } from '../../../test/support/store-documents.js';

const dirs: string[] = [];
const stores: DirectoryConfigStore[] = [];

afterEach(async () => {
  for (const store of stores.splice(0)) await store.close();
  for (const dir of dirs.splice(0)) await rm(dir, { recursive: true, force: true });
});

async function tempDir(): Promise<string> {
  const dir = await mkdtemp(path.join(tmpdir(), 'tracemesh-config-store-'));
  dirs.push(dir);
  return dir;
}

async function openStore(dir: string, options: Partial<DirectoryStoreOptions> = {}): Promise<DirectoryConfigStore> {
  const store = new DirectoryConfigStore({ dir, pollIntervalMs: 50, ...options });
  stores.push(store);
  await store.start();
  return store;
}


/** Collects watch events; `until` waits (bounded) for one that matches. */
class Recorder {
  readonly events: StoreChangeEvent[] = [];
  readonly problems: TracemeshError[] = [];
  readonly listener = (event: StoreChangeEvent): void => {
    this.events.push(event);
  };
  readonly onProblem = (error: TracemeshError): void => {
    this.problems.push(error);
  };

  async until(what: string, match: (event: StoreChangeEvent) => boolean, timeoutMs = 5_000): Promise<StoreChangeEvent> {
    let found: StoreChangeEvent | undefined;
    await vi.waitFor(
      () => {
        found = this.events.find(match);
        if (found === undefined) throw new Error(`no watch event with ${what} within ${timeoutMs} ms; got ${JSON.stringify(this.events)}`);
      },
      { timeout: timeoutMs, interval: 10 },
    );
    return found as StoreChangeEvent;
  }
}

function brief(change: DocumentChange): string {
  if (change.type === 'delete') return `delete ${change.key.kind}/${change.key.namespace}/${change.key.name}`;
  const { kind, metadata } = change.document.document;
  return `put ${kind}/${metadata.namespace}/${metadata.name}@${change.document.revision}`;
}

describe('DirectoryConfigStore: documents by kind, namespace and name', () => {
  it('applies, lists, gets and deletes, one revision per change', async () => {
    const store = await openStore(await tempDir());
    expect(await store.revision()).toBe(0);
    expect(await store.list()).toEqual({ revision: 0, documents: [] });

    const first = await store.applySet({ put: [service('reviews'), service('ratings', undefined, 'shop'), doc('Route', 'reviews', { hosts: ['reviews'] })] });
    expect(first.revision).toBe(1);
    expect(first.created.map((key) => key.name)).toEqual(['reviews', 'ratings', 'reviews']);

    const listed = await store.list();
    expect(listed.revision).toBe(1);
    // Ordered by kind, namespace, name.
    expect(listed.documents.map((stored) => `${stored.document.kind}/${stored.document.metadata.namespace}/${stored.document.metadata.name}@${stored.revision}`)).toEqual([
      'Route/default/reviews@1',
      'Service/default/reviews@1',
      'Service/shop/ratings@1',
    ]);
    expect(await store.get('Service', 'shop', 'ratings')).toEqual({ document: service('ratings', undefined, 'shop'), revision: 1 });
    expect(await store.get('Service', 'default', 'nothing')).toBeUndefined();

    const changed = await store.applySet({ put: [service('reviews', { ports: [{ name: 'http', port: 9080, protocol: 'http' }] })] });
    expect(changed).toMatchObject({ revision: 2, updated: [{ kind: 'Service', namespace: 'default', name: 'reviews' }], created: [] });
    expect((await store.get('Service', 'default', 'reviews'))?.revision).toBe(2);
    expect((await store.get('Service', 'shop', 'ratings'))?.revision).toBe(1);

    const deleted = await store.delete('Service', 'shop', 'ratings');
    expect(deleted).toMatchObject({ revision: 3, deleted: [{ name: 'ratings' }] });
    expect(await store.get('Service', 'shop', 'ratings')).toBeUndefined();
    const missing = await store.delete('Service', 'shop', 'ratings');
    expect(missing).toMatchObject({ revision: 3, deleted: [], notFound: [{ name: 'ratings' }] });
    expect(await store.revision()).toBe(3);
  });

  it('does not write a document that is already stored exactly so (key order aside)', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    await store.applySet({ put: [service('a', { ports: [{ name: 'http', port: 80, protocol: 'http' }] })] });
    const again = await store.applySet({ put: [service('a', { ports: [{ protocol: 'http', port: 80, name: 'http' }] })] });
    expect(again).toMatchObject({ revision: 1, unchanged: [{ name: 'a' }], created: [], updated: [] });
    expect(await readdir(path.join(dir, 'generations'))).toEqual([generationName(1)]);
  });

  it('keeps the revision and the documents across a reopen', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    for (const name of ['a', 'b', 'c']) await store.applySet({ put: [service(name)] });
    await store.close();
    const reopened = await openStore(dir);
    expect(await reopened.revision()).toBe(3);
    expect((await reopened.list()).documents.map((stored) => stored.document.metadata.name)).toEqual(['a', 'b', 'c']);
    expect((await reopened.applySet({ put: [service('d')] })).revision).toBe(4);
  });
});

describe('DirectoryConfigStore: old generations', () => {
  it('prunes all but the newest few, and only those older than a minute', async () => {
    const dir = await tempDir();
    const store = await openStore(dir, { keepGenerations: 2 });
    for (let i = 0; i < 6; i++) await store.applySet({ put: [service(`s-${i}`)] });
    // Written just now: all kept.
    expect(await readdir(path.join(dir, 'generations'))).toHaveLength(6);
    await pruneGenerations(dir, 2, Date.now() + PRUNE_MIN_AGE_MS + 1_000);
    expect(await readdir(path.join(dir, 'generations'))).toEqual([4, 5, 6].map(generationName));
    // Unchanged documents are hard links: the survivors are whole without the pruned ones.
    const reopened = await openStore(dir);
    expect((await reopened.list()).documents.map((stored) => `${stored.document.metadata.name}@${stored.revision}`)).toEqual(
      [0, 1, 2, 3, 4, 5].map((i) => `s-${i}@${i + 1}`),
    );
    expect(await readdir(path.join(dir, 'staging'))).toEqual([]);
  });
});

describe('DirectoryConfigStore: set changes are atomic', () => {
  it('writes puts and deletes of one change as one revision, and a bad document stops the whole change', async () => {
    const store = await openStore(await tempDir());
    await store.applySet({ put: [service('a'), service('b')] });
    const result = await store.applySet({ put: [service('c'), service('a', { ports: [] })], delete: [{ kind: 'Service', namespace: 'default', name: 'b' }] });
    expect(result).toMatchObject({ revision: 2, created: [{ name: 'c' }], updated: [{ name: 'a' }], deleted: [{ name: 'b' }] });
    expect((await store.list()).documents.map((stored) => `${stored.document.metadata.name}@${stored.revision}`)).toEqual(['a@2', 'c@2']);

    await expectStoreError(
      store.applySet({ put: [service('d'), { ...service('e'), metadata: { name: 'E_bad', namespace: 'default' } }] }),
      'TM_ERR_CP_STORE_BAD_DOCUMENT',
      /document 1 of the set: not a storable document: metadata\.name: expected a DNS-1123 label, got "E_bad"/,
    );
    expect(await store.revision()).toBe(2);
    expect(await store.get('Service', 'default', 'd')).toBeUndefined();
  });

  it('never shows a reader half of a set, while another store instance rewrites every document', async () => {
    const dir = await tempDir();
    const writer = await openStore(dir);
    const reader = await openStore(dir);
    const names = Array.from({ length: 40 }, (_, i) => `svc-${i}`);
    const round = (n: number) => ({ put: names.map((name) => service(name, { round: n })) });
    await writer.applySet(round(0));

    let writing = true;
    const seen = new Set<number>();
    const reading = (async () => {
      while (writing) {
        const snapshot = await reader.list();
        const rounds = new Set(snapshot.documents.map((stored) => (stored.document.spec as { round: number }).round));
        expect(snapshot.documents).toHaveLength(names.length);
        expect([...rounds]).toEqual([snapshot.revision - 1]);
        seen.add(snapshot.revision);
      }
    })();
    for (let n = 1; n <= 15; n++) await writer.applySet(round(n));
    writing = false;
    await reading;
    expect(await reader.revision()).toBe(16);
    expect(seen.size).toBeGreaterThan(1);
  });

  it('leaves no trace of a writer that crashed before its rename, and removes its leftovers once stale', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    await store.applySet({ put: [service('a')] });
    // What a crash halfway through writing revision 2 leaves: an incomplete set in staging/.
    const leftover = path.join(dir, 'staging', `${generationName(2)}-99999-deadbeef`);
    await mkdir(path.join(leftover, 'Service', 'default'), { recursive: true });
    await writeFile(path.join(leftover, 'Service', 'default', 'b.json'), '{"apiVersion":"tracemesh.dev/v1","ki');
    expect(await store.revision()).toBe(1);
    expect((await store.list()).documents).toHaveLength(1);
    expect((await store.applySet({ put: [service('c')] })).revision).toBe(2);

    const longAgo = new Date(Date.now() - 3_600_000);
    await utimes(leftover, longAgo, longAgo);
    await openStore(dir);
    expect(await readdir(path.join(dir, 'staging'))).toEqual([]);
  });
});

describe('DirectoryConfigStore: compare-and-swap between writers', () => {
  it('refuses a change based on an old revision with a conflict, and applies it on the current one', async () => {
    const dir = await tempDir();
    const one = await openStore(dir);
    const two = await openStore(dir);
    const base = (await one.list()).revision;
    await two.applySet({ put: [service('from-two')] }, base);
    await expectStoreError(one.applySet({ put: [service('from-one')] }, base), 'TM_ERR_CP_STORE_CONFLICT', /is at revision 1, not 0 as expected/);
    expect(await one.get('Service', 'default', 'from-one')).toBeUndefined();
    const retried = await one.applySet({ put: [service('from-one')] }, await one.revision());
    expect(retried.revision).toBe(2);
  });

  it('lets exactly one of two simultaneous conditional writers win', async () => {
    const dir = await tempDir();
    const one = await openStore(dir);
    const two = await openStore(dir);
    for (let round = 0; round < 5; round++) {
      const base = await one.revision();
      const results = await Promise.allSettled([one.applySet({ put: [service(`one-${round}`)] }, base), two.applySet({ put: [service(`two-${round}`)] }, base)]);
      const won = results.filter((result) => result.status === 'fulfilled');
      const lost = results.filter((result): result is PromiseRejectedResult => result.status === 'rejected');
      expect(won).toHaveLength(1);
      expect(lost).toHaveLength(1);
      expect(isStoreError(lost[0]?.reason, 'TM_ERR_CP_STORE_CONFLICT')).toBe(true);
      expect(await one.revision()).toBe(base + 1);
    }
  });

  it('serialises unconditional writers from two instances without losing a change', async () => {
    const dir = await tempDir();
    const one = await openStore(dir);
    const two = await openStore(dir);
    const writes = [];
    for (let i = 0; i < 10; i++) writes.push(one.applySet({ put: [service(`one-${i}`)] }), two.applySet({ put: [service(`two-${i}`)] }));
    const revisions = (await Promise.all(writes)).map((result) => result.revision);
    expect(new Set(revisions).size).toBe(20);
    const snapshot = await one.list();
    expect(snapshot.revision).toBe(20);
    expect(snapshot.documents).toHaveLength(20);
  });
});

describe('DirectoryConfigStore: watch', () => {
  it('lets two instances on one directory see each other\'s changes', async () => {
    const dir = await tempDir();
    const one = await openStore(dir);
    const two = await openStore(dir);
    const seenByOne = new Recorder();
    const seenByTwo = new Recorder();
    await one.watch(seenByOne.listener, { onProblem: seenByOne.onProblem });
    await two.watch(seenByTwo.listener, { onProblem: seenByTwo.onProblem });

    await one.applySet({ put: [service('a'), service('b')] });
    const put = await seenByTwo.until('revision 1', (event) => event.revision === 1);
    expect(put.changes.map(brief).sort()).toEqual(['put Service/default/a@1', 'put Service/default/b@1']);
    expect(put.resync).toBe(false);

    await two.delete('Service', 'default', 'a');
    const removal = await seenByOne.until('revision 2', (event) => event.revision === 2);
    expect(removal.changes.map(brief)).toEqual(['delete Service/default/a']);
    // Its own writes reach a watcher too.
    await seenByTwo.until('revision 2', (event) => event.revision === 2);
    expect(seenByOne.problems).toEqual([]);
  });

  it('sees changes by polling alone, when fs.watch is not used', async () => {
    const dir = await tempDir();
    const watching = await openStore(dir, { fsWatch: false, pollIntervalMs: 20 });
    const writer = await openStore(dir);
    const recorder = new Recorder();
    await watching.watch(recorder.listener);
    await writer.applySet({ put: [service('polled')] });
    const event = await recorder.until('revision 1', (e) => e.revision === 1, 2_000);
    expect(event.changes.map(brief)).toEqual(['put Service/default/polled@1']);
  });

  it('reports what changed after fromRevision, and a resync when that revision is gone', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    await store.applySet({ put: [service('a'), service('b')] });
    await store.applySet({ put: [service('c')], delete: [{ kind: 'Service', namespace: 'default', name: 'a' }] });
    await store.applySet({ put: [service('b', { ports: [] })] });

    const recorder = new Recorder();
    await store.watch(recorder.listener, { fromRevision: 1 });
    const caughtUp = await recorder.until('revision 3', (event) => event.revision === 3);
    expect(caughtUp.changes.map(brief).sort()).toEqual(['delete Service/default/a', 'put Service/default/b@3', 'put Service/default/c@2']);
    expect(caughtUp.resync).toBe(false);

    await rm(generationDir(dir, 1), { recursive: true });
    const late = new Recorder();
    await store.watch(late.listener, { fromRevision: 1 });
    const resync = await late.until('a resync', (event) => event.resync);
    expect(resync.revision).toBe(3);
    expect(resync.changes.map(brief)).toEqual(['put Service/default/b@3', 'put Service/default/c@2']);
  });

  it('stops delivering after stop(), and survives a listener that throws', async () => {
    const store = await openStore(await tempDir());
    const recorder = new Recorder();
    const throwing = await store.watch(
      () => {
        throw new Error('listener bug');
      },
      { onProblem: recorder.onProblem },
    );
    const watch = await store.watch(recorder.listener);
    await store.applySet({ put: [service('a')] });
    await recorder.until('revision 1', (event) => event.revision === 1);
    await vi.waitFor(() => expect(recorder.problems.map((problem) => problem.code)).toEqual(['TM_ERR_CP_STORE_LISTENER_FAILED']), { timeout: 5_000, interval: 10 });
    expect(recorder.problems[0]?.message).toMatch(/threw at revision 1: listener bug/);
    throwing.stop();
    watch.stop();
    watch.stop();
    await store.applySet({ put: [service('b')] });
    // Another watch sees revision 2; the stopped one must not have.
    const after = new Recorder();
    await store.watch(after.listener, { fromRevision: 1 });
    await after.until('revision 2', (event) => event.revision === 2);
    expect(recorder.events.map((event) => event.revision)).toEqual([1]);
  });
});

describe('DirectoryConfigStore: damaged files and bad input', () => {
  async function corruptedStore(): Promise<{ dir: string; file: string }> {
    const dir = await tempDir();
    const store = await openStore(dir);
    await store.applySet({ put: [service('a'), service('b')] });
    await store.close();
    return { dir, file: path.join(generationDir(dir, 1), 'Service', 'default', 'b.json') };
  }

  it('names the file when a document is not JSON, at start and on list', async () => {
    const { dir, file } = await corruptedStore();
    await writeFile(file, '{"apiVersion": "tracemesh.dev/v1", "kind":');
    const store = new DirectoryConfigStore({ dir });
    stores.push(store);
    await expectStoreError(store.start(), 'TM_ERR_CP_STORE_CORRUPT', new RegExp(`${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}: not valid JSON`));
  });

  it('names the file when a document is in the wrong place, missing, or when the manifest is damaged', async () => {
    const { dir, file } = await corruptedStore();
    const manifest = path.join(generationDir(dir, 1), 'set.json');
    const manifestText = await readFile(manifest, 'utf8');
    const check = async (pattern: RegExp): Promise<void> => {
      const store = new DirectoryConfigStore({ dir });
      stores.push(store);
      await expectStoreError(store.start(), 'TM_ERR_CP_STORE_CORRUPT', pattern);
    };
    await writeFile(file, JSON.stringify(service('zzz')));
    await check(/b\.json: holds Service\/default\/zzz, but its place is for Service\/default\/b/);
    await rm(file);
    await check(/b\.json: missing, but its set \(revision 1\) lists it/);
    await writeFile(manifest, '[1, 2');
    await check(/set\.json: not valid JSON/);
    await writeFile(manifest, manifestText.replace('"revision": 1', '"revision": 7'));
    await check(/set\.json: says revision 7, but its directory is revision 1/);
  });

  it('tells a watcher about a damaged generation once, and goes on when it is repaired', async () => {
    const dir = await tempDir();
    const store = await openStore(dir);
    await store.applySet({ put: [service('a')] });
    const recorder = new Recorder();
    await store.watch(recorder.listener, { onProblem: recorder.onProblem });

    // Revision 2 as another writer would leave it, with a damaged document.
    const next = generationDir(dir, 2);
    await cp(generationDir(dir, 1), `${next}.tmp`, { recursive: true });
    const manifest = path.join(`${next}.tmp`, 'set.json');
    await writeFile(manifest, (await readFile(manifest, 'utf8')).replace('"revision": 1,', '"revision": 2,').replace(/"revision": 1\n/, '"revision": 2\n'));
    const bad = path.join(`${next}.tmp`, 'Service', 'default', 'a.json');
    await rm(bad);
    await writeFile(bad, 'not json');
    await import('node:fs/promises').then((fs) => fs.rename(`${next}.tmp`, next));

    await vi.waitFor(() => expect(recorder.problems.map((problem) => problem.code)).toEqual(['TM_ERR_CP_STORE_CORRUPT']), { timeout: 5_000, interval: 10 });
    expect(recorder.problems[0]?.message).toContain(path.join(next, 'Service', 'default', 'a.json'));
    // Polls keep failing the same way: still one report. A negative check needs time to pass: four poll intervals.
    await new Promise((resolve) => setTimeout(resolve, 4 * 50));
    expect(recorder.problems).toHaveLength(1);

    await rm(path.join(next, 'Service', 'default', 'a.json'));
    await writeFile(path.join(next, 'Service', 'default', 'a.json'), JSON.stringify(service('a', { repaired: true })));
    const event = await recorder.until('revision 2', (e) => e.revision === 2);
    expect(event.changes.map(brief)).toEqual(['put Service/default/a@2']);
  });

  it('refuses documents that are not storable, naming the document and the field', async () => {
    const store = await openStore(await tempDir());
    const cases: Array<[unknown, RegExp]> = [
      ['text', /document 0 of the set: not a storable document: expected a mapping with apiVersion, kind, metadata and spec, got "text"/],
      [{ ...service('a'), kind: 'service' }, /kind: expected a kind name such as Service, got "service"/],
      [{ ...service('a'), status: {} }, /status: unknown field/],
      [{ apiVersion: 'tracemesh.dev/v1', kind: 'Service', metadata: { name: 'a', namespace: 'default' } }, /spec: missing/],
      [{ ...service('a'), metadata: { name: 'a', namespace: '../etc' } }, /metadata\.namespace: expected a DNS-1123 label, got "\.\.\/etc"/],
      [service('a', { ports: [{ port: Number.NaN }] }), /spec\.ports\[0\]\.port: NaN is not a JSON number/],
      [service('a', { when: new Date(0) as unknown as JsonValue }), /spec\.when: a Date object is not JSON data/],
    ];
    for (const [document, message] of cases) {
      await expectStoreError(store.applySet({ put: [document as ConfigDocument] }), 'TM_ERR_CP_STORE_BAD_DOCUMENT', message);
    }
    await expectStoreError(store.applySet({ put: [service('a'), service('a')] }), 'TM_ERR_CP_STORE_BAD_DOCUMENT', /document 1 of the set: Service\/default\/a is also document 0 of the set/);
    await expectStoreError(
      store.applySet({ put: [service('a')], delete: [{ kind: 'Service', namespace: 'default', name: 'a' }] }),
      'TM_ERR_CP_STORE_BAD_DOCUMENT',
      /deletion 0 of the set: Service\/default\/a is also document 0/,
    );
    await expectStoreError(store.applySet({ put: [service('a')] }, -1), 'TM_ERR_CP_STORE_BAD_ARGUMENT', /expectedRevision: expected a store revision/);
    await expectStoreError(store.get('Service', 'default', 'A/b'), 'TM_ERR_CP_STORE_BAD_DOCUMENT', /get: name: expected a DNS-1123 label/);
    expect(await store.revision()).toBe(0);
  });

  it('refuses a document over 1 MiB and a set over 64 MiB, writing nothing', async () => {
    const store = await openStore(await tempDir());
    await expectStoreError(
      store.applySet({ put: [service('big', { blob: 'x'.repeat(1024 * 1024) })] }),
      'TM_ERR_CP_STORE_TOO_LARGE',
      /document 0 of the set \(Service\/default\/big\): \d+ bytes of JSON; a document may have at most 1048576/,
    );
    const almostMiB = 'x'.repeat(1024 * 1024 - 200);
    const many = Array.from({ length: 65 }, (_, i) => service(`part-${i}`, { blob: almostMiB }));
    await expectStoreError(store.applySet({ put: many }), 'TM_ERR_CP_STORE_TOO_LARGE', /the set would hold \d+ bytes of JSON after this change; the store holds at most 67108864/);
    expect(await store.revision()).toBe(0);
  });

  it('says when it is used before start or after close, closes twice, and names a directory it cannot use', async () => {
    const dir = await tempDir();
    const store = new DirectoryConfigStore({ dir });
    stores.push(store);
    await store.close();
    await store.close();
    await expectStoreError(store.list(), 'TM_ERR_CP_STORE_CLOSED', /is closed/);
    const fresh = new DirectoryConfigStore({ dir });
    stores.push(fresh);
    await expectStoreError(fresh.list(), 'TM_ERR_CP_STORE_CLOSED', /not started \(call start\(\) first\)/);
    await expectStoreError(store.start(), 'TM_ERR_CP_STORE_CLOSED', /is closed/);

    const file = path.join(dir, 'a-file');
    await writeFile(file, 'not a directory');
    const onFile = new DirectoryConfigStore({ dir: file });
    stores.push(onFile);
    await expectStoreError(onFile.start(), 'TM_ERR_CP_STORE_UNAVAILABLE', new RegExp(`the config directory ${file.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')} cannot be used: .*ENOTDIR`));
    expect(() => new DirectoryConfigStore({ dir, pollIntervalMs: 0 })).toThrow(/pollIntervalMs: expected 10 to 60000 ms, got 0/);
  });
});
