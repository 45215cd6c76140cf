import { TracemeshError } from '../lib/errors.js';
import { parseDurationNanos } from '../lib/duration.js';
import type { ParsedArgs } from './command.js';

function bad(flag: string, text: string, expected: string): TracemeshError {
  return new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--${flag}: '${text}' is not ${expected}`);
}

export function stringFlag(args: ParsedArgs, flag: string): string | undefined {
  const value = args.values[flag];
  return typeof value === 'string' ? value : undefined;
}

export function booleanFlag(args: ParsedArgs, flag: string): boolean {
  return args.values[flag] === true;
}

export function portFlag(args: ParsedArgs, flag: string, fallback: number): number {
  const text = stringFlag(args, flag);
  if (text === undefined) return fallback;
  if (!/^\d{1,5}$/.test(text) || Number(text) > 65535) throw bad(flag, text, 'a port (0-65535)');
  return Number(text);
}

export function positiveIntFlag(args: ParsedArgs, flag: string, fallback: number, max: number): number {
  const text = stringFlag(args, flag);
  if (text === undefined) return fallback;
  if (!/^\d{1,9}$/.test(text) || Number(text) < 1 || Number(text) > max) {
    throw bad(flag, text, `a whole number from 1 to ${max}`);
  }
  return Number(text);
}

/** A duration flag (`250ms`, `15m`, `2d`), returned as its text after checking it, or as nanoseconds. */
export function durationFlag(args: ParsedArgs, flag: string, fallback: string): { text: string; nanos: bigint } {
  const text = stringFlag(args, flag) ?? fallback;
  return { text, nanos: parseDurationNanos(text, `--${flag}`) };
}

export function urlFlag(args: ParsedArgs, flag: string, fallback: string): URL {
  const text = stringFlag(args, flag) ?? fallback;
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw bad(flag, text, 'a URL (e.g. http://127.0.0.1:16686)');
  }
  if (url.protocol !== 'http:' && url.protocol !== 'https:') throw bad(flag, text, 'an http:// or https:// URL');
  return url;
}
