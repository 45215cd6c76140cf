/**
 * The demo application: which workloads run, which app script each one is,
 * the mesh service and version its sidecar registers as, and whom it calls
 * (by the service names and ports of examples/demo/services.yaml).
 *
 *   web ──HTTP──► catalog ──HTTP──► reviews v1 | v2 | v3 ──gRPC──► ratings
 *    └──────────────TCP──────────────► inventory
 */

export interface Workload {
  /** Unique per process pair: `reviews-v3`. Also the app's service.name in spans. */
  readonly name: string;
  /** The app's entry script in src/demo/apps. */
  readonly script: string;
  /** The mesh service its sidecar registers under, and the version label. */
  readonly service: string;
  readonly version: string;
  /**
   * Its service's port (examples/demo/services.yaml). In transparent mode
   * the app listens on it in its own pod and callers connect to it there;
   * in explicit mode the app takes any free port and this is only the name.
   */
  readonly port: number;
  /** App flags besides port, collector and proxy. */
  readonly appArgs: readonly string[];
  /** Whether the scenario clock may play faults on it (it gets a --fault-file). */
  readonly faults: boolean;
  /** Endpoints its sidecar must know of before traffic starts, by service. */
  readonly needs: Readonly<Record<string, number>>;
}

export const REVIEWS_VERSIONS = ['v1', 'v2', 'v3'] as const;

function reviews(version: string): Workload {
  return {
    name: `reviews-${version}`,
    script: 'reviews.js',
    service: 'reviews',
    version,
    port: 9080,
    appArgs: ['--version', version, '--ratings', 'ratings:50051'],
    faults: true,
    needs: { ratings: 1 },
  };
}

/** Callees first, so that by the time a caller's sidecar starts, its peers are registering. */
export const WORKLOADS: readonly Workload[] = [
  { name: 'ratings', script: 'ratings.js', service: 'ratings', version: 'v1', port: 50051, appArgs: [], faults: true, needs: {} },
  { name: 'inventory', script: 'inventory.js', service: 'inventory', version: 'v1', port: 7070, appArgs: [], faults: false, needs: {} },
  ...REVIEWS_VERSIONS.map(reviews),
  {
    name: 'catalog',
    script: 'catalog-app.js',
    service: 'catalog',
    version: 'v1',
    port: 9080,
    appArgs: ['--reviews', 'reviews:9080'],
    faults: false,
    needs: { reviews: REVIEWS_VERSIONS.length },
  },
  {
    name: 'web',
    script: 'web.js',
    service: 'web',
    version: 'v1',
    port: 9080,
    appArgs: ['--catalog', 'catalog:9080', '--inventory', 'inventory:7070'],
    faults: false,
    needs: { catalog: 1, inventory: 1 },
  },
];

/** The workload the load generator calls (through its sidecar's inbound listener). */
export const ENTRY_WORKLOAD = 'web';

/** Every service name that shows up in spans: the mesh services (proxies) and the per-version app names. */
export function spanServiceNames(workloads: readonly Workload[] = WORKLOADS): string[] {
  const names = new Set<string>();
  for (const workload of workloads) {
    names.add(workload.service);
    names.add(workload.name);
  }
  return [...names].sort();
}

/** The calls between mesh services the demo makes (client → server), for the view and the tests. */
export const DEMO_EDGES: ReadonlyArray<readonly [string, string]> = [
  ['web', 'catalog'],
  ['web', 'inventory'],
  ['catalog', 'reviews'],
  ['reviews', 'ratings'],
];
