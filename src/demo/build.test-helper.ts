/**
 * For tests (unit and system): compile the CLI and the demo apps from the sources into a temp
 * dir, the way `npm run build` would (plus the collector's DDL, the native
 * addon's build dir, examples/ and node_modules as symlinks), so `node
 * <dir>/src/cli/main.js demo` runs exactly today's code without touching dist/.
 */
import { chmodSync, cpSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
const ROOTS = [
  'src/cli/main.ts',
  'src/config/load-worker.ts',
  'src/demo/apps/web.ts',
  'src/demo/apps/catalog-app.ts',
  'src/demo/apps/reviews.ts',
  'src/demo/apps/ratings.ts',
  'src/demo/apps/inventory.ts',
  // Loaded on its own by the TPROXY relay fixture (test/system/fixtures/tproxy-relay.mjs).
  'proxy/capture/transparent-connect.ts',
];

/** Returns the build dir; the caller removes it. Emits despite type errors elsewhere in the tree (as tsc does), fails only when nothing was emitted. */
export function compileTracemesh(prefix = 'tracemesh-demo-build-'): string {
  const dir = mkdtempSync(path.join(tmpdir(), prefix));
  const configPath = path.join(REPO, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, REPO, undefined, configPath);
  const program = ts.createProgram(
    ROOTS.map((file) => path.join(REPO, file)),
    { ...parsed.options, outDir: dir, rootDir: REPO, noEmit: false, sourceMap: false, declaration: false, incremental: false },
  );
  const result = program.emit();
  if (result.emitSkipped) {
    rmSync(dir, { recursive: true, force: true });
    const host = { getCanonicalFileName: (f: string) => f, getCurrentDirectory: () => REPO, getNewLine: () => '\n' };
    throw new Error(`compiling tracemesh failed:\n${ts.formatDiagnostics(result.diagnostics, host)}`);
  }
  cpSync(path.join(REPO, 'collector/storage/sql'), path.join(dir, 'collector/storage/sql'), { recursive: true });
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  symlinkSync(path.join(REPO, 'build'), path.join(dir, 'build'), 'dir');
  symlinkSync(path.join(REPO, 'examples'), path.join(dir, 'examples'), 'dir');
  // The transparent demo's sidecars run as uid 1337 and must read it (mkdtemp makes it 0700).
  chmodSync(dir, 0o755);
  return dir;
}
