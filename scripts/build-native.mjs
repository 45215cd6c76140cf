// `npm install` runs this to build the capture addon (binding.gyp -> build/Release/tracemesh_capture.node).
// It never fails the install: explicit mode works without the addon. When the build cannot happen
// (no compiler, no Node headers, no node-gyp) it prints one warning line and writes the reason to
// build/tracemesh-capture-build-error.txt, where proxy/capture/original-dst.ts reads it to explain
// why `--mode transparent` is unavailable.
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const scriptFile = fileURLToPath(import.meta.url);
const root = path.resolve(path.dirname(scriptFile), '..');
const buildDir = path.join(root, 'build');
const errorFile = path.join(buildDir, 'tracemesh-capture-build-error.txt');
const addonFile = path.join(buildDir, 'Release', 'tracemesh_capture.node');
const sources = [path.join(root, 'binding.gyp'), path.join(root, 'proxy', 'capture', 'native', 'capture.c'), scriptFile];
// Compiling takes seconds; a node-gyp stuck downloading headers must not hold the install forever.
const BUILD_TIMEOUT_MS = 180_000;

/** npm's own node-gyp (npm sets npm_config_node_gyp for scripts), else the one beside npm, else a local one. */
function findNodeGyp() {
  const candidates = [];
  if (process.env.npm_config_node_gyp) candidates.push(process.env.npm_config_node_gyp);
  if (process.env.npm_execpath) {
    candidates.push(path.join(path.dirname(process.env.npm_execpath), '..', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  }
  candidates.push(path.join(path.dirname(process.execPath), '..', 'lib', 'node_modules', 'npm', 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  candidates.push(path.join(root, 'node_modules', 'node-gyp', 'bin', 'node-gyp.js'));
  return candidates.find((file) => fs.existsSync(file));
}

/**
 * Where the Node headers are. An explicit `nodedir` (npmrc, passed by npm as npm_config_nodedir)
 * wins; otherwise the headers installed beside this node binary (a distribution's nodejs package
 * puts them in <prefix>/include/node), so node-gyp never needs to download them. npm 11 warns that
 * `nodedir` is not an npm option and a later npm will stop passing it: the second rule covers that.
 */
function findNodeDir() {
  if (process.env.npm_config_nodedir) return process.env.npm_config_nodedir;
  const prefix = path.resolve(path.dirname(process.execPath), '..');
  const version = path.join(prefix, 'include', 'node', 'node_version.h');
  if (!fs.existsSync(version) || !fs.existsSync(path.join(prefix, 'include', 'node', 'common.gypi'))) return undefined;
  const text = fs.readFileSync(version, 'utf8');
  const part = (name) => new RegExp(`#define NODE_${name}_VERSION (\\d+)`).exec(text)?.[1];
  const headers = `v${part('MAJOR')}.${part('MINOR')}.${part('PATCH')}`;
  return headers === process.version ? prefix : undefined;
}

function upToDate() {
  if (!fs.existsSync(addonFile)) return false;
  const built = fs.statSync(addonFile).mtimeMs;
  return sources.every((file) => fs.statSync(file).mtimeMs <= built);
}

/** The line of a failed build's log that says most about why: a compiler error, a missing tool, make's verdict, node-gyp's own error. */
function firstCause(log) {
  const lines = log.split('\n').map((line) => line.trim());
  const tools = lines.filter((l) => !l.startsWith('gyp ') && !l.startsWith('$ node '));
  for (const pattern of [/(^|\s)(fatal )?error:/i, /not found|No such file or directory|Permission denied/i, /^make: \*\*\*/]) {
    const line = tools.find((l) => pattern.test(l));
    if (line) return line;
  }
  if (lines.some((l) => l.startsWith('gyp ERR! find Python'))) return 'node-gyp found no usable Python (install python3)';
  for (const pattern of [/^gyp ERR! stack Error: /, /^gyp ERR! /]) {
    const line = lines.find((l) => pattern.test(l));
    if (line) return line;
  }
  return 'no error line in the output';
}

function fail(summary, log) {
  fs.mkdirSync(buildDir, { recursive: true });
  fs.writeFileSync(errorFile, `${summary}\n${log ? `\n${log}\n` : ''}`);
  console.warn(`tracemesh: WARNING the capture addon was not built (${summary}); --mode transparent is unavailable, explicit mode works. Details: ${path.relative(root, errorFile)}`);
}

function build() {
  if (process.platform !== 'linux') return fail(`SO_ORIGINAL_DST and IP_TRANSPARENT are Linux-only; this is ${process.platform}`);
  if (!process.argv.includes('--force') && upToDate()) {
    fs.rmSync(errorFile, { force: true });
    return;
  }
  const nodeGyp = findNodeGyp();
  if (!nodeGyp) return fail('node-gyp not found (npm normally ships it; run this through npm or install node-gyp)');
  const nodeDir = findNodeDir();
  const args = [nodeGyp, 'rebuild', '--release', ...(nodeDir ? [`--nodedir=${nodeDir}`] : [])];
  // One log file for both streams keeps compiler errors next to the step that printed them; it
  // lives outside build/, which `rebuild` deletes first.
  const logDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tracemesh-build-'));
  const logFile = path.join(logDir, 'node-gyp.log');
  const logFd = fs.openSync(logFile, 'w');
  let result;
  try {
    result = spawnSync(process.execPath, args, { cwd: root, stdio: ['ignore', logFd, logFd], timeout: BUILD_TIMEOUT_MS });
  } finally {
    fs.closeSync(logFd);
  }
  const log = `$ node ${args.join(' ')}\n${fs.readFileSync(logFile, 'utf8')}`.trim();
  fs.rmSync(logDir, { recursive: true, force: true });
  if (result.error) return fail(`node-gyp could not run: ${result.error.message}`, log);
  if (result.status !== 0 || !fs.existsSync(addonFile)) {
    return fail(`node-gyp rebuild failed (${result.status === null ? result.signal : `exit ${result.status}`}): ${firstCause(log)}`, log);
  }
  fs.rmSync(errorFile, { force: true });
  console.log(`tracemesh: built the capture addon (${path.relative(root, addonFile)})`);
}

try {
  build();
} catch (err) {
  try {
    fail(`the build script failed: ${err instanceof Error ? err.message : String(err)}`);
  } catch {
    console.warn(`tracemesh: WARNING the capture addon was not built: ${String(err)}`);
  }
}
