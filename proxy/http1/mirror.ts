/**
 * Request mirroring (a route rule's `mirror`): a copy of a request whose body
 * is fully buffered goes to an endpoint of the mirror destination, its
 * answer is read only as far as the status line and discarded. It never
 * delays or fails the request it copies: it has its own connection (not
 * pooled, `connection: close`), its own CLIENT span (tracemesh.mirror), a
 * deadline, and at most MAX_MIRRORS_IN_FLIGHT copies are in flight per
 * direction; beyond that a copy is dropped and counted. Mirrors are rare
 * (a percentage of a route's requests), so this path favours plainness
 * over the main path's allocation habits.
 */
import { connect, type Socket } from 'node:net';
import type { ClusterEndpoint } from '../clusters/types.js';
import { MAX_MIRRORS_IN_FLIGHT } from '../limits.js';
import type { Destination } from '../pipeline/types.js';
import { finishHttpObservation, type HttpObservation } from '../telemetry/http-observation.js';
import type { Telemetry } from '../telemetry/telemetry.js';

/** The answer's status line: "HTTP/1.1 200 …". */
const STATUS_LINE = /^HTTP\/1\.[01] (\d{3})/;

export class MirrorSender {
  inFlight = 0;
  sent = 0;
  dropped = 0;
  private readonly sockets = new Set<Socket>();
  private closed = false;

  constructor(
    private readonly telemetry: Telemetry,
    private readonly timeoutMs: number,
  ) {}

  /** Whether a copy may go now; false counts a drop (the caller then sends nothing). */
  admit(destination: Destination): boolean {
    if (this.closed || this.inFlight >= MAX_MIRRORS_IN_FLIGHT) {
      this.dropped++;
      this.telemetry.metrics.recordMirror?.(destination.name, false);
      return false;
    }
    return true;
  }

  /**
   * Sends `head` + `body` to `endpoint` and reports `obs` (a mirror's own
   * observation, already filled with the request) when the answer's status
   * line arrived, the connection failed, or the deadline passed.
   */
  send(destination: Destination, endpoint: ClusterEndpoint, head: string, body: readonly Buffer[], obs: HttpObservation): void {
    this.inFlight++;
    this.sent++;
    this.telemetry.metrics.recordMirror?.(destination.name, true);
    obs.upstreamAddress = endpoint.address;
    obs.upstreamPort = endpoint.port;
    obs.destinationVersion = endpoint.version;
    const socket = connect({ host: endpoint.address, port: endpoint.port, noDelay: true });
    this.sockets.add(socket);
    let received = '';
    let connected = false;
    let done = false;
    const finish = (flagged: 'UF' | 'UC' | 'UT' | undefined, message: string): void => {
      if (done) return;
      done = true;
      clearTimeout(timer);
      this.inFlight--;
      this.sockets.delete(socket);
      socket.destroy();
      if (flagged !== undefined) obs.addFlag(flagged, message);
      obs.noteOutlierDecision(destination.recordOutcome(endpoint, flagged === undefined ? (obs.statusCode >= 500 ? (obs.statusCode >= 502 && obs.statusCode <= 504 ? 'gateway' : '5xx') : 'success') : flagged === 'UF' ? 'connect-failure' : flagged === 'UT' ? 'timeout' : 'reset'));
      finishHttpObservation(this.telemetry, obs);
    };
    const timer = setTimeout(() => finish('UT', `mirror ${endpoint.key}: no answer within ${this.timeoutMs} ms`), this.timeoutMs).unref();
    socket.on('connect', () => {
      connected = true;
      socket.write(head, 'latin1');
      for (const chunk of body) socket.write(chunk);
    });
    socket.on('data', (chunk: Buffer) => {
      obs.responseBytes += chunk.length;
      if (obs.statusCode !== 0) return;
      received += chunk.toString('latin1');
      const status = STATUS_LINE.exec(received);
      if (status !== null) {
        obs.statusCode = Number(status[1]);
        finish(undefined, '');
      } else if (received.indexOf('\r\n') >= 0 || received.length > 64) {
        finish('UC', `mirror ${endpoint.key}: not an HTTP/1 answer`);
      }
    });
    socket.on('error', (err) => finish(connected ? 'UC' : 'UF', `mirror ${endpoint.key}: ${err.message}`));
    socket.on('close', () => finish(connected ? 'UC' : 'UF', `mirror ${endpoint.key} closed the connection`));
  }

  /** Stops every copy in flight (their spans end with flag UC). Safe twice. */
  close(): void {
    this.closed = true;
    for (const socket of [...this.sockets]) socket.destroy();
  }
}

/** Envoy's shadow authority: "-shadow" after the host, before any port ("reviews:9080" → "reviews-shadow:9080"). */
export function shadowAuthority(authority: string): string {
  const colon = authority.lastIndexOf(':');
  // A colon inside an IPv6 literal ("[::1]") is not a port's.
  if (colon < 0 || colon < authority.lastIndexOf(']')) return `${authority}-shadow`;
  return `${authority.slice(0, colon)}-shadow${authority.slice(colon)}`;
}
