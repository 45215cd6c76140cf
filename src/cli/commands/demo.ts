import { TracemeshError } from '../../lib/errors.js';
import type { Command, ParsedArgs } from '../command.js';
import { booleanFlag, positiveIntFlag, stringFlag } from '../flag-values.js';

// The demo's modules (and what they import) load only when this command runs.

export const DEFAULT_DEMO_RATE = 20;
const MAX_DEMO_RATE = 1_000;
/** A day: long enough for any demo, short enough to catch a typo in minutes-vs-seconds. */
const MAX_DEMO_SECONDS = 86_400;
const DEFAULT_DEMO_DATA_DIR = './.tracemesh';

export interface DemoFlags {
  dataDir: string;
  configDir: string | undefined;
  rate: number;
  durationSeconds: number | undefined;
  ui: boolean;
  transparent: boolean;
}

/** The flags, checked; bad values throw TracemeshError('TM_ERR_CLI_BAD_VALUE') naming the flag. */
export function demoFlags(args: ParsedArgs): DemoFlags {
  const durationText = stringFlag(args, 'duration');
  const dataDir = stringFlag(args, 'data-dir') ?? DEFAULT_DEMO_DATA_DIR;
  if (dataDir === '') throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', "--data-dir: '' is not a directory");
  return {
    dataDir,
    configDir: stringFlag(args, 'config'),
    rate: positiveIntFlag(args, 'rate', DEFAULT_DEMO_RATE, MAX_DEMO_RATE),
    durationSeconds: durationText === undefined ? undefined : positiveIntFlag(args, 'duration', 0, MAX_DEMO_SECONDS),
    ui: !booleanFlag(args, 'no-ui'),
    transparent: booleanFlag(args, 'transparent'),
  };
}

export const demoCommand: Command = {
  name: 'demo',
  summary: 'Run the whole mesh on this machine: collector, control plane, five traced services with sidecars, load and a live view',
  usage: 'tracemesh demo [--duration SECONDS] [--rate N] [--data-dir DIR] [--no-ui] [--config DIR] [--transparent]',
  flags: {
    duration: { type: 'string', valueName: 'SECONDS', description: 'run the traffic this long, print a summary and exit 0 (default: until Ctrl-C)' },
    rate: { type: 'string', valueName: 'N', description: 'requests per second the load generator sends to web', default: String(DEFAULT_DEMO_RATE) },
    'data-dir': { type: 'string', valueName: 'DIR', description: 'spans, configuration and state; reused by the next run', default: DEFAULT_DEMO_DATA_DIR },
    'no-ui': { type: 'boolean', description: 'no live view: a progress line every few seconds (logs, CI)' },
    config: { type: 'string', valueName: 'DIR', description: "the configuration applied at start (default: this package's examples/demo)" },
    transparent: { type: 'boolean', description: 'pods in network namespaces with iptables capture instead of explicit proxies (root only)' },
  },
  examples: ['tracemesh demo', 'tracemesh demo --duration 30 --no-ui', 'tracemesh demo --rate 50 --data-dir /tmp/tracemesh-demo'],
  async run(args, io) {
    const flags = demoFlags(args);
    if (flags.transparent) {
      const { checkTransparentDemo } = await import('../../demo/transparent.js');
      checkTransparentDemo();
    }
    const { defaultConfigDir } = await import('../../demo/paths.js');
    const configDir = flags.configDir ?? defaultConfigDir();
    if (configDir === undefined) {
      throw new TracemeshError('TM_ERR_CLI_USAGE', 'cannot find examples/demo beside this installation; name the configuration with --config DIR');
    }
    const { runDemo } = await import('../../demo/run-demo.js');
    return runDemo({ dataDir: flags.dataDir, configDir, rate: flags.rate, durationSeconds: flags.durationSeconds, ui: flags.ui, transparent: flags.transparent }, io);
  },
};
