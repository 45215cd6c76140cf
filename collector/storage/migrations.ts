import { readFileSync, readdirSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { TracemeshError, errorMessage } from '../../src/lib/errors.js';
import type { Store } from './store.js';

/** The DDL files, `NNN_name.sql`, applied in order. The build copies them beside the compiled code. */
const SQL_DIR = fileURLToPath(new URL('./sql/', import.meta.url));

export interface Migration {
  version: number;
  name: string;
  statements: string[];
}

/** Splits a .sql file into statements: `;` at the end of a line ends one; `--` lines are comments. */
export function splitStatements(text: string): string[] {
  return text
    .split(/;[ \t]*(?:\r?\n|$)/)
    .map((chunk) =>
      chunk
        .split('\n')
        .filter((line) => !/^\s*--/.test(line))
        .join('\n')
        .trim(),
    )
    .filter((statement) => statement.length > 0);
}

export function loadMigrations(dir: string = SQL_DIR): Migration[] {
  const migrations: Migration[] = [];
  for (const file of readdirSync(dir).sort()) {
    const match = /^(\d{3})_([a-z0-9_]+)\.sql$/.exec(file);
    if (match === null) continue;
    migrations.push({
      version: Number(match[1]),
      name: match[2] as string,
      statements: splitStatements(readFileSync(`${dir}/${file}`, 'utf8')),
    });
  }
  return migrations;
}

const VERSION_TABLE = 'tracemesh_schema_versions';

/**
 * Brings the schema to the newest version. Every statement is idempotent
 * (IF NOT EXISTS), so a migration interrupted half way is simply run again;
 * a version is recorded only after all its statements succeeded.
 * Returns the versions applied by this call.
 */
export async function migrate(store: Store, migrations: Migration[] = loadMigrations()): Promise<number[]> {
  await store.command(
    `CREATE TABLE IF NOT EXISTS ${VERSION_TABLE} (Version UInt32, Name String, AppliedAt DateTime64(3)) ENGINE = MergeTree ORDER BY Version`,
  );
  const rows = await store.query<{ Version: number }>(`SELECT DISTINCT Version FROM ${VERSION_TABLE}`);
  const applied = new Set(rows.map((row) => Number(row.Version)));
  const done: number[] = [];
  for (const migration of migrations) {
    if (applied.has(migration.version)) continue;
    for (const [index, statement] of migration.statements.entries()) {
      try {
        await store.command(statement);
      } catch (err) {
        throw new TracemeshError(
          'TM_ERR_STORE_MIGRATION',
          `schema migration ${migration.version} (${migration.name}), statement ${index + 1}: ${errorMessage(err)}`,
          { cause: err },
        );
      }
    }
    await store.command(`INSERT INTO ${VERSION_TABLE} (Version, Name, AppliedAt) VALUES ({v:UInt32}, {n:String}, now64(3))`, {
      v: migration.version,
      n: migration.name,
    });
    done.push(migration.version);
  }
  return done;
}

export async function schemaVersion(store: Store): Promise<number> {
  const rows = await store.query<{ v: number }>(`SELECT max(Version) AS v FROM ${VERSION_TABLE}`);
  return Number(rows[0]?.v ?? 0);
}

export function latestVersion(migrations: Migration[] = loadMigrations()): number {
  return migrations.reduce((max, m) => Math.max(max, m.version), 0);
}

/** Each table that holds data, with the time column its retention is measured on. */
const RETENTION_COLUMNS: ReadonlyArray<readonly [table: string, timeExpr: string]> = [
  ['otel_traces', 'toDateTime(Timestamp)'],
  ['otel_traces_trace_id_ts', 'toDateTime(Start)'],
  ['otel_metrics_gauge', 'toDateTime(TimeUnix)'],
  ['otel_metrics_sum', 'toDateTime(TimeUnix)'],
  ['otel_metrics_histogram', 'toDateTime(TimeUnix)'],
  ['otel_metrics_exponential_histogram', 'toDateTime(TimeUnix)'],
  ['otel_metrics_summary', 'toDateTime(TimeUnix)'],
  ['tracemesh_red_1m', 'Minute'],
  ['tracemesh_edges_1m', 'Minute'],
];

/**
 * Sets every table's TTL to `seconds`. A table whose TTL already says so is
 * left alone: changing a TTL rewrites parts, which must not happen at every start.
 */
export async function applyRetention(store: Store, seconds: number): Promise<void> {
  const rows = await store.query<{ name: string; engine_full: string }>(
    'SELECT name, engine_full FROM system.tables WHERE database = currentDatabase()',
  );
  const engines = new Map(rows.map((row) => [row.name, row.engine_full]));
  for (const [table, timeExpr] of RETENTION_COLUMNS) {
    const engine = engines.get(table);
    if (engine === undefined) continue;
    if (engine.includes(`toIntervalSecond(${seconds})`)) continue;
    await store.command(`ALTER TABLE ${table} MODIFY TTL ${timeExpr} + toIntervalSecond(${seconds})`);
  }
}
