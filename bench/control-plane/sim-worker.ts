/**
 * A process of simulated proxies for the benchmark (sim-proxy.ts), forked
 * by run.ts: the simulated proxies are spread over several of these, each
 * with its own event loop, so that a thousand streams and their ACKs are
 * not queued behind one another in one loop and the client side is not
 * what the benchmark measures. ACK times are reported to run.ts in
 * batches (one IPC message per turn of the loop, not one per ACK).
 */
import { SimulatedProxy } from './sim-proxy.js';
import type { AckRecord, FromWorker, ToWorker } from './messages.js';

const sims: SimulatedProxy[] = [];
let pending: AckRecord[] = [];
let flushScheduled = false;

function tell(message: FromWorker): void {
  process.send?.(message);
}

function flush(): void {
  flushScheduled = false;
  if (pending.length === 0) return;
  tell({ type: 'acks', acks: pending });
  pending = [];
}

function onAck(proxy: SimulatedProxy, version: string, atMs: number): void {
  pending.push([proxy.index, version, atMs]);
  if (!flushScheduled) {
    flushScheduled = true;
    setImmediate(flush);
  }
}

async function connect(port: number, from: number, to: number, batch: number): Promise<void> {
  for (let i = from; i < to; i++) sims.push(new SimulatedProxy(`sim-${i}.bench@bench:${i}`, port, i, onAck));
  for (let i = 0; i < sims.length; i += batch) await Promise.all(sims.slice(i, i + batch).map((s) => s.connect()));
}

process.on('message', (message: ToWorker) => {
  if (message.type === 'connect') {
    connect(message.port, message.from, message.to, message.batch).then(
      () => tell({ type: 'connected' }),
      (err: unknown) => tell({ type: 'failed', message: err instanceof Error ? err.message : String(err) }),
    );
  } else if (message.type === 'problems') {
    tell({ type: 'problems', problems: sims.filter((s) => s.problem !== '').slice(0, 5).map((s) => `${s.id}: ${s.problem}`) });
  } else {
    for (const sim of sims) sim.close();
    process.exit(0);
  }
});
// The parent going away (killed run) takes the workers with it.
process.on('disconnect', () => process.exit(0));
