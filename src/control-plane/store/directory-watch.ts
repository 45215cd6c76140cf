/**
 * Watching a directory store: fs.watch on generations/ for a prompt answer,
 * and a poll (one readdir) every `pollIntervalMs` because fs.watch misses
 * events on some filesystems (network and overlay mounts) and can fail
 * outright; so a change is seen within one poll interval at the latest.
 * Each new generation is compared with what was reported before, so a burst
 * of writes arrives as its net change, never with a change missing.
 */
import { watch as watchFs } from 'node:fs';
import type { FSWatcher } from 'node:fs';
import { errorMessage } from '../../lib/errors.js';
import type { LoadedSet, SetReader } from './directory-reader.js';
import { storeError } from './store-errors.js';
import type { StoredDocument, StoreListener, StoreWatch, WatchOptions } from './types.js';
import { WatchOutlet } from './watch-outlet.js';
import { WatchView } from './watch-view.js';

export function storedDocuments(set: LoadedSet): StoredDocument[] {
  return [...set.documents.values()].map((loaded) => ({ document: loaded.document, revision: loaded.revision }));
}

export interface DirectoryWatchTiming {
  readonly pollIntervalMs: number;
  /** false: the poll alone. */
  readonly fsWatch: boolean;
}

export class DirectoryWatch implements StoreWatch {
  private readonly outlet: WatchOutlet;
  private readonly timer: NodeJS.Timeout;
  private fsWatcher: FSWatcher | undefined = undefined;
  private running = false;
  private again = false;

  private constructor(
    private readonly reader: SetReader,
    private readonly generations: string,
    private readonly view: WatchView,
    private revision: number,
    private resync: boolean,
    listener: StoreListener,
    options: WatchOptions,
    timing: DirectoryWatchTiming,
    private readonly onStop: (watch: DirectoryWatch) => void,
  ) {
    const pollIntervalMs = timing.pollIntervalMs;
    this.outlet = new WatchOutlet(listener, options.onProblem, generations);
    this.timer = setInterval(() => void this.check(), pollIntervalMs);
    this.timer.unref();
    if (!timing.fsWatch) return;
    try {
      this.fsWatcher = watchFs(generations, { persistent: false }, () => void this.check());
      this.fsWatcher.on('error', (err) => this.fsWatchFailed(err, pollIntervalMs));
    } catch (err) {
      this.fsWatchFailed(err, pollIntervalMs);
    }
  }

  /** Reads the baseline (the set at `fromRevision`, or the current one), then watches. */
  static async start(
    reader: SetReader,
    generations: string,
    listener: StoreListener,
    options: WatchOptions,
    timing: DirectoryWatchTiming,
    onStop: (watch: DirectoryWatch) => void,
  ): Promise<DirectoryWatch> {
    const from = options.fromRevision;
    const base = from === undefined ? await reader.current() : await reader.at(from);
    const view = new WatchView(base === undefined ? [] : storedDocuments(base));
    const watch = new DirectoryWatch(reader, generations, view, base?.revision ?? (from as number), base === undefined, listener, options, timing, onStop);
    // Changes after `fromRevision` that happened before the watch: report them now.
    if (from !== undefined) void watch.check();
    return watch;
  }

  stop(): void {
    if (this.outlet.isStopped) return;
    this.outlet.stop();
    clearInterval(this.timer);
    this.fsWatcher?.close();
    this.onStop(this);
  }

  private fsWatchFailed(err: unknown, pollIntervalMs: number): void {
    this.fsWatcher?.close();
    this.fsWatcher = undefined;
    this.outlet.problem(storeError('TM_ERR_CP_STORE_UNAVAILABLE', `fs.watch on ${this.generations} failed (${errorMessage(err)}); polling every ${pollIntervalMs} ms instead`, err));
  }

  /** One comparison at a time; a trigger during one makes it run once more. */
  private async check(): Promise<void> {
    if (this.outlet.isStopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = true;
    try {
      do {
        this.again = false;
        if (!this.resync && (await this.reader.currentRevision()) === this.revision) continue;
        const set = await this.reader.current();
        if (this.outlet.isStopped) return;
        if (!this.resync && set.revision === this.revision) continue;
        const changes = this.view.advanceTo(storedDocuments(set));
        const resync = this.resync;
        this.resync = false;
        this.revision = set.revision;
        this.outlet.recovered();
        if (changes.length > 0 || resync) this.outlet.emit({ revision: set.revision, changes, resync });
      } while (this.again && !this.outlet.isStopped);
    } catch (err) {
      // A corrupt or unreadable generation: said once, and the next one is tried at the next trigger.
      this.outlet.problem(err);
    } finally {
      this.running = false;
    }
  }
}
