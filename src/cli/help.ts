import type { Command } from './command.js';

export function commandHelp(command: Command): string {
  const lines = [`${command.summary}`, '', `Usage: ${command.usage}`];
  const flagNames = Object.keys(command.flags);
  if (flagNames.length > 0) {
    lines.push('', 'Flags:');
    const rows = flagNames.map((name) => {
      const spec = command.flags[name]!;
      // One-letter flags (`-f`, `-o`) are written with one dash, as people type them.
      const dashes = name.length === 1 ? '-' : '--';
      const left = spec.type === 'string' ? `${dashes}${name} ${spec.valueName ?? 'VALUE'}` : `${dashes}${name}`;
      const dflt = spec.default !== undefined && spec.default !== false ? ` (default ${String(spec.default)})` : '';
      return [left, `${spec.description}${dflt}`] as const;
    });
    rows.push(['--help', 'show this help']);
    const width = Math.max(...rows.map(([left]) => left.length)) + 2;
    for (const [left, right] of rows) lines.push(`  ${left.padEnd(width)}${right}`);
  }
  if (command.examples.length > 0) {
    lines.push('', 'Examples:');
    for (const example of command.examples) lines.push(`  ${example}`);
  }
  return `${lines.join('\n')}\n`;
}

export function overviewHelp(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  const lines = [
    'tracemesh: an observability-first service mesh',
    '',
    'Usage: tracemesh <command> [flags]',
    '',
    'Commands:',
    ...commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`),
    '',
    "Run 'tracemesh <command> --help' for a command's flags.",
  ];
  return `${lines.join('\n')}\n`;
}
