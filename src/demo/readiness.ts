/**
 * Before traffic starts: every sidecar knows the endpoints of the services
 * its app calls (they come from the control plane as workloads register),
 * and one request through the whole chain succeeds. Each wait has a
 * deadline and its error names what was still missing.
 */
import { notReady } from './errors.js';
import type { ReadyWorkload } from './stack.js';

const POLL_MS = 250;
const FETCH_TIMEOUT_MS = 2_000;

interface ClustersView {
  clusters?: Array<{ service?: string; endpoints?: unknown[] }>;
}

async function endpointCounts(adminPort: number): Promise<Map<string, number>> {
  const counts = new Map<string, number>();
  const response = await fetch(`http://127.0.0.1:${adminPort}/clusters`, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS) });
  const view = (await response.json()) as ClustersView;
  for (const cluster of view.clusters ?? []) {
    if (typeof cluster.service !== 'string') continue;
    counts.set(cluster.service, Math.max(counts.get(cluster.service) ?? 0, cluster.endpoints?.length ?? 0));
  }
  return counts;
}

/** What a sidecar still lacks, e.g. `catalog sidecar knows 1 of 3 reviews endpoints`; [] when nothing. */
export function missingEndpoints(name: string, needs: Readonly<Record<string, number>>, counts: ReadonlyMap<string, number>): string[] {
  const missing: string[] = [];
  for (const [service, wanted] of Object.entries(needs)) {
    const known = counts.get(service) ?? 0;
    if (known < wanted) missing.push(`${name} sidecar knows ${known} of ${wanted} ${service} endpoint${wanted === 1 ? '' : 's'}`);
  }
  return missing;
}

export async function waitForEndpoints(workloads: readonly Pick<ReadyWorkload, 'workload' | 'adminPort'>[], timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let missing: string[] = [];
  for (;;) {
    missing = [];
    for (const running of workloads) {
      if (Object.keys(running.workload.needs).length === 0) continue;
      try {
        missing.push(...missingEndpoints(running.workload.name, running.workload.needs, await endpointCounts(running.adminPort)));
      } catch (err) {
        missing.push(`${running.workload.name} sidecar admin :${running.adminPort} did not answer (${String(err)})`);
      }
    }
    if (missing.length === 0) return;
    if (Date.now() > deadline) {
      throw notReady(`the sidecars did not learn their peers from the control plane within ${timeoutMs / 1000} s: ${missing.join('; ')}`);
    }
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}

/** GET `url` until it answers 200; the error quotes the last answer. */
export async function waitForFirstAnswer(url: string, timeoutMs: number): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let last = 'no answer yet';
  for (;;) {
    try {
      const response = await fetch(url, { signal: AbortSignal.timeout(FETCH_TIMEOUT_MS * 3) });
      const text = await response.text();
      if (response.status === 200) return;
      last = `HTTP ${response.status}: ${text.slice(0, 300)}`;
    } catch (err) {
      last = String(err);
    }
    if (Date.now() > deadline) throw notReady(`GET ${url} did not succeed within ${timeoutMs / 1000} s; last: ${last}`);
    await new Promise((resolve) => setTimeout(resolve, POLL_MS));
  }
}
