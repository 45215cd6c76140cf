import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SAMPLE_TRACE_IDS, closedPort, insertSpans, openTestStore, runCaptured, sampleTraces, startTestApi } from '../../../test/support/api-fixtures.js';
import type { CliResult, TestApi, TestStore } from '../../../test/support/api-fixtures.js';
import { tracesCommand } from './traces.js';

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

function traces(...argv: string[]): Promise<CliResult> {
  return runCaptured([tracesCommand], ['traces', ...argv, '--api', api.url]);
}

/** Table rows (header dropped) split into cells. */
function rows(result: CliResult): string[][] {
  expect(result.code).toBe(0);
  expect(result.stderr).toBe('');
  const lines = result.stdout.trimEnd().split('\n');
  expect(lines[0]).toMatch(/^START +TRACE ID +ROOT SERVICE +ROOT OPERATION +DURATION +SPANS +ERRORS$/);
  return lines.slice(1).map((line) => line.trim().split(/ {2,}/));
}

function iso(nanos: bigint): string {
  return new Date(Number(nanos / MS)).toISOString();
}

describe('tracemesh traces', () => {
  it('prints a table of the newest traces', async () => {
    expect(rows(await traces())).toEqual([
      [iso(BASE + 120_000n * MS), ratings, 'ratings', 'POST /ratings', '5.00ms', '1', '0'],
      [iso(BASE + 60_000n * MS), worker, 'worker', 'process order', '20.00ms', '3', '0'],
      [iso(BASE), checkout, 'frontend', 'GET /products', '50.00ms', '3', '2'],
    ]);
  });

  it('passes the filters to the API', async () => {
    const ids = async (...argv: string[]): Promise<string[]> => rows(await traces(...argv)).map((row) => row[1] ?? '');
    expect(await ids('--service', 'reviews')).toEqual([checkout]);
    expect(await ids('--operation', 'INSERT orders')).toEqual([worker]);
    expect(await ids('--errors')).toEqual([checkout]);
    expect(await ids('--min-duration', '40ms')).toEqual([checkout]);
    expect(await ids('--max-duration', '10ms')).toEqual([ratings, worker]);
    expect(await ids('--limit', '1')).toEqual([ratings]);
    expect(await ids('--attr', 'http.request.method=POST')).toEqual([ratings]);
    expect(await ids('--attr', 'http.response.status_code=504', '--attr', 'service.name=reviews')).toEqual([checkout]);
    expect(await ids('--since', '1h', '--service', 'worker')).toEqual([worker]);
  });

  it('says so when nothing matched', async () => {
    const result = await traces('--service', 'nobody', '--since', '2h');
    expect(result).toEqual({ code: 0, stdout: 'no traces matched in the last 2h\n', stderr: '' });
  });

  it('prints the API answer with --json', async () => {
    const result = await traces('--json', '--limit', '2');
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout) as { traces: Array<{ traceId: string; startTimeUnixNano: string; spanCount: number }> };
    expect(answer.traces.map((t) => t.traceId)).toEqual([ratings, worker]);
    expect(answer.traces[0]?.startTimeUnixNano).toBe((BASE + 120_000n * MS).toString());
  });

  it('has help with examples', async () => {
    const result = await runCaptured([tracesCommand], ['traces', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Usage: tracemesh traces');
    expect(result.stdout).toContain('Examples:\n  tracemesh traces');
    expect(result.stdout).toContain('--min-duration DURATION');
  });

  it.each([
    [['--colour'], /^tracemesh traces: unknown flag --colour \(see tracemesh traces --help\)$/],
    [['--since', '15x'], /^tracemesh traces: --since: '15x' is not a duration/],
    [['--since', '31d'], /^tracemesh traces: --since: '31d' is out of range/],
    [['--min-duration', 'fast'], /^tracemesh traces: --min-duration: 'fast' is not a duration/],
    [['--max-duration', '1.5s'], /^tracemesh traces: --max-duration: '1.5s' is not a duration/],
    [['--limit', '0'], /^tracemesh traces: --limit: '0' is not a whole number from 1 to 1000/],
    [['--attr', 'novalue'], /^tracemesh traces: --attr: 'novalue' is not KEY=VALUE/],
    [['--api', 'ftp://x'], /^tracemesh traces: --api: 'ftp:\/\/x' is not an http/],
    [['--since'], /^tracemesh traces: --since\b.* needs a value/],
  ])('%j -> exit 2 with one line', async (argv, message) => {
    const result = await runCaptured([tracesCommand], ['traces', ...argv]);
    expect(result.code).toBe(2);
    expect(result.stdout).toBe('');
    expect(result.stderr.endsWith('\n')).toBe(true);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr.trimEnd()).toMatch(message);
  });

  it('reports an unreachable API in one line, exit 1', async () => {
    const port = await closedPort();
    const result = await runCaptured([tracesCommand], ['traces', '--api', `http://127.0.0.1:${port}`]);
    expect(result).toEqual({
      code: 1,
      stdout: '',
      stderr: `tracemesh traces: cannot reach the query API at http://127.0.0.1:${port}: connection refused\n`,
    });
  });

  it("shows the API's message when it refuses a request, exit 1", async () => {
    const many = Array.from({ length: 17 }, (_, i) => ['--attr', `k${i}=v`]).flat();
    const result = await traces(...many);
    expect(result.code).toBe(1);
    expect(result.stderr).toBe('tracemesh traces: attr.k16: too many attribute filters (at most 16)\n');
  });
});
