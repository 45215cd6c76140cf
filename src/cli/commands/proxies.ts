import type { ProxySyncState, ProxySyncStatus } from '../../control-plane/distributor.js';
import type { ProxyRegistration } from '../../control-plane/endpoint-registry.js';
import { formatTable, writeJson } from '../api-client.js';
import type { Command } from '../command.js';
import { booleanFlag } from '../flag-values.js';
import { CONTROL_PLANE_FLAG, controlPlaneClientFromArgs, expectObject } from '../control-plane-client.js';

/**
 * One row of GET /api/v1/proxies: the stream's sync state, while it lasts
 * the registration, and the replica holding the stream (the control plane
 * asked answers for every replica on its etcd).
 */
export type ProxyRow = ProxySyncStatus & { registration: ProxyRegistration | null; replica?: string };

/** Replicas that did not answer the one asked: their proxies are missing from the list. */
function unreachableLines(answer: Record<string, unknown>): string {
  const list = Array.isArray(answer['unreachable']) ? (answer['unreachable'] as { id?: unknown; url?: unknown; message?: unknown }[]) : [];
  return list.map((r) => `control-plane replica ${String(r.id)} at ${String(r.url)} did not answer (${String(r.message)}): the proxies connected to it are not listed\n`).join('');
}

const STATE_WORDS: Record<ProxySyncState, string> = { acked: 'ACK', nacked: 'NACK', connected: 'pending', disconnected: 'disconnected' };
const MAX_REASON_CHARS = 120;

/** A NACK reason on one table line: its first line, shortened (--json has it whole). */
function shortReason(reason: string): string {
  const first = reason.split('\n')[0] ?? '';
  const more = first.length > MAX_REASON_CHARS || reason.includes('\n');
  return more ? `${first.slice(0, MAX_REASON_CHARS)}…` : first;
}

function row(p: ProxyRow): string[] {
  const r = p.registration;
  return [
    p.proxy,
    r === null ? '-' : `${r.namespace}/${r.service}`,
    r === null ? '-' : r.version,
    r === null ? '-' : `${r.address}:${r.port}`,
    p.sentVersion || '-',
    p.ackedVersion || '-',
    STATE_WORDS[p.state] ?? p.state,
    shortReason(p.nackError),
  ];
}

export const proxiesCommand: Command = {
  name: 'proxies',
  summary: 'List proxies with the config version each was sent and ACKed or NACKed',
  usage: 'tracemesh proxies [--json] [--control-plane URL]',
  flags: {
    json: { type: 'boolean', description: 'print the control plane\'s answer as JSON' },
    'control-plane': CONTROL_PLANE_FLAG,
  },
  examples: ['tracemesh proxies', 'tracemesh proxies --json --control-plane http://10.0.0.5:15010'],
  async run(args, io) {
    const client = controlPlaneClientFromArgs(args);
    const answer = expectObject(await client.call('GET', '/api/v1/proxies'), client.base);
    if (booleanFlag(args, 'json')) {
      writeJson(io.stdout, answer);
      return 0;
    }
    const held = answer['held'] === true ? ' (start-up grace: held back from proxies that serve a configuration until workloads register again)' : '';
    const version = `${typeof answer['version'] === 'string' && answer['version'] !== '' ? answer['version'] : '(none yet)'}${held}`;
    const proxies = (Array.isArray(answer['proxies']) ? (answer['proxies'] as ProxyRow[]) : []).slice();
    proxies.sort((a, b) => (a.proxy < b.proxy ? -1 : a.proxy > b.proxy ? 1 : 0));
    if (proxies.length === 0) {
      io.stdout.write(`config version ${version}; no proxies have connected\n${unreachableLines(answer)}`);
      return 0;
    }
    io.stdout.write(`config version ${version}\n`);
    io.stdout.write(formatTable(['PROXY', 'SERVICE', 'VERSION', 'ADDRESS', 'SENT', 'ACKED', 'STATE', 'NACK REASON'], proxies.map(row)));
    io.stdout.write(unreachableLines(answer));
    return 0;
  },
};
