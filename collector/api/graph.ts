import type { Store } from '../storage/store.js';
import type { GraphParams } from './params.js';
import { MERGE_LATENCY, P50, P99, nanosToMs } from './quantiles.js';

export interface GraphEdge {
  client: string;
  server: string;
  requests: number;
  errors: number;
  p50Ms: number;
  p99Ms: number;
}

export interface GraphResponse {
  nodes: Array<{ name: string }>;
  edges: GraphEdge[];
}

interface EdgeRow {
  client: string;
  server: string;
  requests: string;
  errors: string;
  latency: Array<number | string>;
}

/**
 * The service graph over the window from tracemesh_edges_1m: one edge per
 * client -> server pair (all connection types merged), latency from the client
 * side (for 'user' and 'virtual' edges the collector copies the one side it
 * has into both). Nodes are every service named by an edge, sorted.
 */
export async function serviceGraph(store: Store, params: GraphParams, nowNanos: bigint): Promise<GraphResponse> {
  const rows = await store.query<EdgeRow>(
    `SELECT Client AS client, Server AS server,
       sum(Requests) AS requests, sum(Failed) AS errors,
       ${MERGE_LATENCY}(ClientLatency) AS latency
     FROM tracemesh_edges_1m
     WHERE Minute >= toStartOfMinute(toDateTime(intDiv({from:Int64}, 1000000000)))
     GROUP BY Client, Server
     ORDER BY Client, Server`,
    { from: (nowNanos - params.sinceNanos).toString() },
  );
  const names = new Set<string>();
  const edges: GraphEdge[] = rows.map((row) => {
    names.add(row.client);
    names.add(row.server);
    return {
      client: row.client,
      server: row.server,
      requests: Number(row.requests),
      errors: Number(row.errors),
      p50Ms: nanosToMs(row.latency[P50]),
      p99Ms: nanosToMs(row.latency[P99]),
    };
  });
  const nodes = [...names].sort(compareText).map((name) => ({ name }));
  return { nodes, edges };
}

function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}
