import type { RowTable } from '../storage/table-files.js';

/** Rows gathered for one segment, per table, as one Buffer per accepted request. */
export class OpenSegment {
  readonly openedAtMs: number;
  rows = 0;
  bytes = 0;
  readonly tables = new Map<RowTable, Buffer[]>();

  constructor(openedAtMs: number) {
    this.openedAtMs = openedAtMs;
  }

  add(table: RowTable, chunk: string | Buffer, rows: number): void {
    if (rows === 0) return;
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk, 'utf8') : chunk;
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
