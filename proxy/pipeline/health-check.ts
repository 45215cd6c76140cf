/**
 * Active health checks: every `interval`, a GET of `path` to an endpoint on
 * a connection of its own (agent: false, closed after the answer), with
 * `timeout`. In explicit mode the endpoint is a peer proxy's inbound
 * listener, so the check reaches the app through that proxy; the header
 * `x-tracemesh-health-check: 1` lets it (and the app's logs) tell checks
 * from traffic: the inbound proxy records no span for a check and tells the
 * app it is not sampled (proxy/telemetry/health-check-trace.ts). A check
 * carries no trace context of its own (no traceparent, no b3): it is part of
 * no trace, so there is nothing a peer could continue.
 *
 * One check per endpoint, not per destination. The whole-service
 * destination and every subset containing an endpoint would otherwise each
 * check it (2–4 loops per endpoint). A probe is keyed by what makes the
 * check itself: cluster (its Host header, "reviews.default:9080"), endpoint
 * address:port, path, interval and timeout. Destinations acquire a verdict on
 * a probe and release it when their configuration version closes; the probe
 * runs while anyone holds it, so a configuration swap (the new version
 * acquires before the old one releases) neither restarts nor doubles it.
 * Two policies asking different checks of one endpoint (a subset overriding
 * the path or the interval) get one probe each.
 *
 * Verdicts: the consecutive successes and failures are the probe's; the
 * thresholds are the policy's, so policies that differ only in
 * healthyThreshold/unhealthyThreshold share the probe and keep a verdict
 * each. Verdicts do not combine: a destination obeys the check its own
 * policy names, so an endpoint failing a subset's /ready but passing the
 * service's /healthz is out of that subset and in the whole service (as
 * Envoy, where every subset of an Istio DestinationRule is a cluster with
 * its own checker).
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
 * Timers are unref()ed; releasing the last holder stops the probe, its check
 * in flight included.
 */
import http from 'node:http';
import type { HealthCheck } from '../../src/config/types.js';
import { HEALTH_CHECK_HEADER } from '../telemetry/attributes.js';

export { HEALTH_CHECK_HEADER };

/** Where a check goes: the endpoint's address and port, and the Host header (the cluster's name). */
export interface HealthCheckTarget {
  readonly address: string;
  readonly port: number;
  /** "address:port", for keys and events. */
  readonly key: string;
  /** The Host header of the checks ("reviews.default:9080"). */
  readonly authority: string;
}

/** An endpoint's health flipped under one verdict (tests, logs). */
export interface HealthChange {
  readonly authority: string;
  readonly endpoint: string;
  readonly path: string;
  readonly healthy: boolean;
}

/** One policy's verdict on one endpoint: the probe's results under that policy's thresholds. */
export class HealthVerdict {
  healthy = true;

  constructor(
    readonly probe: HealthProbe,
    readonly healthyThreshold: number,
    readonly unhealthyThreshold: number,
  ) {}
}

/** One check loop: one endpoint, one path, one interval and timeout. */
export class HealthProbe {
  /** Destinations holding a verdict on this probe; it runs while above 0. */
  holders = 0;
  consecutiveSuccesses = 0;
  consecutiveFailures = 0;
  /** Why the last check failed; '' after a success or before any. */
  lastCheckFailure = '';
  /** Checks that ended (either way), for tests and the admin page. */
  completed = 0;
  timer: NodeJS.Timeout | undefined = undefined;
  /** The check in flight; a result from any other request (stopped, restarted since) is ignored. */
  request: http.ClientRequest | undefined = undefined;
  /** Keyed by "healthyThreshold/unhealthyThreshold". */
  readonly verdicts = new Map<string, HealthVerdict>();

  constructor(
    readonly target: HealthCheckTarget,
    readonly path: string,
    readonly intervalMs: number,
    readonly timeoutMs: number,
  ) {}

  get running(): boolean {
    return this.holders > 0;
  }
}

function probeKey(target: HealthCheckTarget, spec: HealthCheck): string {
  // The path goes last: it is the only part that may hold any character.
  return `${target.authority} ${target.key} ${spec.intervalMs} ${spec.timeoutMs} ${spec.path}`;
}

/**
 * Every probe of one proxy, shared by all destinations and configuration
 * versions (it lives in TrafficState). Bounded: a probe nobody holds is
 * stopped at once and forgotten at the next prune() (after a new version
 * acquired what it uses), so a version built after the old one closed still
 * finds its verdicts.
 */
export class HealthCheckPool {
  /** Bumped whenever any verdict flips; destinations compare it to know their usable lists are stale. */
  generation = 0;
  private readonly probes = new Map<string, HealthProbe>();

  constructor(private readonly onChange?: (change: HealthChange) => void) {}

  /** Probes known (running or kept for the next version). */
  get size(): number {
    return this.probes.size;
  }

