/**
 * Demo apps as real processes for tests: compile them once into a temp dir,
 * spawn them, wait for their ready line, stop them (SIGTERM then SIGKILL),
 * and read their traces back from a collector.
 *
 * How the children run: the apps' TypeScript (the entry files and what they
 * import, nothing else) is compiled with the TypeScript compiler API into a
 * fresh temp dir holding a `{"type":"module"}` package.json and a
 * node_modules symlink to the repo's, then `node <dir>/src/demo/apps/<app>.js`
 * runs. That is exactly the JavaScript `npm run build` would ship, never a
 * stale dist/, needs no loader (Node 20 cannot strip types), and does not
 * touch dist/.
 */
import { spawn } from 'node:child_process';
import type { ChildProcess } from 'node:child_process';
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { expect } from 'vitest';
import type { ApiSpan } from '../../collector/api/span-json.js';
import { parseReadyLine } from '../../src/demo/apps/lifecycle.js';
import { eventually, getJson } from './collector-harness.js';

const REPO = fileURLToPath(new URL('../..', import.meta.url));
export type AppName = 'web' | 'ratings' | 'inventory';
export const APPS: readonly AppName[] = ['web', 'ratings', 'inventory'];
const READY_TIMEOUT_MS = 20_000;
const KILL_AFTER_MS = 10_000;
export const GRPC_METHOD_SPAN = 'grpc.tracemesh.demo.Ratings/GetRating';

/** Compiles the app entry files (and their imports) to `<dir>/src/...`; throws with the diagnostics if emit fails. */
export function compileDemoApps(): string {
  const dir = mkdtempSync(path.join(tmpdir(), 'tracemesh-demo-apps-'));
  const configPath = path.join(REPO, 'tsconfig.json');
  const config = ts.readConfigFile(configPath, ts.sys.readFile);
  const parsed = ts.parseJsonConfigFileContent(config.config, ts.sys, REPO, undefined, configPath);
  const program = ts.createProgram(
    APPS.map((app) => path.join(REPO, 'src/demo/apps', `${app}.ts`)),
    { ...parsed.options, outDir: dir, rootDir: REPO, noEmit: false, sourceMap: false, incremental: false },
  );
  const result = program.emit();
  if (result.emitSkipped) {
    rmSync(dir, { recursive: true, force: true });
    const text = ts.formatDiagnostics(result.diagnostics, {
      getCanonicalFileName: (f) => f,
      getCurrentDirectory: () => REPO,
      getNewLine: () => '\n',
    });
    throw new Error(`compiling the demo apps failed:\n${text}`);
  }
  writeFileSync(path.join(dir, 'package.json'), '{ "type": "module" }\n');
  symlinkSync(path.join(REPO, 'node_modules'), path.join(dir, 'node_modules'), 'dir');
  return dir;
}

export interface AppProcess {
  app: AppName;
  port: number;
  child: ChildProcess;
  /** What the child printed so far (bounded), for failure messages. */
  output(): string;
}

export const children = new Set<ChildProcess>();
/** If the test process dies without afterAll, no child outlives it. */
export const killChildren = (): void => {
  for (const child of children) child.kill('SIGKILL');
};

const MAX_OUTPUT_CHARS = 20_000;

/** Spawns an app and resolves once it printed its ready line, with the port it listens on. */
export async function spawnApp(buildDir: string, app: AppName, args: string[], env: Record<string, string> = {}): Promise<AppProcess> {
  const child = spawn(process.execPath, [path.join(buildDir, 'src/demo/apps', `${app}.js`), '--port', '0', ...args], {
    // A clean environment: no http_proxy, OTEL_* or NODE_OPTIONS from the test runner.
    env: { PATH: process.env['PATH'] ?? '/usr/bin:/bin', HOME: process.env['HOME'] ?? tmpdir(), ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  children.add(child);
  child.once('exit', () => children.delete(child));
  let output = '';
  const append = (text: string): void => {
    output = (output + text).slice(-MAX_OUTPUT_CHARS);
  };
  child.stderr?.on('data', (chunk: Buffer) => append(chunk.toString('utf8')));
  const port = await new Promise<number>((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`${app} printed no ready line within ${READY_TIMEOUT_MS} ms:\n${output}`)), READY_TIMEOUT_MS);
    const onExit = (code: number | null, signal: string | null): void => {
      clearTimeout(timer);
      reject(new Error(`${app} exited (${code ?? signal ?? '?'}) before it was ready:\n${output}`));
    };
    child.once('exit', onExit);
    const lines = createInterface({ input: child.stdout! });
    lines.on('line', (line) => {
      append(`${line}\n`);
      const ready = parseReadyLine(line);
      if (ready?.app !== app) return;
      clearTimeout(timer);
      child.off('exit', onExit);
      resolve(ready.port);
    });
  });
  return { app, port, child, output: () => output };
}

/** SIGTERM, then SIGKILL if it is still there after KILL_AFTER_MS; resolves with how it ended. */
export async function stopApp(child: ChildProcess): Promise<{ code: number | null; signal: string | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return { code: child.exitCode, signal: child.signalCode };
  const exited = new Promise<{ code: number | null; signal: string | null }>((resolve) => {
    child.once('exit', (code, signal) => resolve({ code, signal }));
  });
  child.kill('SIGTERM');
  const killer = setTimeout(() => child.kill('SIGKILL'), KILL_AFTER_MS);
  const result = await exited;
  clearTimeout(killer);
  return result;
}


/** Polls the trace until `complete` accepts its spans; on timeout the message lists the spans seen. */
export async function waitForTrace(apiUrl: string, traceId: string, complete: (spans: ApiSpan[]) => boolean): Promise<ApiSpan[]> {
  let seen: ApiSpan[] = [];
  try {
    return await eventually(async () => {
      const { status, body } = await getJson<{ spans: ApiSpan[] }>(`${apiUrl}/api/v1/traces/${traceId}`);
      if (status !== 200) return undefined;
      seen = body.spans;
      return complete(seen) ? seen : undefined;
    }, `trace ${traceId}`);
  } catch (err) {
    const listing = seen.map((s) => `${s.serviceName} ${s.kind} ${s.name} ${s.spanId}<-${s.parentSpanId}`).join('\n  ');
    throw new Error(`${String(err)}; spans seen:\n  ${listing}`);
  }
}

export function findSpan(spans: ApiSpan[], serviceName: string, kind: string, name: string): ApiSpan {
  const matches = spans.filter((s) => s.serviceName === serviceName && s.kind === kind && s.name === name);
  expect(matches, `${serviceName} ${kind} ${name}`).toHaveLength(1);
  return matches[0]!;
}

