import type { GraphResponse } from '../../../collector/api/graph.js';
import { formatDurationNanos } from '../../lib/duration.js';
import { API_FLAGS, apiClientFromArgs, formatTable, sinceFlag, writeJson } from '../api-client.js';
import type { Command } from '../command.js';
import { booleanFlag } from '../flag-values.js';

const DEFAULT_SINCE = '15m';

function ms(value: number): string {
  return formatDurationNanos(Math.round(value * 1e6));
}

export const graphCommand: Command = {
  name: 'graph',
  summary: 'show the service graph: who calls whom, how often, how well',
  usage: 'tracemesh graph [--since 15m] [--json] [--api URL]',
  flags: {
    since: { type: 'string', valueName: 'DURATION', description: 'window to count calls in (at most 30d)', default: DEFAULT_SINCE },
    ...API_FLAGS,
  },
  examples: ['tracemesh graph', 'tracemesh graph --since 1h', 'tracemesh graph --json'],
  async run(args, io) {
    const since = sinceFlag(args, DEFAULT_SINCE);
    const client = apiClientFromArgs(args);
    const answer = await client.get<GraphResponse>('/api/v1/graph', { since });
    if (booleanFlag(args, 'json')) {
      writeJson(io.stdout, answer);
      return 0;
    }
    if (answer.edges.length === 0) {
      io.stdout.write(`no calls in the last ${since}\n`);
      return 0;
    }
    const rows = answer.edges.map((e) => [`${e.client} → ${e.server}`, String(e.requests), String(e.errors), ms(e.p50Ms), ms(e.p99Ms)]);
    io.stdout.write(formatTable(['CLIENT → SERVER', 'REQUESTS', 'ERRORS', 'P50', 'P99'], rows, ['left', 'right', 'right', 'right', 'right']));
    return 0;
  },
};
