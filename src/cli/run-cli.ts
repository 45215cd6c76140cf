import { parseArgs } from 'node:util';
import type { ParseArgsConfig } from 'node:util';
import { TracemeshError, errorMessage, isTracemeshError } from '../lib/errors.js';
import type { Command, CommandIo, ParsedArgs } from './command.js';
import { commandHelp, overviewHelp } from './help.js';

const EXIT_USAGE = 2;
const EXIT_FAILURE = 1;

function parseCommandArgs(command: Command, argv: string[]): ParsedArgs {
  const options: NonNullable<ParseArgsConfig['options']> = { help: { type: 'boolean' } };
  for (const [name, spec] of Object.entries(command.flags)) {
    options[name] = spec.multiple === true ? { type: spec.type, multiple: true } : { type: spec.type };
  }
  let parsed: ReturnType<typeof parseArgs>;
  try {
    parsed = parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    const nodeCode = (err as { code?: string }).code;
    const flag = /'(-[^']*)'/.exec(errorMessage(err))?.[1] ?? '';
    if (nodeCode === 'ERR_PARSE_ARGS_UNKNOWN_OPTION') {
      throw new TracemeshError('TM_ERR_CLI_UNKNOWN_FLAG', `unknown flag ${flag}`);
    }
    if (nodeCode === 'ERR_PARSE_ARGS_INVALID_OPTION_VALUE') {
      // node names the flag as '--since <value>' or '-s, --since <value>'.
      const name = flag.split(' ').find((word) => word.startsWith('--')) ?? flag;
      const expectsValue = command.flags[name.replace(/^--/, '')]?.type === 'string';
      throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', expectsValue ? `${name} needs a value` : `${name} takes no value`);
    }
    throw new TracemeshError('TM_ERR_CLI_USAGE', errorMessage(err).split('.')[0] ?? 'bad arguments');
  }
  const values: ParsedArgs['values'] = {};
  for (const [name, spec] of Object.entries(command.flags)) {
    const value = parsed.values[name];
    values[name] = (value ?? spec.default) as ParsedArgs['values'][string];
  }
  values['help'] = parsed.values['help'] === true;
  if (values['help'] === true) return { values, positionals: parsed.positionals };
  const specs = command.positionals ?? [];
  const required = specs.filter((p) => p.required).length;
  if (parsed.positionals.length < required) {
    const missing = specs[parsed.positionals.length];
    throw new TracemeshError('TM_ERR_CLI_USAGE', `missing argument <${missing?.name ?? 'arg'}>`);
  }
  if (parsed.positionals.length > specs.length) {
    throw new TracemeshError('TM_ERR_CLI_USAGE', `unexpected argument '${parsed.positionals[specs.length]}'`);
  }
  return { values, positionals: parsed.positionals };
}

/** Runs `tracemesh <command> ...argv`; returns the exit code. Usage errors print one line and give 2. */
export async function runCli(commands: readonly Command[], argv: string[], io: CommandIo): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === '--help' || name === '-h' || name === 'help') {
    io.stdout.write(overviewHelp(commands));
    return name === undefined ? EXIT_USAGE : 0;
  }
  const command = commands.find((c) => c.name === name);
  if (command === undefined) {
    io.stderr.write(`tracemesh: unknown command '${name}' (see tracemesh --help)\n`);
    return EXIT_USAGE;
  }
  try {
    const args = parseCommandArgs(command, rest);
    if (args.values['help'] === true) {
      io.stdout.write(commandHelp(command));
      return 0;
    }
    return await command.run(args, io);
  } catch (err) {
    // A configuration error lists every problem, one per line; other errors print their first line.
    const message = isTracemeshError(err, 'TM_ERR_CONFIG_INVALID') || isTracemeshError(err, 'TM_ERR_CONFIG_READ') ? errorMessage(err) : errorMessage(err).split('\n')[0];
    if (isTracemeshError(err) && err.code.startsWith('TM_ERR_CLI_')) {
      io.stderr.write(`tracemesh ${command.name}: ${message} (see tracemesh ${command.name} --help)\n`);
      return EXIT_USAGE;
    }
    io.stderr.write(`tracemesh ${command.name}: ${message}\n`);
    return EXIT_FAILURE;
  }
}
