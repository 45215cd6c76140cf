import { mkdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { Readable } from 'node:stream';
import { createClient } from '@clickhouse/client';
import type { ClickHouseClient, ClickHouseSettings } from '@clickhouse/client';
import { createChdbConnection } from 'chdb/connection';
import type { ChdbConnection } from 'chdb/connection';
import { TracemeshError, errorMessage } from '../../src/lib/errors.js';
import { columnList, fileStructure, layoutOf } from './table-files.js';
import type { RowTable } from './table-files.js';

/** Where the spans live: chDB in-process (the embedded default) or a ClickHouse server over HTTP. */
export type StoreTarget = { kind: 'chdb'; dataDir: string } | { kind: 'http'; url: string; database?: string };

/**
 * Settings every read uses: 64-bit integers as JSON strings (nanosecond times
 * and durations do not fit a JS number), and a bound on every query.
 */
const READ_SETTINGS: ClickHouseSettings = {
  output_format_json_quote_64bit_integers: 1,
  max_execution_time: 30,
};

/**
 * The storage handle. Reads and DDL go through @clickhouse/client on both
 * targets; only the bulk insert differs, because on chDB the client's insert
 * path is about 4x slower than handing the engine the raw payload.
 */
export interface Store {
  readonly target: StoreTarget;
  readonly client: ClickHouseClient;
  /** Runs a query and returns its rows (JSONEachRow). `params` fill `{name:Type}` placeholders. */
  query<T>(sql: string, params?: Record<string, unknown>): Promise<T[]>;
  /** Runs DDL or another statement without result rows. */
  command(sql: string, params?: Record<string, unknown>): Promise<void>;
  /**
   * Inserts a JSONEachRow payload. `dedupToken` makes a retried insert of the
   * same payload a no-op in the table and in every view that feeds from it.
   */
  insertJsonEachRow(table: string, payload: Buffer, dedupToken: string): Promise<void>;
  /** Inserts a spool file of `table` (laid out as TABLE_FILE_LAYOUTS says), with the same deduplication as insertJsonEachRow. */
  insertFile(table: RowTable, filePath: string, dedupToken: string): Promise<void>;
  close(): Promise<void>;
}

function insertSettings(dedupToken: string): ClickHouseSettings {
  return {
    insert_deduplication_token: dedupToken,
    deduplicate_blocks_in_dependent_materialized_views: 1,
    // Attribute maps and nested arrays come from untrusted senders: never let a
    // malformed row silently become defaults.
    input_format_skip_unknown_fields: 0,
  };
}

/** A ClickHouse string literal. */
export function sqlString(text: string): string {
  return `'${text.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`;
}

function insertFailed(table: string, err: unknown): TracemeshError {
  return new TracemeshError('TM_ERR_STORE_UNAVAILABLE', `insert into ${table} failed: ${errorMessage(err)}`, { cause: err });
}

function wrap(err: unknown, what: string): TracemeshError {
  return new TracemeshError('TM_ERR_STORE_QUERY', `${what}: ${errorMessage(err)}`, { cause: err });
}

class ClickHouseStore implements Store {
  readonly target: StoreTarget;
  readonly client: ClickHouseClient;
  readonly #chdb: ChdbConnection | undefined;

  constructor(target: StoreTarget, client: ClickHouseClient, chdb: ChdbConnection | undefined) {
    this.target = target;
    this.client = client;
    this.#chdb = chdb;
  }

  async query<T>(sql: string, params?: Record<string, unknown>): Promise<T[]> {
    try {
      const result = await this.client.query({
        query: sql,
        format: 'JSONEachRow',
        query_params: params,
        clickhouse_settings: READ_SETTINGS,
      });
      return await result.json<T>();
    } catch (err) {
      throw wrap(err, 'query failed');
    }
  }

  async command(sql: string, params?: Record<string, unknown>): Promise<void> {
    try {
      await this.client.command({ query: sql, query_params: params });
    } catch (err) {
      throw wrap(err, 'statement failed');
    }
  }

  async insertJsonEachRow(table: string, payload: Buffer, dedupToken: string): Promise<void> {
    const settings = insertSettings(dedupToken);
    try {
      if (this.#chdb !== undefined) {
        await this.#chdb.chdb.rawInsert({ table, values: payload, format: 'JSONEachRow', settings: settings as Record<string, string | number> });
      } else {
        await this.#insertBody(`INSERT INTO ${table} FORMAT JSONEachRow`, payload, dedupToken);
      }
    } catch (err) {
      throw insertFailed(table, err);
    }
  }

  async insertFile(table: RowTable, filePath: string, dedupToken: string): Promise<void> {
    const layout = layoutOf(table);
    const columns = layout.format === 'RowBinary' ? ` (${columnList(layout)})` : '';
    try {
      if (this.#chdb === undefined) {
        // A server cannot read our files: send the file as the request body.
        await this.#insertBody(`INSERT INTO ${table}${columns} FORMAT ${layout.format}`, await readFile(filePath), dedupToken);
        return;
      }
      // The engine reading the file itself is its fastest path (measured: the
      // same rows load 1.5-2x faster than passed in memory; bench/results).
      // The settings go inline: SET would stick to the session.
      const settings = Object.entries(insertSettings(dedupToken))
        .map(([name, value]) => `${name} = ${typeof value === 'number' ? value : sqlString(String(value))}`)
        .join(', ');
      const source =
        layout.format === 'RowBinary'
          ? `file(${sqlString(filePath)}, RowBinary, ${sqlString(fileStructure(layout))})`
          : `file(${sqlString(filePath)}, JSONEachRow)`;
      await this.client.command({
        query: `INSERT INTO ${table}${columns} SETTINGS ${settings}, use_structure_from_insertion_table_in_table_functions = 1 SELECT * FROM ${source}`,
      });
    } catch (err) {
      throw insertFailed(table, err);
    }
  }

  /** An `INSERT ... FORMAT X` with its rows as the HTTP request body (server target). */
  async #insertBody(query: string, rows: Buffer, dedupToken: string): Promise<void> {
    await this.client.exec({ query, values: Readable.from([rows]), clickhouse_settings: insertSettings(dedupToken) });
  }

  async close(): Promise<void> {
    await this.client.close();
  }
}

/** Opens the store. For chDB the data directory is created; one per process. */
export function openStore(target: StoreTarget): Store {
  if (target.kind === 'chdb') {
    const dataDir = path.resolve(target.dataDir);
    mkdirSync(dataDir, { recursive: true });
    const connection = createChdbConnection({ path: dataDir });
    // chdb is built against its own copy of @clickhouse/client-common; the
    // Connection contract is the same, only the declaration files differ.
    type ClientConnection = NonNullable<Parameters<typeof createClient>[0]>['connection'];
    const client = createClient({ connection: connection as unknown as ClientConnection });
    return new ClickHouseStore({ kind: 'chdb', dataDir }, client, connection);
  }
  const client = createClient({
    url: target.url,
    database: target.database ?? 'default',
    request_timeout: 30_000,
    compression: { request: true, response: true },
  });
  return new ClickHouseStore(target, client, undefined);
}
