import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startCollector } from '../support/collector-harness.js';
import type { RunningCollector } from '../support/collector-harness.js';
import { runStoreOutage } from '../support/outage-scenario.js';

let running: RunningCollector;

beforeAll(async () => {
  running = await startCollector();
});

afterAll(async () => {
  await running?.stop();
});

describe('the store away for 60 seconds under steady sending', () => {
  it('acknowledges what the spool holds and stores every acknowledged span exactly once when the store returns', async () => {
    // 60 s at about 10 requests/s of 25 spans: well inside the default 2 GiB spool, so nothing is refused.
    const report = await runStoreOutage(running, { service: 'outage-60s', outageMs: 60_000, intervalMs: 100 });
    expect(report.refusedDuringOutage).toBe(0);
    expect(report.acceptedDuringOutage).toBeGreaterThan(300);
    expect(report.acknowledged).toBe((report.acceptedDuringOutage + 3) * 25);
  }, 180_000);
});
