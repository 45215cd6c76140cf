/**
 * Readiness without entering the namespace: /proc/<pid>/net/tcp and tcp6 show
 * the sockets of the network namespace that process is in, so the parent can
 * see a pod's listening ports by reading two files, no probe process needed.
 */

/** The kernel's code for TCP_LISTEN in the `st` column. */
const TCP_LISTEN = '0A';

/**
 * The local ports in LISTEN state in the text of a /proc/net/tcp or tcp6 file.
 * Lines look like `0: 00000000:1F90 00000000:0000 0A ...` (address:port in hex).
 */
export function listeningPorts(text: string): Set<number> {
  const ports = new Set<number>();
  const lines = text.split('\n');
  for (let i = 1; i < lines.length; i++) {
    const fields = (lines[i] ?? '').trim().split(/\s+/);
    const local = fields[1];
    if (local === undefined || fields[3] !== TCP_LISTEN) continue;
    const colon = local.lastIndexOf(':');
    if (colon < 0) continue;
    const port = Number.parseInt(local.slice(colon + 1), 16);
    if (Number.isInteger(port)) ports.add(port);
  }
  return ports;
}
