import { execFileSync } from 'node:child_process';
import { chmodSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { SIDECAR_NODE_FLAGS } from './sidecar-node-flags.js';

const root = path.resolve(import.meta.dirname, '../..');
const launcher = path.join(root, 'bin', 'tracemesh');
const main = path.join(root, 'dist', 'src', 'cli', 'main.js');

// A stand-in `node` first on PATH that prints the arguments it was given, one per line.
const scratch = mkdtempSync(path.join(tmpdir(), 'tm-launcher-'));
writeFileSync(path.join(scratch, 'node'), '#!/bin/sh\nfor a in "$@"; do echo "$a"; done\n');
chmodSync(path.join(scratch, 'node'), 0o755);
// npm links bin entries from node_modules/.bin; the launcher must find dist/ through the link.
const linked = path.join(scratch, 'tracemesh-link');
symlinkSync(launcher, linked);
afterAll(() => rmSync(scratch, { recursive: true, force: true }));

function launch(via: string, args: string[]): string[] {
  const out = execFileSync(via, args, { encoding: 'utf8', env: { ...process.env, PATH: `${scratch}:${process.env.PATH ?? ''}` } });
  return out.trimEnd().split('\n');
}

describe('bin/tracemesh', () => {
  it('starts the sidecar with the sidecar node flags', () => {
    expect(launch(launcher, ['proxy', '--service', 'web'])).toEqual([...SIDECAR_NODE_FLAGS, main, 'proxy', '--service', 'web']);
  });

  it('starts every other command with node as it is, arguments untouched', () => {
    expect(launch(launcher, ['traces', '--service', 'a b'])).toEqual([main, 'traces', '--service', 'a b']);
  });

  it('finds dist/ when called through a symbolic link, as npm installs it', () => {
    expect(launch(linked, ['proxy'])).toEqual([...SIDECAR_NODE_FLAGS, main, 'proxy']);
  });
});
