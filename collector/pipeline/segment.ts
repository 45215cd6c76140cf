import type { SpoolTable } from './spool.js';

/** Rows gathered for one segment, per table, as one Buffer per accepted request. */
export class OpenSegment {
  readonly openedAtMs: number;
  rows = 0;
  bytes = 0;
  readonly tables = new Map<SpoolTable, Buffer[]>();

  constructor(openedAtMs: number) {
    this.openedAtMs = openedAtMs;
  }

  add(table: SpoolTable, chunk: string, rows: number): void {
    if (rows === 0) return;
    const buffer = Buffer.from(chunk, 'utf8');
    let chunks = this.tables.get(table);
    if (chunks === undefined) {
      chunks = [];
      this.tables.set(table, chunks);
    }
    chunks.push(buffer);
    this.rows += rows;
    this.bytes += buffer.length;
  }
}
