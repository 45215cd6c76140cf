/**
 * Watching the etcd store: an etcd watch on the prefix from the last etcd
 * revision this watch has processed, so that nothing is missed across
 * reconnects. The resume point is ours, advanced only by events delivered
 * (and by progress notifications, which etcd sends only once a watch has
 * caught up), never by a watch-creation answer, which carries the current
 * revision before the history behind it has arrived.
 *
 * When the stream breaks (etcd restarted, network) the watch reconnects with
 * the shared backoff; when etcd cancels it (history compacted past the
 * resume point) it reads the whole set and reports the difference from what
 * it had reported, so even then no change is lost.
 */
import type { Etcd3, IWatchResponse, Watcher } from 'etcd3';
import { backoffMs } from '../../lib/backoff.js';
import { documentId } from './document-codec.js';
import { etcdFailure, isCompacted } from './etcd-errors.js';
import type { EtcdKeys } from './etcd-keys.js';
import { decodeEtcdDocument, readEtcdSet, storedDocuments } from './etcd-reader.js';
import type { EtcdSet } from './etcd-reader.js';
import type { DocumentChange, StoreListener, StoreWatch, WatchOptions } from './types.js';
import { WatchOutlet } from './watch-outlet.js';
import { WatchView } from './watch-view.js';

export interface EtcdWatchContext {
  readonly client: Etcd3;
  readonly keys: EtcdKeys;
  readonly location: string;
}

export class EtcdWatch implements StoreWatch {
  private readonly outlet: WatchOutlet;
  private watcher: Watcher | undefined = undefined;
  private reconnectTimer: NodeJS.Timeout | undefined = undefined;
  private attempt = 0;
  /** An outage is reported once, when it starts. */
  private outageReported = false;

  private constructor(
    private readonly context: EtcdWatchContext,
    private readonly view: WatchView,
    /** The store revision of the view (the revision key's mod revision). */
    private storeRevision: number,
    /** The last etcd revision processed: the watch resumes after it. */
    private lastSeen: number,
    /** The next full read reports everything as a resync: the state at fromRevision was unknown. */
    private resync: boolean,
    listener: StoreListener,
    options: WatchOptions,
    private readonly onStop: (watch: EtcdWatch) => void,
  ) {
    this.outlet = new WatchOutlet(listener, options.onProblem, `etcd at ${context.location}`);
  }

  static async start(context: EtcdWatchContext, listener: StoreListener, options: WatchOptions, onStop: (watch: EtcdWatch) => void): Promise<EtcdWatch> {
    const from = options.fromRevision;
    let base: EtcdSet | undefined;
    let resync = false;
    if (from === undefined) {
      base = await readEtcdSet(context.client, context.keys, context.location);
    } else if (from > 0) {
      try {
        base = await readEtcdSet(context.client, context.keys, context.location, from);
      } catch (err) {
        if (!isCompacted(err)) throw err;
        resync = true;
      }
    }
    const view = new WatchView(base === undefined ? [] : storedDocuments(base));
    const lastSeen = base?.readRevision ?? from ?? 0;
    const watch = new EtcdWatch(context, view, base?.revision ?? 0, lastSeen, resync, listener, options, onStop);
    if (resync) await watch.relist();
    watch.open();
    return watch;
  }

  stop(): void {
    if (this.outlet.isStopped) return;
    this.outlet.stop();
    clearTimeout(this.reconnectTimer);
    this.abandon();
    this.onStop(this);
  }

  private open(): void {
    const watcher = this.context.client
      .watch()
      .prefix(this.context.keys.prefix)
      .startRevision(String(this.lastSeen + 1))
      .watcher();
    this.watcher = watcher;
    // Handlers stay on an abandoned watcher (an 'error' with no handler would throw); they ignore it.
    watcher.on('connected', () => {
      if (this.watcher === watcher) this.healthy();
    });
    watcher.on('data', (response) => {
      if (this.watcher === watcher) this.receive(response);
    });
    watcher.on('disconnected', (err) => {
      if (this.watcher === watcher) this.lost(err, false);
    });
    watcher.on('error', (err) => {
      if (this.watcher === watcher) this.lost(err, true);
    });
  }

  private abandon(): void {
    const watcher = this.watcher;
    this.watcher = undefined;
    watcher?.cancel().catch(() => undefined);
  }

  private healthy(): void {
    this.attempt = 0;
    this.outageReported = false;
    this.outlet.recovered();
  }

  /** The stream broke (`canceled`: etcd ended this watch, e.g. its history was compacted). */
  private lost(err: unknown, canceled: boolean): void {
    this.abandon();
    if (!this.outageReported) {
      this.outageReported = true;
      this.outlet.problem(etcdFailure(this.context.location, `watch the set (resuming after etcd revision ${this.lastSeen})`, err));
    }
    this.reconnect(canceled);
  }

  private reconnect(relist: boolean): void {
    if (this.outlet.isStopped || this.reconnectTimer !== undefined) return;
    this.reconnectTimer = setTimeout(() => {
      this.reconnectTimer = undefined;
      if (this.outlet.isStopped) return;
      const ready = relist ? this.relist() : Promise.resolve();
      ready.then(
        () => {
          if (!this.outlet.isStopped) this.open();
        },
        (err: unknown) => {
          this.outlet.problem(err);
          this.reconnect(true);
        },
      );
    }, backoffMs(this.attempt++));
    this.reconnectTimer.unref();
  }

  /** Reads the whole set and reports how it differs from what was reported. */
  private async relist(): Promise<void> {
    const set = await readEtcdSet(this.context.client, this.context.keys, this.context.location);
    if (this.outlet.isStopped) return;
    const changes = this.view.advanceTo(storedDocuments(set));
    const resync = this.resync;
    this.resync = false;
    this.storeRevision = set.revision;
    this.lastSeen = set.readRevision;
    if (changes.length > 0 || resync) this.outlet.emit({ revision: set.revision, changes, resync });
  }

  private receive(response: IWatchResponse): void {
    this.healthy();
    if (response.events.length === 0) {
      // A progress notification: everything up to this revision has been sent.
      this.lastSeen = Math.max(this.lastSeen, Number(response.header.revision));
      return;
    }
    // etcd never splits one revision (one transaction) across responses.
    let current = -1;
    let changes: DocumentChange[] = [];
    const flush = (): void => {
      if (current < 0) return;
      this.lastSeen = current;
      if (changes.length > 0) this.outlet.emit({ revision: this.storeRevision, changes, resync: false });
      changes = [];
    };
    for (const event of response.events) {
      const revision = Number(event.kv.mod_revision);
      if (revision !== current) {
        flush();
        current = revision;
      }
      const etcdKey = event.kv.key.toString();
      if (etcdKey === this.context.keys.revisionKey) {
        if (event.type === 'Put') this.storeRevision = revision;
        continue;
      }
      const key = this.context.keys.parseDocumentKey(etcdKey);
      if (key === undefined) continue;
      if (event.type === 'Delete') {
        if (this.view.delete(documentId(key))) changes.push({ type: 'delete', key });
        continue;
      }
      try {
        const loaded = decodeEtcdDocument(this.context.keys, this.context.location, event.kv);
        const stored = { document: loaded.document, revision: loaded.revision };
        this.view.put(stored);
        changes.push({ type: 'put', document: stored });
      } catch (err) {
        // Reported; list() will say the same until the document is rewritten.
        this.outlet.problem(err);
      }
    }
    flush();
  }
}
