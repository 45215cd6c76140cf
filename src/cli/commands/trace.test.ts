import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_TRACE_IDS, closedPort, insertSpans, openTestStore, runCaptured, sampleTraces, startTestApi } from '../../../test/support/api-fixtures.js';
import type { CliResult, TestApi, TestStore } from '../../../test/support/api-fixtures.js';
import type { ApiSpan } from '../../../collector/api/span-json.js';
import { renderSpanTree, traceCommand } from './trace.js';

const MS = 1_000_000n;
const NOW = (BigInt(Date.now()) / 1000n) * 1000n * MS;
const BASE = NOW - 300_000n * MS + 123_456_789n;
const { checkout, ratings, worker } = SAMPLE_TRACE_IDS;

let db: TestStore;
let api: TestApi;

beforeAll(async () => {
  db = await openTestStore();
  await insertSpans(db.store, sampleTraces(BASE));
  api = await startTestApi({ store: db.store, isReady: () => true, now: () => NOW });
});

afterAll(async () => {
  await api?.app.close();
  await db?.cleanup();
});

function trace(...argv: string[]): Promise<CliResult> {
  return runCaptured([traceCommand], ['trace', ...argv, '--api', api.url]);
}

describe('tracemesh trace', () => {
  it('prints the span tree with durations, kinds and errors', async () => {
    expect(await trace(checkout)).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        `trace ${checkout}  3 spans  50.00ms  2 errors`,
        'frontend  GET /products  50.00ms  server',
        '  frontend  GET reviews  30.00ms  client  error: upstream returned 504',
        '    reviews  GET /reviews  25.00ms  server  error: deadline exceeded',
        '',
      ].join('\n'),
    });
  });

  it('shows spans whose parent is missing at the top level, by start time', async () => {
    const result = await trace(worker.toUpperCase());
    expect(result.code).toBe(0);
    expect(result.stdout).toBe(
      [
        `trace ${worker}  3 spans  20.00ms  0 errors`,
        'worker  process order  20.00ms  consumer',
        '  worker  INSERT orders  8.00ms  client',
        'worker  ack  1.00ms  internal',
        '',
      ].join('\n'),
    );
  });

  it('takes short ids and prints JSON with --json', async () => {
    const result = await trace('abc7f', '--json');
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout) as { traceId: string; spans: ApiSpan[] };
    expect(answer.traceId).toBe(ratings);
    expect(answer.spans).toHaveLength(1);
    expect(answer.spans[0]).toMatchObject({ name: 'POST /ratings', startTimeUnixNano: (BASE + 120_000n * MS).toString(), durationNanos: '5000000' });
  });

  it("shows the API's 404 message, exit 1", async () => {
    const result = await trace('4bf92f3577b34da6a3ce929d0e0e4736');
    expect(result).toEqual({ code: 1, stdout: '', stderr: 'tracemesh trace: trace 4bf92f3577b34da6a3ce929d0e0e4736 not found\n' });
  });

  it.each([
    [['xyz'], /^tracemesh trace: <traceId>: 'xyz' is not a trace id \(1-32 hex digits\)/],
    [['0af7651916cd43dd8448eb211c80319c0'], /^tracemesh trace: <traceId>: '0af7651916cd43dd8448eb211c80319c0' is not a trace id/],
    [[], /^tracemesh trace: missing argument <traceId>/],
    [['abc', 'def'], /^tracemesh trace: unexpected argument 'def'/],
    [['abc', '--depth', '3'], /^tracemesh trace: unknown flag --depth/],
  ])('%j -> exit 2 with one line', async (argv, message) => {
    const result = await runCaptured([traceCommand], ['trace', ...argv]);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('reports an unreachable API in one line, exit 1', async () => {
    const port = await closedPort();
    const result = await runCaptured([traceCommand], ['trace', checkout, '--api', `http://127.0.0.1:${port}/`]);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: `tracemesh trace: cannot reach the query API at http://127.0.0.1:${port}: connection refused\n`,
    });
  });

  it('has help with examples', async () => {
    const result = await runCaptured([traceCommand], ['trace', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: tracemesh trace <traceId>');
    expect(result.stdout).toContain('Examples:\n  tracemesh trace 0af7651916cd43dd8448eb211c80319c');
  });
});

describe('renderSpanTree', () => {
  function span(spanId: string, parentSpanId: string, start: number): ApiSpan {
    return {
      traceId: '1',
      spanId,
      parentSpanId,
      name: spanId,
      kind: 'Internal',
      serviceName: 's',
      startTimeUnixNano: String(start),
      durationNanos: '1000',
      statusCode: 'Unset',
      statusMessage: '',
      attributes: {},
      resourceAttributes: {},
      events: [],
      links: [],
    };
  }

  it('sorts children by start and survives parent cycles', () => {
    const lines = renderSpanTree([span('c', 'a', 3), span('b', 'a', 2), span('a', '', 1), span('x', 'y', 5), span('y', 'x', 4), span('s', 's', 6)]);
    expect(lines).toEqual([
      'a  1.0µs  internal'.replace(/^/, 's  '),
      '  s  b  1.0µs  internal',
      '  s  c  1.0µs  internal',
      's  s  1.0µs  internal',
      's  y  1.0µs  internal',
      '  s  x  1.0µs  internal',
    ]);
  });

  it('handles a very deep trace without recursion', () => {
    const spans = Array.from({ length: 20_000 }, (_, i) => span(`s${i}`, i === 0 ? '' : `s${i - 1}`, i));
    const lines = renderSpanTree(spans);
    expect(lines).toHaveLength(20_000);
    expect(lines[19_999]?.startsWith(' '.repeat(2 * 19_999))).toBe(true);
  });
});
