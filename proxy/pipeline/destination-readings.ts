/**
 * The destinations' load-balancing state as the metrics read it at scrape
 * time (tracemesh_outlier_ejections_active,
 * tracemesh_health_check_failing_endpoints, tracemesh_lb_panic_picks_total
 * in proxy/telemetry/prom-metrics.ts): counted from Destination.status(),
 * the same view the admin /clusters page shows, so the gauges never need
 * to be kept in step with ejections and health flips by hand.
 */
import type { DestinationReading } from '../telemetry/prom-metrics.js';
import type { Destination } from './types.js';

/** One reading per destination that reports its status; a destination without status() has nothing to count. */
export function destinationReadings(destinations: readonly Destination[]): DestinationReading[] {
  const readings: DestinationReading[] = [];
  for (const destination of destinations) {
    const status = destination.status?.();
    if (status === undefined) continue;
    let ejected = 0;
    let failing = 0;
    // status() ends the ejections whose time is up first, so ejectedUntilMs > 0 is "ejected now".
    for (const endpoint of status.endpoints) {
      if (endpoint.ejectedUntilMs > 0) ejected++;
      if (!endpoint.healthy) failing++;
    }
    readings.push({ name: status.name, ejectedEndpoints: ejected, failingHealthChecks: failing, panicPicks: status.panicPicksTotal ?? 0 });
  }
  return readings;
}
