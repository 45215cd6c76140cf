import type { TraceResponse } from '../../../collector/api/traces-by-id.js';
import type { ApiSpan } from '../../../collector/api/span-json.js';
import { TracemeshError } from '../../lib/errors.js';
import { formatDurationNanos } from '../../lib/duration.js';
import { API_FLAGS, apiClientFromArgs, writeJson } from '../api-client.js';
import type { Command } from '../command.js';
import { booleanFlag } from '../flag-values.js';

const TRACE_ID_RE = /^[0-9a-fA-F]{1,32}$/;
const INDENT = '  ';

function compareStart(a: ApiSpan, b: ApiSpan): number {
  const sa = BigInt(a.startTimeUnixNano);
  const sb = BigInt(b.startTimeUnixNano);
  if (sa !== sb) return sa < sb ? -1 : 1;
  return a.spanId < b.spanId ? -1 : a.spanId > b.spanId ? 1 : 0;
}

function spanLine(span: ApiSpan, depth: number): string {
  const parts = [span.serviceName, span.name, formatDurationNanos(Number(span.durationNanos)), span.kind.toLowerCase()];
  if (span.statusCode === 'Error') parts.push(span.statusMessage.length > 0 ? `error: ${span.statusMessage}` : 'error');
  return `${INDENT.repeat(depth)}${parts.join('  ')}`;
}

/**
 * The spans as an indented tree: children under their parent by start time.
 * Spans whose parent is not in the trace (orphans), and any caught in a parent
 * cycle, are shown at the top level.
 */
export function renderSpanTree(spans: readonly ApiSpan[]): string[] {
  const sorted = [...spans].sort(compareStart);
  const ids = new Set(sorted.map((s) => s.spanId));
  const children = new Map<string, ApiSpan[]>();
  const roots: ApiSpan[] = [];
  for (const span of sorted) {
    const parent = span.parentSpanId;
    if (parent === '' || parent === span.spanId || !ids.has(parent)) {
      roots.push(span);
      continue;
    }
    const list = children.get(parent);
    if (list === undefined) children.set(parent, [span]);
    else list.push(span);
  }
  const lines: string[] = [];
  const seen = new Set<ApiSpan>();
  const walk = (start: ApiSpan): void => {
    // Explicit stack: a deep trace must not exhaust the call stack.
    const stack: Array<[ApiSpan, number]> = [[start, 0]];
    while (stack.length > 0) {
      const [span, depth] = stack.pop() as [ApiSpan, number];
      if (seen.has(span)) continue;
      seen.add(span);
      lines.push(spanLine(span, depth));
      const kids = children.get(span.spanId) ?? [];
      for (let i = kids.length - 1; i >= 0; i--) stack.push([kids[i] as ApiSpan, depth + 1]);
    }
  };
  for (const root of roots) walk(root);
  for (const span of sorted) if (!seen.has(span)) walk(span);
  return lines;
}

function traceHeader(answer: TraceResponse): string {
  let start: bigint | undefined;
  let end: bigint | undefined;
  let errors = 0;
  for (const span of answer.spans) {
    const s = BigInt(span.startTimeUnixNano);
    const e = s + BigInt(span.durationNanos);
    if (start === undefined || s < start) start = s;
    if (end === undefined || e > end) end = e;
    if (span.statusCode === 'Error') errors += 1;
  }
  const duration = start !== undefined && end !== undefined ? formatDurationNanos(Number(end - start)) : '0ns';
  const count = answer.spans.length;
  return `trace ${answer.traceId}  ${count} span${count === 1 ? '' : 's'}  ${duration}  ${errors} error${errors === 1 ? '' : 's'}`;
}

export const traceCommand: Command = {
  name: 'trace',
  summary: 'show one trace as a span tree',
  usage: 'tracemesh trace <traceId> [--json] [--api URL]',
  flags: { ...API_FLAGS },
  positionals: [{ name: 'traceId', required: true }],
  examples: ['tracemesh trace 0af7651916cd43dd8448eb211c80319c', 'tracemesh trace 4bf92f3577b34da6 --json', 'tracemesh trace 0af76519 --api http://collector:16686'],
  async run(args, io) {
    const id = args.positionals[0] as string;
    if (!TRACE_ID_RE.test(id)) {
      throw new TracemeshError('TM_ERR_CLI_BAD_VALUE', `<traceId>: '${id}' is not a trace id (1-32 hex digits)`);
    }
    const client = apiClientFromArgs(args);
    const answer = await client.get<TraceResponse>(`/api/v1/traces/${id.toLowerCase()}`);
    if (booleanFlag(args, 'json')) {
      writeJson(io.stdout, answer);
      return 0;
    }
    io.stdout.write(`${[traceHeader(answer), ...renderSpanTree(answer.spans)].join('\n')}\n`);
    return 0;
  },
};
