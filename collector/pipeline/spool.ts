import { randomBytes } from 'node:crypto';
import { mkdirSync, readdirSync, rmSync, statSync } from 'node:fs';
import { open, rename, rm } from 'node:fs/promises';
import path from 'node:path';
import { ROW_TABLES, layoutOf } from '../storage/table-files.js';
import type { RowTable } from '../storage/table-files.js';

const TABLE_RANK: ReadonlyMap<string, number> = new Map(ROW_TABLES.map((table, rank) => [table, rank]));

/** One file of rows for one table: `<segment id>.<table>.<jsonl|rowbinary>`. */
export interface SpoolFile {
  segmentId: string;
  table: RowTable;
  path: string;
  bytes: number;
}

const FILE_RE = /^(\d{15}-\d{6}-[0-9a-f]{8})\.([a-z_]+)\.(jsonl|rowbinary)$/;

function compareFiles(a: SpoolFile, b: SpoolFile): number {
  if (a.segmentId !== b.segmentId) return a.segmentId < b.segmentId ? -1 : 1;
  return (TABLE_RANK.get(a.table) ?? 0) - (TABLE_RANK.get(b.table) ?? 0);
}

/**
 * Sealed segments on disk, waiting to be loaded into the store. Every batch
 * goes through here, not only when the store is down: the store reads the file
 * itself (`INSERT ... SELECT FROM file()`), its fastest insert path, and the
 * same files are what is replayed after an outage or a restart. Segment ids
 * sort by time and are unique across restarts, because they are also the
 * store's insert deduplication tokens.
 */
export class Spool {
  readonly dir: string;
  readonly quarantineDir: string;
  #bytes = 0;
  #counter = 0;
  readonly #files: SpoolFile[] = [];

  constructor(dir: string) {
    this.dir = path.resolve(dir);
    this.quarantineDir = path.join(this.dir, 'rejected');
  }

  /** Creates the directory and picks up segments left by an earlier run; partial writes are removed. */
  open(): void {
    mkdirSync(this.dir, { recursive: true });
    for (const name of readdirSync(this.dir)) {
      const full = path.join(this.dir, name);
      if (name.endsWith('.tmp')) {
        rmSync(full, { force: true });
        continue;
      }
      const match = FILE_RE.exec(name);
      if (match === null || !TABLE_RANK.has(match[2] as string)) continue;
      const table = match[2] as RowTable;
      // A file in another layout than this version writes (an older version's) cannot be read as this table's.
      if (layoutOf(table).extension !== match[3]) continue;
      const bytes = statSync(full).size;
      this.#files.push({ segmentId: match[1] as string, table, path: full, bytes });
      this.#bytes += bytes;
    }
    this.#files.sort(compareFiles);
  }

  get bytes(): number {
    return this.#bytes;
  }

  get fileCount(): number {
    return this.#files.length;
  }

  newSegmentId(): string {
    this.#counter = (this.#counter + 1) % 1_000_000;
    return `${String(Date.now()).padStart(15, '0')}-${String(this.#counter).padStart(6, '0')}-${randomBytes(4).toString('hex')}`;
  }

  /** Writes one table's rows of a segment: to a temporary name, synced, then renamed, so a file is whole or absent. */
  async write(segmentId: string, table: RowTable, chunks: readonly Buffer[]): Promise<void> {
    const final = path.join(this.dir, `${segmentId}.${table}.${layoutOf(table).extension}`);
    const temporary = `${final}.tmp`;
    const handle = await open(temporary, 'w');
    let bytes = 0;
    try {
      const all = chunks as Buffer[];
      // writev takes at most IOV_MAX buffers per call.
      for (let i = 0; i < all.length; i += 1024) {
        const slice = all.slice(i, i + 1024);
        const { bytesWritten } = await handle.writev(slice);
        bytes += bytesWritten;
      }
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temporary, final);
    this.#files.push({ segmentId, table, path: final, bytes });
    this.#bytes += bytes;
    this.#files.sort(compareFiles);
  }

  oldest(): SpoolFile | undefined {
    return this.#files[0];
  }

  /** Drops a loaded file. */
  async remove(file: SpoolFile): Promise<void> {
    await rm(file.path, { force: true });
    this.#forget(file);
  }

  /** Moves a file the store refuses as data (not as an outage) aside, so it cannot block the rest. */
  async quarantine(file: SpoolFile): Promise<string> {
    mkdirSync(this.quarantineDir, { recursive: true });
    const target = path.join(this.quarantineDir, path.basename(file.path));
    await rename(file.path, target);
    this.#forget(file);
    return target;
  }

  #forget(file: SpoolFile): void {
    const index = this.#files.indexOf(file);
    if (index >= 0) this.#files.splice(index, 1);
    this.#bytes -= file.bytes;
  }
}
