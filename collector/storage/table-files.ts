import { OTEL_TRACES_ROW_BINARY_COLUMNS } from './span-row-binary.js';

/** The tables the collector writes rows into, in the order a segment's files are loaded. */
export const ROW_TABLES = [
  'otel_traces',
  'tracemesh_edge_calls',
  'otel_metrics_gauge',
  'otel_metrics_sum',
  'otel_metrics_histogram',
  'otel_metrics_exponential_histogram',
  'otel_metrics_summary',
] as const;
export type RowTable = (typeof ROW_TABLES)[number];

/** How a table's rows are laid out in a spool file. */
export interface TableFileLayout {
  format: 'RowBinary' | 'JSONEachRow';
  extension: 'rowbinary' | 'jsonl';
  /** For RowBinary: the columns in file order with the types the file is read as. */
  columns: ReadonlyArray<readonly [name: string, type: string]>;
}

const JSON_LINES: TableFileLayout = { format: 'JSONEachRow', extension: 'jsonl', columns: [] };

/**
 * Spans, the bulk of the volume, travel as RowBinary (cheapest to write and to
 * parse); the low-volume tables as JSON lines, whose rows name their columns.
 */
export const TABLE_FILE_LAYOUTS: ReadonlyMap<RowTable, TableFileLayout> = new Map<RowTable, TableFileLayout>([
  ['otel_traces', { format: 'RowBinary', extension: 'rowbinary', columns: OTEL_TRACES_ROW_BINARY_COLUMNS }],
  ['tracemesh_edge_calls', JSON_LINES],
  ['otel_metrics_gauge', JSON_LINES],
  ['otel_metrics_sum', JSON_LINES],
  ['otel_metrics_histogram', JSON_LINES],
  ['otel_metrics_exponential_histogram', JSON_LINES],
  ['otel_metrics_summary', JSON_LINES],
]);

export function layoutOf(table: RowTable): TableFileLayout {
  return TABLE_FILE_LAYOUTS.get(table) as TableFileLayout;
}

/** `` `a`, `b.c` `` for an INSERT's column list. */
export function columnList(layout: TableFileLayout): string {
  return layout.columns.map(([name]) => `\`${name}\``).join(', ');
}

/** `` `a` String, `b.c` Array(String) `` for file()'s structure argument. */
export function fileStructure(layout: TableFileLayout): string {
  return layout.columns.map(([name, type]) => `\`${name}\` ${type}`).join(', ');
}
