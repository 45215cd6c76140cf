import { describe, expect, it } from 'vitest';
import { commands } from './commands/index.js';
import { runCaptured } from '../../test/support/api-fixtures.js';
import type { CliResult } from '../../test/support/api-fixtures.js';

function cli(...argv: string[]): Promise<CliResult> {
  return runCaptured(commands, argv);
}

describe('tracemesh CLI', () => {
  it('lists every command without arguments and with --help', async () => {
    const bare = await cli();
    expect(bare.code).toBe(2);
    const help = await cli('--help');
    expect(help.code).toBe(0);
    for (const name of ['collector', 'traces', 'trace', 'services', 'graph']) expect(help.stdout).toContain(`  ${name}`);
  });

  it('gives every command a --help with usage and examples', async () => {
    for (const command of commands) {
      const res = await cli(command.name, '--help');
      expect(res.code, command.name).toBe(0);
      expect(res.stdout).toContain(`Usage: tracemesh ${command.name}`);
      expect(res.stdout).toContain('Examples:');
    }
  });

  it('writes one-letter flags with one dash in help, as they are typed', async () => {
    const res = await cli('apply', '--help');
    expect(res.stdout).toMatch(/^  -f FILE/m);
    expect(res.stdout).not.toContain('--f ');
  });

  it('an unknown command: one line, exit 2', async () => {
    const res = await cli('frobnicate');
    expect(res.code).toBe(2);
    expect(res.stderr).toBe("tracemesh: unknown command 'frobnicate' (see tracemesh --help)\n");
  });

  const badCollectorArgs: Array<[string[], string]> = [
    [['--bogus'], 'unknown flag --bogus'],
    [['--otlp-grpc-port', 'abc'], "--otlp-grpc-port: 'abc' is not a port (0-65535)"],
    [['--api-port', '70000'], "--api-port: '70000' is not a port (0-65535)"],
    [['--ttl', '5x'], "--ttl: '5x' is not a duration"],
    [['--ttl', '10m'], "--ttl: '10m' is shorter than the 1h minimum"],
    [['--store-wait', 'soon'], "--store-wait: 'soon' is not a duration"],
    [['--spool-limit', 'lots'], "--spool-limit: 'lots' is not a size"],
    [['--clickhouse-url', 'ftp://x'], "--clickhouse-url: 'ftp://x' is not an http:// or https:// URL"],
    [['--data-dir', '/tmp/x', '--clickhouse-url', 'http://ch:8123'], '--data-dir and --clickhouse-url exclude each other'],
    [['--otlp-http-port'], '--otlp-http-port needs a value'],
    [['stray'], "unexpected argument 'stray'"],
  ];
  for (const [args, message] of badCollectorArgs) {
    it(`collector ${args.join(' ')}: one line naming it, exit 2`, async () => {
      const res = await cli('collector', ...args);
      expect(res.code).toBe(2);
      expect(res.stderr.split('\n')).toHaveLength(2);
      expect(res.stderr).toContain(message);
      expect(res.stderr.startsWith('tracemesh collector: ')).toBe(true);
    });
  }
});
