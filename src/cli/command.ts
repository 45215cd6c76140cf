import type { Writable } from 'node:stream';

/** One flag of a subcommand, as `node:util` parseArgs takes it plus help text. */
export interface FlagSpec {
  type: 'string' | 'boolean';
  description: string;
  /** Shown in help as the value's name, e.g. `DIR`, `URL`. */
  valueName?: string;
  default?: string | boolean;
  multiple?: boolean;
}

export interface CommandIo {
  stdout: Writable;
  stderr: Writable;
  /** Resolves when the process is asked to stop (SIGINT/SIGTERM); long-running commands await it. */
  stopSignal: Promise<string>;
}

export interface ParsedArgs {
  values: Record<string, string | boolean | string[] | undefined>;
  positionals: string[];
}

/** A `tracemesh` subcommand. Bad flags and values are the framework's job up to `run`;
 * `run` throws TracemeshError('TM_ERR_CLI_BAD_VALUE') for values it checks itself. */
export interface Command {
  name: string;
  summary: string;
  /** One line: `tracemesh traces [--service S] ...`. */
  usage: string;
  flags: Record<string, FlagSpec>;
  /** Names of positional arguments, for help and arity checks. */
  positionals?: Array<{ name: string; required: boolean }>;
  examples: string[];
  /** Returns the process exit code. */
  run(args: ParsedArgs, io: CommandIo): Promise<number>;
}