  get runningCount(): number {
    let running = 0;
    for (const probe of this.probes.values()) if (probe.running) running++;
    return running;
  }

  /** A verdict on `target` under `spec`, starting its probe unless already running. Pair with release(). */
  acquire(target: HealthCheckTarget, spec: HealthCheck, random: () => number): HealthVerdict {
    const key = probeKey(target, spec);
    let probe = this.probes.get(key);
    if (probe === undefined) {
      probe = new HealthProbe(target, spec.path, spec.intervalMs, spec.timeoutMs);
      this.probes.set(key, probe);
    }
    const thresholds = `${spec.healthyThreshold}/${spec.unhealthyThreshold}`;
    let verdict = probe.verdicts.get(thresholds);
    if (verdict === undefined) {
      verdict = new HealthVerdict(probe, spec.healthyThreshold, spec.unhealthyThreshold);
      // A new verdict on a probe with a history starts from that history, not blindly healthy.
      if (probe.consecutiveFailures >= spec.unhealthyThreshold) verdict.healthy = false;
      probe.verdicts.set(thresholds, verdict);
    }
    probe.holders++;
    if (probe.holders === 1) this.schedule(probe, Math.floor(random() * Math.min(probe.intervalMs, 1_000)));
    return verdict;
  }

  /** Ends one acquire(); the last one stops the probe (its state stays until prune()). */
  release(verdict: HealthVerdict): void {
    const probe = verdict.probe;
    if (probe.holders === 0) return;
    probe.holders--;
    if (probe.holders === 0) this.stop(probe);
  }

  /** Forgets the probes nobody holds. */
  prune(): void {
    for (const [key, probe] of this.probes) if (!probe.running) this.probes.delete(key);
  }

  /** Stops every probe (the proxy's shutdown); safe twice. */
  close(): void {
    for (const probe of this.probes.values()) {
      probe.holders = 0;
      this.stop(probe);
    }
    this.probes.clear();
  }

  private stop(probe: HealthProbe): void {
    if (probe.timer !== undefined) clearTimeout(probe.timer);
    probe.timer = undefined;
    const request = probe.request;
    probe.request = undefined;
    request?.destroy();
  }

  private schedule(probe: HealthProbe, delayMs: number): void {
    probe.timer = setTimeout(() => this.check(probe), delayMs);
    probe.timer.unref();
  }

  private check(probe: HealthProbe): void {
    probe.timer = undefined;
    if (!probe.running) return;
    const { target, timeoutMs } = probe;
    // Exactly these headers: no trace context (see the file comment).
    const request = http.request({
      host: target.address,
      port: target.port,
      method: 'GET',
      path: probe.path,
      agent: false,
      timeout: timeoutMs,
      headers: { host: target.authority, [HEALTH_CHECK_HEADER]: '1', connection: 'close' },
    });
    probe.request = request;
    // The socket's idle timeout does not cover a server that accepted and
    // dribbles; this timer bounds the whole check.
    const deadline = setTimeout(() => request.destroy(new Error(`timed out after ${timeoutMs} ms`)), timeoutMs);
    deadline.unref();
    request.on('timeout', () => request.destroy(new Error(`timed out after ${timeoutMs} ms`)));
    request.on('response', (response) => {
      const status = response.statusCode ?? 0;
      response.resume();
      response.on('error', () => {});
      clearTimeout(deadline);
      this.settle(probe, request, status >= 200 && status < 300 ? '' : `answered ${status}`);
      request.destroy();
    });
    request.on('error', (err: NodeJS.ErrnoException) => {
      clearTimeout(deadline);
      this.settle(probe, request, err.code === undefined ? err.message : `${err.code}: ${err.message}`);
    });
    request.on('close', () => clearTimeout(deadline));
    request.end();
  }

  /** failure '' = success. Counts once per check, and only for the probe's current request. */
  private settle(probe: HealthProbe, request: http.ClientRequest, failure: string): void {
    if (probe.request !== request) return;
    probe.request = undefined;
    probe.completed++;
    if (failure === '') {
      probe.consecutiveFailures = 0;
      probe.consecutiveSuccesses++;
      probe.lastCheckFailure = '';
    } else {
      probe.consecutiveSuccesses = 0;
      probe.consecutiveFailures++;
      probe.lastCheckFailure = failure;
    }
    for (const verdict of probe.verdicts.values()) {
      const flip = verdict.healthy ? probe.consecutiveFailures >= verdict.unhealthyThreshold : probe.consecutiveSuccesses >= verdict.healthyThreshold;
      if (!flip) continue;
      verdict.healthy = !verdict.healthy;
      this.generation++;
      this.onChange?.({ authority: probe.target.authority, endpoint: probe.target.key, path: probe.path, healthy: verdict.healthy });
    }
    if (probe.running) this.schedule(probe, probe.intervalMs);
  }
}
