import type { ServicesResponse } from '../../../collector/api/services.js';
import { API_FLAGS, apiClientFromArgs, sinceFlag, writeJson } from '../api-client.js';
import type { Command } from '../command.js';
import { booleanFlag, stringFlag } from '../flag-values.js';

export const servicesCommand: Command = {
  name: 'services',
  summary: 'list the services that sent spans, with their operations',
  usage: 'tracemesh services [--since D] [--json] [--api URL]',
  flags: {
    since: { type: 'string', valueName: 'DURATION', description: 'only services seen in this window (at most 30d; default: all retained data)' },
    ...API_FLAGS,
  },
  examples: ['tracemesh services', 'tracemesh services --since 1h', 'tracemesh services --json --api http://collector:16686'],
  async run(args, io) {
    const since = stringFlag(args, 'since') === undefined ? undefined : sinceFlag(args, '');
    const client = apiClientFromArgs(args);
    const answer = await client.get<ServicesResponse>('/api/v1/services', { since });
    if (booleanFlag(args, 'json')) {
      writeJson(io.stdout, answer);
      return 0;
    }
    if (answer.services.length === 0) {
      io.stdout.write(since === undefined ? 'no services have sent spans\n' : `no services sent spans in the last ${since}\n`);
      return 0;
    }
    const lines: string[] = [];
    for (const service of answer.services) {
      const n = service.operations.length;
      lines.push(`${service.name}  (${n} operation${n === 1 ? '' : 's'})`);
      for (const operation of service.operations) lines.push(`  ${operation}`);
    }
    io.stdout.write(`${lines.join('\n')}\n`);
    return 0;
  },
};
