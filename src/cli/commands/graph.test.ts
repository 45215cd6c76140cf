import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, insertEdgeCalls, openTestStore, runCaptured, startTestApi } from '../../../test/support/api-fixtures.js';
import type { CliResult, TestApi, TestStore } from '../../../test/support/api-fixtures.js';
import { graphCommand } from './graph.js';

const MS = 1_000_000n;
const NOW = (BigInt(Date.now()) / 1000n) * 1000n * MS;

let db: TestStore;
let api: TestApi;

beforeAll(async () => {
  db = await openTestStore();
  await insertEdgeCalls(db.store, [
    ...[10n, 20n, 30n, 40n].map((ms, i) => ({
      timeNanos: NOW - 120_000n * MS + BigInt(i),
      client: 'user',
      server: 'frontend',
      connectionType: 'user' as const,
      clientDurationNanos: ms * MS,
      serverDurationNanos: ms * MS,
      failed: i === 3,
    })),
    { timeNanos: NOW - 60_000n * MS, client: 'frontend', server: 'reviews', clientDurationNanos: 1_500_000n, serverDurationNanos: 1_200_000n },
    { timeNanos: NOW - 7_200_000n * MS, client: 'frontend', server: 'legacy', clientDurationNanos: 2_000_000_000n, serverDurationNanos: 1_900_000_000n, failed: true },
  ]);
  api = await startTestApi({ store: db.store, isReady: () => true, now: () => NOW });
});

afterAll(async () => {
  await api?.app.close();
  await db?.cleanup();
});

function graph(...argv: string[]): Promise<CliResult> {
  return runCaptured([graphCommand], ['graph', ...argv, '--api', api.url]);
}

describe('tracemesh graph', () => {
  it('prints client -> server edges with requests, errors and latency', async () => {
    expect(await graph()).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        'CLIENT → SERVER     REQUESTS  ERRORS      P50      P99',
        'frontend → reviews         1       0   1.50ms   1.50ms',
        'user → frontend            4       1  20.00ms  40.00ms',
        '',
      ].join('\n'),
    });
  });

  it('widens with --since', async () => {
    const result = await graph('--since', '3h');
    expect(result.stdout).toContain('\nfrontend → legacy          1       1    2.00s    2.00s\n');
  });

  it('prints the API answer with --json', async () => {
    const result = await graph('--json');
    expect(result.code).toBe(0);
    expect(JSON.parse(result.stdout)).toEqual({
      nodes: [{ name: 'frontend' }, { name: 'reviews' }, { name: 'user' }],
      edges: [
        { client: 'frontend', server: 'reviews', requests: 1, errors: 0, p50Ms: 1.5, p99Ms: 1.5 },
        { client: 'user', server: 'frontend', requests: 4, errors: 1, p50Ms: 20, p99Ms: 40 },
      ],
    });
  });

  it('says so when there were no calls', async () => {
    expect(await graph('--since', '1s')).toEqual({ code: 0, stdout: 'no calls in the last 1s\n', stderr: '' });
  });

  it.each([
    [['--since', '2w'], /^tracemesh graph: --since: '2w' is not a duration/],
    [['--since', '60d'], /^tracemesh graph: --since: '60d' is out of range/],
    [['--window', '1h'], /^tracemesh graph: unknown flag --window/],
  ])('%j -> exit 2 with one line', async (argv, message) => {
    const result = await runCaptured([graphCommand], ['graph', ...argv]);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('reports an unreachable API in one line, exit 1', async () => {
    const port = await closedPort();
    const result = await runCaptured([graphCommand], ['graph', '--api', `http://127.0.0.1:${port}`]);
    expect(result).toEqual({ code: 1, stdout: '', stderr: `tracemesh graph: cannot reach the query API at http://127.0.0.1:${port}: connection refused\n` });
  });

  it('has help with examples', async () => {
    const result = await runCaptured([graphCommand], ['graph', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Examples:\n  tracemesh graph');
  });
});
