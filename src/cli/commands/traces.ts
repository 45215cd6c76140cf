import type { TraceSearchResponse } from '../../../collector/api/trace-search.js';
import { TracemeshError } from '../../lib/errors.js';
import { formatDurationNanos } from '../../lib/duration.js';
import { API_FLAGS, apiClientFromArgs, formatTable, isoFromNanos, sinceFlag, writeJson } from '../api-client.js';
import type { Command, ParsedArgs } from '../command.js';
import { booleanFlag, durationFlag, positiveIntFlag, stringFlag } from '../flag-values.js';

const DEFAULT_SINCE = '15m';
const DEFAULT_LIMIT = 20;
const MAX_LIMIT = 1000;

/** `--attr KEY=VALUE` (repeatable) -> `attr.KEY` query parameters. */
function attrParams(args: ParsedArgs): Record<string, string> {
  const out: Record<string, string> = {};
  const raw = args.values['attr'];
  const items = Array.isArray(raw) ? raw : typeof raw === 'string' ? [raw] : [];
  for (const item of items) {
    const eq = item.indexOf('=');
    if (eq <= 0) throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `--attr: '${item}' is not KEY=VALUE`);
    out[`attr.${item.slice(0, eq)}`] = item.slice(eq + 1);
  }
  return out;
}

function optionalDuration(args: ParsedArgs, flag: string): string | undefined {
  return stringFlag(args, flag) === undefined ? undefined : durationFlag(args, flag, '').text;
}

export const tracesCommand: Command = {
  name: 'traces',
  summary: 'search recent traces in the collector',
  usage:
    'tracemesh traces [--service S] [--operation O] [--since 15m] [--errors] [--min-duration D] [--max-duration D] [--attr KEY=VALUE]... [--limit N] [--json] [--api URL]',
  flags: {
    service: { type: 'string', valueName: 'S', description: 'only traces with a span of this service' },
    operation: { type: 'string', valueName: 'O', description: 'only traces with a span of this name' },
    since: { type: 'string', valueName: 'DURATION', description: 'how far back to look (at most 30d)', default: DEFAULT_SINCE },
    errors: { type: 'boolean', description: 'only traces with a failed span' },
    'min-duration': { type: 'string', valueName: 'DURATION', description: 'only traces with a span at least this long' },
    'max-duration': { type: 'string', valueName: 'DURATION', description: 'only traces with a span at most this long' },
    attr: { type: 'string', multiple: true, valueName: 'KEY=VALUE', description: 'only traces with a span (or its resource) carrying this attribute; repeatable' },
    limit: { type: 'string', valueName: 'N', description: `how many traces, newest first (1-${MAX_LIMIT})`, default: String(DEFAULT_LIMIT) },
    ...API_FLAGS,
  },
  examples: [
    'tracemesh traces',
    'tracemesh traces --service reviews --errors --since 1h',
    'tracemesh traces --operation "GET /api/products" --min-duration 250ms --limit 50',
    'tracemesh traces --attr http.response.status_code=503 --json',
  ],
  async run(args, io) {
    const query: Record<string, string | undefined> = {
      service: stringFlag(args, 'service'),
      operation: stringFlag(args, 'operation'),
      since: sinceFlag(args, DEFAULT_SINCE),
      status: booleanFlag(args, 'errors') ? 'error' : undefined,
      minDuration: optionalDuration(args, 'min-duration'),
      maxDuration: optionalDuration(args, 'max-duration'),
      limit: String(positiveIntFlag(args, 'limit', DEFAULT_LIMIT, MAX_LIMIT)),
      ...attrParams(args),
    };
    const client = apiClientFromArgs(args);
    const answer = await client.get<TraceSearchResponse>('/api/v1/traces', query);
    if (booleanFlag(args, 'json')) {
      writeJson(io.stdout, answer);
      return 0;
    }
    if (answer.traces.length === 0) {
      io.stdout.write(`no traces matched in the last ${query['since'] ?? DEFAULT_SINCE}\n`);
      return 0;
    }
    const rows = answer.traces.map((t) => [
      isoFromNanos(t.startTimeUnixNano),
      t.traceId,
      t.rootService,
      t.rootName,
      formatDurationNanos(Number(t.durationNanos)),
      String(t.spanCount),
      String(t.errorCount),
    ]);
    io.stdout.write(
      formatTable(['START', 'TRACE ID', 'ROOT SERVICE', 'ROOT OPERATION', 'DURATION', 'SPANS', 'ERRORS'], rows, [
        'left',
        'left',
        'left',
        'left',
        'right',
        'right',
        'right',
      ]),
    );
    return 0;
  },
};
