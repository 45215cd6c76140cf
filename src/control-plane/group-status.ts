/**
 * `GET /api/v1/proxies` across replicas: each replica knows the streams it
 * holds, so the one asked adds what its peers answer for their own
 * (`?scope=local`). A proxy that moved between replicas shows once, as the
 * replica holding its stream sees it. A peer that does not answer in time
 * is named in `unreachable`, and its proxies are missing, not invented.
 */
import type { ProxySyncStatus } from './distributor.js';
import type { ProxyRegistration } from './endpoint-registry.js';
import type { ReplicaInfo } from './replica-set.js';

export type ProxyStatusRow = ProxySyncStatus & {
  readonly registration: ProxyRegistration | null;
  /** The API URL of the replica that holds (or last held) the proxy's stream. */
  readonly replica: string;
};

export interface UnreachableReplica {
  readonly id: string;
  readonly url: string;
  readonly message: string;
}

const PEER_TIMEOUT_MS = 2_000;

/** Every peer's own rows, asked at once; each within PEER_TIMEOUT_MS. */
export async function peerRows(peers: readonly ReplicaInfo[]): Promise<{ rows: ProxyStatusRow[]; unreachable: UnreachableReplica[] }> {
  const rows: ProxyStatusRow[] = [];
  const unreachable: UnreachableReplica[] = [];
  await Promise.all(
    peers.map(async (peer) => {
      try {
        const res = await fetch(`${peer.url}/api/v1/proxies?scope=local`, { signal: AbortSignal.timeout(PEER_TIMEOUT_MS) });
        if (!res.ok) throw new Error(`answered ${res.status}`);
        const answer = (await res.json()) as { proxies?: unknown };
        if (!Array.isArray(answer.proxies)) throw new Error('the answer has no "proxies" list');
        for (const row of answer.proxies as ProxyStatusRow[]) rows.push({ ...row, replica: typeof row.replica === 'string' ? row.replica : peer.url });
      } catch (err) {
        unreachable.push({ id: peer.id, url: peer.url, message: err instanceof Error ? err.message : String(err) });
      }
    }),
  );
  return { rows, unreachable };
}

/** One row per proxy: the connected one wins, then the one that heard from the proxy last. */
export function mergeRows(rows: readonly ProxyStatusRow[]): ProxyStatusRow[] {
  const byProxy = new Map<string, ProxyStatusRow>();
  for (const row of rows) {
    const seen = byProxy.get(row.proxy);
    if (seen === undefined || (row.connected && !seen.connected) || (row.connected === seen.connected && row.lastAckMs > seen.lastAckMs)) byProxy.set(row.proxy, row);
  }
  return [...byProxy.values()];
}
