import type { Store } from '../storage/store.js';
import type { ServicesParams } from './params.js';

export interface ServicesResponse {
  services: Array<{ name: string; operations: string[] }>;
}

/** Operations listed per service: span names with ids in them must not make the answer unbounded. */
export const MAX_OPERATIONS = 1000;

/**
 * Services and their operations (span names), both sorted, from the per-minute
 * RED table; at most MAX_OPERATIONS per service (the first ones in sort order).
 */
export async function listServices(store: Store, params: ServicesParams, nowNanos: bigint): Promise<ServicesResponse> {
  const values: Record<string, unknown> = { maxOperations: MAX_OPERATIONS };
  let where = '';
  if (params.sinceNanos !== undefined) {
    where = 'WHERE Minute >= toStartOfMinute(toDateTime(intDiv({from:Int64}, 1000000000)))';
    values['from'] = (nowNanos - params.sinceNanos).toString();
  }
  const rows = await store.query<{ name: string; operations: string[] }>(
    `SELECT ServiceName AS name, arraySlice(arraySort(groupUniqArray(SpanName)), 1, {maxOperations:UInt32}) AS operations
     FROM tracemesh_red_1m
     ${where}
     GROUP BY ServiceName
     ORDER BY ServiceName`,
    values,
  );
  return { services: rows.map((row) => ({ name: row.name, operations: row.operations })) };
}
