/**
 * Active health checks: every `interval`, a GET of `path` to each endpoint
 * of a destination on a connection of its own (agent: false, closed after
 * the answer), with `timeout`. In explicit mode the endpoint is a peer
 * proxy's inbound listener, so the check reaches the app through that proxy;
 * the header `x-tracemesh-health-check: 1` lets it (and the app's logs) tell
 * checks from traffic.
 *
 * A 2xx answer is a success (Envoy's default is 200 only; health endpoints
 * answering 204 are common, so any 2xx). Anything else, a connection error or
 * the timeout is a failure. `unhealthyThreshold` consecutive failures mark a
 * healthy endpoint unhealthy; `healthyThreshold` consecutive successes mark
 * an unhealthy one healthy again.
 *
 * A new endpoint starts healthy. Envoy starts hosts unhealthy until their
 * first check passes (unless ignore_new_hosts_until_first_hc); we choose the
 * other way so traffic flows the moment a configuration is applied, and a
 * dead endpoint is found by its checks (and by outlier detection) instead.
 * The next check is scheduled when the previous one ends, so a slow endpoint
 * never has two checks in flight; the first one is spread over the first
 * interval (at most one second in) so many endpoints do not fire together.
 * Timers are unref()ed; `close()` stops everything, checks in flight included.
 */
import http from 'node:http';
import type { HealthCheck } from '../../src/config/types.js';
import type { ClusterEndpoint } from '../clusters/types.js';
import type { DestinationTrafficState, EndpointTrafficState } from './traffic-state.js';

export const HEALTH_CHECK_HEADER = 'x-tracemesh-health-check';

export interface HealthCheckerOptions {
  readonly spec: HealthCheck;
  readonly endpoints: readonly ClusterEndpoint[];
  /** Index-aligned with endpoints. */
  readonly states: readonly EndpointTrafficState[];
  /** Its generation is bumped when an endpoint's health flips. */
  readonly shared: DestinationTrafficState;
  /** The Host header of the checks ("reviews.default:9080"). */
  readonly authority: string;
  readonly random: () => number;
  /** Called after an endpoint's health flipped (tests, logs). */
  readonly onChange?: ((endpoint: ClusterEndpoint, healthy: boolean) => void) | undefined;
}

export interface HealthChecker {
  close(): void;
}

/** One endpoint's check loop. */
class Probe {
  timer: NodeJS.Timeout | undefined = undefined;
  request: http.ClientRequest | undefined = undefined;
  settled = true;

  constructor(
    readonly endpoint: ClusterEndpoint,
    readonly state: EndpointTrafficState,
  ) {}
}

class ActiveHealthChecker implements HealthChecker {
  private readonly probes: Probe[] = [];
  private closed = false;

  constructor(private readonly options: HealthCheckerOptions) {
    const firstWithin = Math.min(options.spec.intervalMs, 1_000);
    for (let i = 0; i < options.endpoints.length; i++) {
      const probe = new Probe(options.endpoints[i]!, options.states[i]!);
      this.probes.push(probe);
      this.schedule(probe, Math.floor(options.random() * firstWithin));
    }
  }

  close(): void {
    this.closed = true;
    for (const probe of this.probes) {
      if (probe.timer !== undefined) clearTimeout(probe.timer);
      probe.timer = undefined;
      probe.request?.destroy();
      probe.request = undefined;
    }
  }

  private schedule(probe: Probe, delayMs: number): void {
    if (this.closed) return;
    probe.timer = setTimeout(() => this.check(probe), delayMs);
    probe.timer.unref();
  }

  private check(probe: Probe): void {
    probe.timer = undefined;
    if (this.closed) return;
    const { spec, authority } = this.options;
    const endpoint = probe.endpoint;
    probe.settled = false;
    const request = http.request({
      host: endpoint.address,
      port: endpoint.port,
      method: 'GET',
      path: spec.path,
      agent: false,
      timeout: spec.timeoutMs,
      headers: { host: authority, [HEALTH_CHECK_HEADER]: '1', connection: 'close' },
    });
    probe.request = request;
    // The socket's idle timeout does not cover a server that accepted and
    // dribbles; this timer bounds the whole check.
    const deadline = setTimeout(() => request.destroy(new Error(`timed out after ${spec.timeoutMs} ms`)), spec.timeoutMs);
    deadline.unref();
    request.on('timeout', () => request.destroy(new Error(`timed out after ${spec.timeoutMs} ms`)));
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      response.resume();
      response.on('error', () => {});
      clearTimeout(deadline);
      this.settle(probe, status >= 200 && status < 300 ? '' : `answered ${status}`);
      request.destroy();
    });
    request.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(deadline);
      this.settle(probe, err.code === undefined ? err.message : `${err.code}: ${err.message}`);
    });
    request.end();
  }

  /** failure '' = success. Runs once per check. */
  private settle(probe: Probe, failure: string): void {
    if (probe.settled) return;
    probe.settled = true;
    probe.request = undefined;
    if (this.closed) return;
    const { spec, shared, onChange } = this.options;
    const state = probe.state;
    if (failure === '') {
      state.checkFailures = 0;
      state.checkSuccesses++;
      state.lastCheckFailure = '';
      if (!state.healthy && state.checkSuccesses >= spec.healthyThreshold) {
        state.healthy = true;
        shared.generation++;
        onChange?.(probe.endpoint, true);
      }
    } else {
      state.checkSuccesses = 0;
      state.checkFailures++;
      state.lastCheckFailure = failure;
      if (state.healthy && state.checkFailures >= spec.unhealthyThreshold) {
        state.healthy = false;
        shared.generation++;
        onChange?.(probe.endpoint, false);
      }
    }
    this.schedule(probe, spec.intervalMs);
  }
}

export function startHealthChecks(options: HealthCheckerOptions): HealthChecker {
  return new ActiveHealthChecker(options);
}
