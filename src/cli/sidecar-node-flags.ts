/**
 * Node flags the sidecar runs with. V8 sizes its heap only at start-up (v8.setFlagsFromString
 * afterwards has no effect), so these must be on node's command line: bin/tracemesh adds them
 * for `tracemesh proxy`, and whatever spawns sidecars itself (the benchmark, the demo) passes
 * them too. bin/tracemesh.test.ts keeps the launcher in step with this list.
 *
 * --max-semi-space-size=2: the young generation otherwise grows to 16 MiB semi-spaces under
 * load; at 2 MiB a loaded sidecar measured 73–77 MB RSS instead of 87–90 MB, with no CPU cost
 * visible in paired runs (bench/results/proxy-telemetry-notes.md). 1 MiB measured slower.
 */
export const SIDECAR_NODE_FLAGS: readonly string[] = ['--max-semi-space-size=2'];
