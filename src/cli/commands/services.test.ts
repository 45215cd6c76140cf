import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { closedPort, insertSpans, openTestStore, runCaptured, sampleTraces, startTestApi } from '../../../test/support/api-fixtures.js';
import type { CliResult, TestApi, TestStore } from '../../../test/support/api-fixtures.js';
import { servicesCommand } from './services.js';

const MS = 1_000_000n;
const NOW = (BigInt(Date.now()) / 1000n) * 1000n * MS;

let db: TestStore;
let api: TestApi;

beforeAll(async () => {
  db = await openTestStore();
  // Recent traces, plus the same traces three hours ago under other trace ids.
  const old = sampleTraces(NOW - 3n * 3_600_000n * MS).map((s) => ({ ...s, traceId: s.traceId.replace(/^./, 'f'), name: `${s.name} (v1)` }));
  await insertSpans(db.store, [...sampleTraces(NOW - 300_000n * MS), ...old.filter((s) => s.service === 'ratings')]);
  api = await startTestApi({ store: db.store, isReady: () => true, now: () => NOW });
});

afterAll(async () => {
  await api?.app.close();
  await db?.cleanup();
});

function services(...argv: string[]): Promise<CliResult> {
  return runCaptured([servicesCommand], ['services', ...argv, '--api', api.url]);
}

describe('tracemesh services', () => {
  it('lists services and their operations', async () => {
    expect(await services()).toEqual({
      code: 0,
      stderr: '',
      stdout: [
        'frontend  (2 operations)',
        '  GET /products',
        '  GET reviews',
        'ratings  (2 operations)',
        '  POST /ratings',
        '  POST /ratings (v1)',
        'reviews  (1 operation)',
        '  GET /reviews',
        'worker  (3 operations)',
        '  INSERT orders',
        '  ack',
        '  process order',
        '',
      ].join('\n'),
    });
  });

  it('narrows with --since and prints JSON with --json', async () => {
    const result = await services('--since', '1h', '--json');
    expect(result.code).toBe(0);
    const answer = JSON.parse(result.stdout) as { services: Array<{ name: string; operations: string[] }> };
    expect(answer.services.find((s) => s.name === 'ratings')).toEqual({ name: 'ratings', operations: ['POST /ratings'] });
    expect(answer.services.map((s) => s.name)).toEqual(['frontend', 'ratings', 'reviews', 'worker']);
  });

  it('says so when there are none', async () => {
    expect(await services('--since', '1s')).toEqual({ code: 0, stdout: 'no services sent spans in the last 1s\n', stderr: '' });
  });

  it.each([
    [['--since', 'forever'], /^tracemesh services: --since: 'forever' is not a duration/],
    [['--since', '0s'], /^tracemesh services: --since: '0s' is out of range/],
    [['--service', 'x'], /^tracemesh services: unknown flag --service/],
  ])('%j -> exit 2 with one line', async (argv, message) => {
    const result = await runCaptured([servicesCommand], ['services', ...argv]);
    expect(result.code).toBe(2);
    expect(result.stderr.trimEnd().split('\n')).toHaveLength(1);
    expect(result.stderr).toMatch(message);
  });

  it('reports an unreachable API in one line, exit 1', async () => {
    const port = await closedPort();
    const result = await runCaptured([servicesCommand], ['services', '--api', `http://127.0.0.1:${port}`]);
    expect(result).toEqual({ code: 1, stdout: '', stderr: `tracemesh services: cannot reach the query API at http://127.0.0.1:${port}: connection refused\n` });
  });

  it('has help with examples', async () => {
    const result = await runCaptured([servicesCommand], ['services', '--help']);
    expect(result.code).toBe(0);
    expect(result.stdout).toContain('Examples:\n  tracemesh services');
  });
});
