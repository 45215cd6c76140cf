/**
 * The texts `tracemesh apply -f` sends: files, directories (their *.yaml and
 * *.yml files, not recursive, dot files skipped, in name order: the same
 * rule as a proxy's `--config`) and `-` for standard input. The control plane
 * parses and validates them, so problems it reports name these files.
 */
import { readdir, readFile, stat } from 'node:fs/promises';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { MAX_CONFIG_FILE_BYTES } from '../config/yaml-documents.js';
import type { SourceText } from '../control-plane/config-set.js';
import { TracemeshError, errorMessage } from '../lib/errors.js';

export const STDIN_FILE = '<stdin>';
const YAML_FILE = /\.ya?ml$/i;

function osReason(err: unknown): string {
  const code = (err as NodeJS.ErrnoException).code;
  if (code === 'ENOENT') return 'no such file or directory';
  if (code === 'EACCES') return 'permission denied';
  return errorMessage(err);
}

function tooLarge(file: string, size: number): string {
  return `${file} is ${size} bytes; a config file may be at most ${MAX_CONFIG_FILE_BYTES} bytes`;
}

async function readStdin(stdin: Readable): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of stdin) {
    const buffer = typeof chunk === 'string' ? Buffer.from(chunk) : (chunk as Buffer);
    size += buffer.length;
    if (size > MAX_CONFIG_FILE_BYTES) throw new TracemeshError('TM_ERR_CONFIG_READ', `${tooLarge(STDIN_FILE, size)} (stopped reading there)`);
    chunks.push(buffer);
  }
  return Buffer.concat(chunks).toString('utf8');
}

/** One path → the files it stands for; what cannot be read is added to `problems`. */
async function expand(given: string, problems: string[]): Promise<string[]> {
  let info;
  try {
    info = await stat(given);
  } catch (err) {
    problems.push(`cannot read ${given}: ${osReason(err)}`);
    return [];
  }
  if (!info.isDirectory()) return [given];
  let names: string[];
  try {
    names = await readdir(given);
  } catch (err) {
    problems.push(`cannot read the directory ${given}: ${osReason(err)}`);
    return [];
  }
  const files = names
    .filter((name) => YAML_FILE.test(name) && !name.startsWith('.'))
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
    .map((name) => path.join(given, name));
  if (files.length === 0) problems.push(`${given} is a directory with no *.yaml or *.yml files`);
  return files;
}

/**
 * Every path's texts, in the order given. Throws TM_ERR_CONFIG_READ listing
 * every path that could not be read (nothing is sent then); `-` may appear once.
 */
export async function readConfigSources(paths: readonly string[], stdin: () => Readable): Promise<SourceText[]> {
  const problems: string[] = [];
  const sources: SourceText[] = [];
  if (paths.filter((p) => p === '-').length > 1) throw new TracemeshError('TM_ERR_CLI_USAGE', "-f -: standard input can be read once only");
  for (const given of paths) {
    if (given === '-') {
      sources.push({ file: STDIN_FILE, text: await readStdin(stdin()) });
      continue;
    }
    for (const file of await expand(given, problems)) {
      try {
        const size = (await stat(file)).size;
        if (size > MAX_CONFIG_FILE_BYTES) {
          problems.push(tooLarge(file, size));
          continue;
        }
        sources.push({ file, text: await readFile(file, 'utf8') });
      } catch (err) {
        problems.push(`cannot read ${file}: ${osReason(err)}`);
      }
    }
  }
  if (problems.length > 0) throw new TracemeshError('TM_ERR_CONFIG_READ', `${problems.join('\n')}\nnothing was applied`);
  return sources;
}
