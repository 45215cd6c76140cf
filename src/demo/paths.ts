/**
 * Where the demo finds its programs and keeps its data. Programs sit beside
 * this module in the build (`dist/src/cli/main.js`, `dist/src/demo/apps/*.js`);
 * data goes under one directory (`./.tracemesh` by default), so a second
 * run reuses the first one's spans and configuration:
 *
 *   <data-dir>/collector/    the collector's chDB store and spool
 *   <data-dir>/config/       the control plane's configuration (a directory store)
 *   <data-dir>/proxies/NAME/ each sidecar's state (its config cache)
 *   <data-dir>/demo/         faults/*.json the scenario writes, state.json (pids, URLs)
 */
import { existsSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { notReady } from './errors.js';

export const DEFAULT_DATA_DIR = './.tracemesh';

export interface DemoPaths {
  readonly dataDir: string;
  readonly collectorDir: string;
  readonly configDir: string;
  readonly proxiesDir: string;
  readonly runDir: string;
  readonly faultsDir: string;
  readonly stateFile: string;
}

export function demoPaths(dataDir: string): DemoPaths {
  const root = path.resolve(dataDir);
  const runDir = path.join(root, 'demo');
  return {
    dataDir: root,
    collectorDir: path.join(root, 'collector'),
    configDir: path.join(root, 'config'),
    proxiesDir: path.join(root, 'proxies'),
    runDir,
    faultsDir: path.join(runDir, 'faults'),
    stateFile: path.join(runDir, 'state.json'),
  };
}

export interface DemoPrograms {
  /** `tracemesh` itself: the collector, control plane and proxies run as its subcommands. */
  readonly cli: string;
  /** The apps' entry scripts by file name (`web.js`). */
  app(script: string): string;
}

/** The built programs beside this module; a clear error when running from TypeScript sources (nothing to spawn). */
export function demoPrograms(moduleUrl: string = import.meta.url): DemoPrograms {
  const here = path.dirname(fileURLToPath(moduleUrl));
  const cli = path.join(here, '../cli/main.js');
  if (!existsSync(cli)) {
    throw notReady(`the demo runs the built CLI, and ${cli} does not exist; run \`npm run build\` (npm start does) and start it from dist/`);
  }
  return { cli, app: (script) => path.join(here, 'apps', script) };
}

/** examples/demo of the package this module belongs to: the nearest directory above it that holds one. */
export function defaultConfigDir(moduleUrl: string = import.meta.url): string | undefined {
  let dir = path.dirname(fileURLToPath(moduleUrl));
  for (;;) {
    const candidate = path.join(dir, 'examples', 'demo');
    if (existsSync(candidate)) return candidate;
    const parent = path.dirname(dir);
    if (parent === dir) return undefined;
    dir = parent;
  }
}
