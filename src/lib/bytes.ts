import { TracemeshError } from './errors.js';

const UNITS: ReadonlyMap<string, number> = new Map([
  ['', 1],
  ['b', 1],
  ['kib', 1024],
  ['mib', 1024 ** 2],
  ['gib', 1024 ** 3],
  ['tib', 1024 ** 4],
  ['kb', 1e3],
  ['mb', 1e6],
  ['gb', 1e9],
  ['tb', 1e12],
]);

/** `512MiB`, `2GiB`, `1000000`: a size in bytes. `what` names the flag for the error message. */
export function parseBytes(text: string, what: string): number {
  const match = /^(\d+(?:\.\d+)?)\s*([a-zA-Z]*)$/.exec(text.trim());
  const unit = UNITS.get((match?.[2] ?? '').toLowerCase());
  if (match === null || unit === undefined) {
    throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `${what}: '${text}' is not a size (e.g. 512MiB, 2GiB, 1000000)`);
  }
  return Math.floor(Number(match[1]) * unit);
}
